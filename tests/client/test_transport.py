"""The transports' retry policy and error mapping, on scripted answers (no server)."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sautikit_sdk import (
    AsyncSautikit,
    ConnectionFailedError,
    RateLimitedError,
    Sautikit,
    SautikitError,
    ValidationError,
)
from sautikit_sdk._errors import error_from_response

WORKSPACE = {
    "id": "0190a0a0-0000-7000-8000-000000000001",
    "name": "test",
    "created_at": "2026-11-24T10:00:00Z",
    "scopes": ["calls.read"],
}
Handler = Callable[[httpx.Request], httpx.Response]


def _scripted(*answers: httpx.Response | Exception) -> tuple[list[httpx.Request], Handler]:
    """A handler answering each request with the next answer; the requests it saw."""
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        answer = answers[len(seen)]
        seen.append(request)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return seen, handle


def _async_sdk(handler: Handler, *, max_retries: int = 2) -> AsyncSautikit:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return AsyncSautikit(
        "sk_live_test",
        base_url="http://sautikit.test/",
        http_client=http,
        max_retries=max_retries,
        retry_backoff=0,
    )


def _envelope(status: int, code: str, **extra: str) -> httpx.Response:
    detail = {"code": code, "message": "refused", "request_id": "req_1", **extra}
    return httpx.Response(status, json={"error": detail})


async def test_a_get_is_retried_after_a_503_and_a_dropped_connection() -> None:
    seen, handle = _scripted(
        httpx.Response(503, headers={"Retry-After": "0"}),
        httpx.ConnectError("refused"),
        httpx.Response(200, json=WORKSPACE),
    )
    workspace = await _async_sdk(handle).workspace.get()
    assert workspace.name == "test" and len(seen) == 3
    assert seen[0].headers["Authorization"] == "Bearer sk_live_test"
    assert str(seen[0].url) == "http://sautikit.test/v1/workspace"


async def test_every_attempt_of_a_post_carries_the_same_generated_key() -> None:
    hook = {
        "id": "w1",
        "url": "https://a.example/",
        "events": ["*"],
        "created_at": "2026-11-24T10:00:00Z",
    }
    seen, handle = _scripted(
        httpx.ReadTimeout("slow"),
        httpx.Response(502, text="bad gateway"),
        httpx.Response(201, json={**hook, "secret": "whsec_x"}),
    )
    created = await _async_sdk(handle).webhooks.create(url="https://a.example/", events=["*"])
    assert created.secret == "whsec_x"
    keys = {request.headers["Idempotency-Key"] for request in seen}
    assert len(seen) == 3 and len(keys) == 1


async def test_retries_are_bounded_and_then_raise_connection_failed() -> None:
    seen, handle = _scripted(*[httpx.ConnectError("refused")] * 3)
    with pytest.raises(ConnectionFailedError) as raised:
        await _async_sdk(handle, max_retries=2).workspace.get()
    assert len(seen) == 3 and raised.value.status is None


async def test_a_4xx_is_never_retried() -> None:
    seen, handle = _scripted(_envelope(400, "validation.invalid_field", field="to"))
    with pytest.raises(ValidationError) as raised:
        await _async_sdk(handle).workspace.get()
    assert len(seen) == 1
    assert (raised.value.code, raised.value.field, raised.value.request_id) == (
        "validation.invalid_field",
        "to",
        "req_1",
    )


async def test_rate_limited_carries_retry_after() -> None:
    answer = _envelope(429, "rate_limited")
    answer.headers["Retry-After"] = "3"
    _, handle = _scripted(answer)
    with pytest.raises(RateLimitedError) as raised:
        await _async_sdk(handle).workspace.get()
    assert (raised.value.status, raised.value.retry_after) == (429, 3.0)


async def test_an_answer_without_the_envelope_still_raises_with_its_status() -> None:
    _, handle = _scripted(*[httpx.Response(502, text="<html>bad gateway</html>")] * 3)
    with pytest.raises(SautikitError) as raised:
        await _async_sdk(handle).workspace.get()
    assert (raised.value.status, raised.value.code) == (502, None)
    assert "bad gateway" in raised.value.message


async def test_recording_url_is_the_redirects_location_without_following_it() -> None:
    target = "http://127.0.0.1:8080/media/abc?expires=1&signature=x"
    seen, handle = _scripted(httpx.Response(302, headers={"Location": target}))
    assert await _async_sdk(handle).calls.recording_url("c/1") == target
    assert seen[0].url.raw_path == b"/v1/calls/c%2F1/recording"


def test_the_sync_client_retries_the_same_way() -> None:
    seen, handle = _scripted(httpx.ConnectError("refused"), httpx.Response(200, json=WORKSPACE))
    http = httpx.Client(transport=httpx.MockTransport(handle))
    with Sautikit(
        "sk_live_test", base_url="http://sautikit.test", http_client=http, retry_backoff=0
    ) as client:
        assert client.workspace.get().id == WORKSPACE["id"]
    assert len(seen) == 2
    assert not http.is_closed  # an injected client is the caller's to close


def test_a_client_needs_a_key() -> None:
    with pytest.raises(SautikitError):
        Sautikit("")


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)


@given(
    status=st.integers(400, 599),
    content=st.binary(max_size=200)
    | _json.map(lambda value: json.dumps(value).encode())
    | st.builds(
        lambda detail: json.dumps({"error": detail}).encode(),
        st.dictionaries(st.sampled_from(["code", "message", "request_id", "field"]), _json),
    ),
)
def test_any_error_answer_becomes_a_sautikit_error(status: int, content: bytes) -> None:
    error = error_from_response(httpx.Response(status, content=content))
    assert isinstance(error, SautikitError) and error.status == status
    assert isinstance(error.message, str)
    for value in (error.code, error.field, error.request_id):
        assert value is None or isinstance(value, str)
