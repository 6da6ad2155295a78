"""Bad input answers a 4xx in the error envelope, with its request id; never a bare 500."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError
from tests.support import KeyFactory


def _assert_envelope(answer: httpx.Response, status: int, code: str) -> dict:
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert error["request_id"] == answer.headers["X-Request-Id"]
    assert error["request_id"].startswith("req_")
    return error


@pytest.fixture
async def headers(make_key: KeyFactory) -> dict[str, str]:
    return (await make_key(["webhooks.manage"]))[1]


async def test_malformed_json(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    answer = await client.post(
        "/v1/webhooks",
        content=b'{"url": "https://a.example", ',
        headers={**headers, "Content-Type": "application/json"},
    )
    _assert_envelope(answer, 400, "request.malformed_json")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "https://a.example", "events": "call.completed"}, "events"),
        ({"url": "not a url", "events": ["*"]}, "url"),
        ({"events": ["*"]}, "url"),
        ({"url": "https://a.example", "events": ["*"], "colour": "blue"}, "colour"),
        ({"url": "https://a.example", "events": ["call.exploded"]}, "events"),
        ({"url": "https://a.example", "events": [7]}, "events[0]"),
    ],
)
async def test_invalid_fields_are_named(
    client: httpx.AsyncClient, headers: dict[str, str], body: dict, field: str
) -> None:
    error = _assert_envelope(
        await client.post("/v1/webhooks", json=body, headers=headers),
        400,
        "validation.invalid_field",
    )
    assert error["field"] == field
    assert field.split("[")[0] in error["message"]


async def test_body_that_is_not_an_object(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    answer = await client.post("/v1/webhooks", json=["a", "list"], headers=headers)
    _assert_envelope(answer, 400, "validation.invalid_field")


async def test_oversized_body(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    body = {"url": "https://a.example/" + "x" * (1024 * 1024), "events": ["*"]}
    answer = await client.post("/v1/webhooks", json=body, headers=headers)
    _assert_envelope(answer, 413, "request.too_large")


async def test_unknown_path_and_method(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    _assert_envelope(await client.get("/v1/nothing-here", headers=headers), 404, "not_found")
    _assert_envelope(await client.put("/v1/webhooks", headers=headers), 405, "method_not_allowed")


async def test_options_and_405_name_every_method_of_the_path(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    # GET and POST of /v1/calls/{id} come from two routes; DELETE of a number from a third.
    for path, allowed in (
        ("/v1/calls", "GET, OPTIONS, POST"),
        ("/v1/calls/0192f3c4-5d6e-7f80-9a1b-2c3d4e5f6a7b", "GET, OPTIONS, POST"),
        ("/v1/numbers/0192f3c4-5d6e-7f80-9a1b-2c3d4e5f6a7b", "DELETE, GET, OPTIONS"),
        ("/v1/settings", "GET, OPTIONS, PATCH"),
    ):
        options = await client.options(path, headers=headers)
        assert (options.status_code, options.headers["allow"]) == (204, allowed), path
        wrong = await client.put(path, headers=headers)
        _assert_envelope(wrong, 405, "method_not_allowed")
        assert wrong.headers["allow"] == allowed, path
        assert allowed in wrong.json()["error"]["message"]


async def test_unexpected_failure_leaks_nothing(
    api_app: FastAPI, client: httpx.AsyncClient
) -> None:
    @api_app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals at /srv/sautikit")

    answer = await client.get("/boom")
    error = _assert_envelope(answer, 500, "internal_error")
    assert "secret" not in answer.text and "Traceback" not in answer.text
    assert error["message"] == "an internal error occurred"


async def test_every_answer_carries_a_request_id(client: httpx.AsyncClient) -> None:
    ids = {(await client.get("/healthz")).headers["X-Request-Id"] for _ in range(3)}
    assert len(ids) == 3


class _DriverError(Exception):
    def __init__(self, message: str, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    "orig",
    [
        _DriverError("deadlock detected", "40P01"),
        _DriverError("could not serialize access", "40001"),
        _DriverError("database is locked"),
    ],
)
async def test_a_lost_lock_conflict_answers_503_with_retry_after(
    api_app: FastAPI, client: httpx.AsyncClient, orig: _DriverError
) -> None:
    """A request rolled back by a lock conflict is a busy server, not a bug: 503."""

    async def conflicted() -> None:
        raise DBAPIError("UPDATE wallets …", None, orig)

    api_app.add_api_route("/test/conflict", conflicted)
    answer = await client.get("/test/conflict")
    _assert_envelope(answer, 503, "service.busy")
    assert answer.headers["Retry-After"] == "1"


async def test_any_other_database_error_is_a_500_in_the_envelope(
    api_app: FastAPI, client: httpx.AsyncClient
) -> None:
    async def broken() -> None:
        raise DBAPIError("SELECT …", None, _DriverError("syntax error", "42601"))

    api_app.add_api_route("/test/broken", broken)
    _assert_envelope(await client.get("/test/broken"), 500, "internal_error")
