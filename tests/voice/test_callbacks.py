"""Requests to the app: the fields, the signature, and each way an answer can fail."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from urllib.parse import parse_qs

import pytest
from tests.voice.voice_rig import AppServer, Reply, document

from sautikit import __version__
from sautikit.events.signing import SIGNATURE_HEADER, compute_signature
from sautikit.net import outbound_client
from sautikit.voice.actions import MAX_DOCUMENT_BYTES, Hangup, Say
from sautikit.voice.callbacks import AppClient, AppErrorKind, AppRequestError, CallbackEncoding
from sautikit.webhooks import WebhookVerificationError
from sautikit.webhooks import verify as verify_webhook

SECRET = "whsec_test_secret"
FIELDS: dict[str, str | int] = {
    "CallId": "call-1",
    "WorkspaceId": "ws-1",
    "From": "+254711000001",
    "To": "+254700000001",
    "Direction": "inbound",
    "CallStatus": "ringing",
    "RecordingDuration": 7,
}


@pytest.fixture
async def client() -> AsyncIterator[AppClient]:
    async with outbound_client(allow_private=True) as http:
        yield AppClient(http, SECRET, timeout=0.3)


def verify(signature: str, raw: bytes) -> bool:
    parts = dict(part.split("=", 1) for part in signature.split(","))
    return parts["v1"] == compute_signature(SECRET, raw, int(parts["t"]))


async def test_post_sends_a_signed_pascal_case_form_of_strings(
    app: AppServer, client: AppClient
) -> None:
    url = app.route("/voice", document({"say": {"text": "Karibu", "language": "sw"}}))
    actions = await client.fetch_actions(url, "POST", FIELDS)
    assert actions == [Say.model_validate({"text": "Karibu", "language": "sw"})]
    (hit,) = app.hits
    assert hit.method == "POST"
    assert hit.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(hit.body.decode(), strict_parsing=True) == {
        name: [str(value)] for name, value in FIELDS.items()
    }
    assert b"From=%2B254711000001" in hit.body  # '+' escaped, not read back as a space
    assert hit.headers["user-agent"] == f"Sautikit/{__version__}"
    assert verify(hit.headers[SIGNATURE_HEADER.lower()], hit.body)
    assert not verify(hit.headers[SIGNATURE_HEADER.lower()], hit.body + b" ")


async def test_a_json_client_posts_typed_json(app: AppServer) -> None:
    url = app.route("/voice", document({"hangup": {}}))
    async with outbound_client(allow_private=True) as http:
        client = AppClient(http, SECRET, timeout=5, encoding=CallbackEncoding.JSON)
        assert await client.fetch_actions(url, "POST", FIELDS) == [Hangup()]
    (hit,) = app.hits
    assert json.loads(hit.body) == FIELDS  # RecordingDuration stays the integer 7
    assert hit.headers["content-type"] == "application/json"
    assert verify(hit.headers[SIGNATURE_HEADER.lower()], hit.body)


async def test_get_sends_the_fields_as_a_signed_query(app: AppServer, client: AppClient) -> None:
    url = app.route("/voice", document({"hangup": {}}))
    assert await client.fetch_actions(url + "?tenant=7", "GET", FIELDS) == [Hangup()]
    (hit,) = app.hits
    assert hit.method == "GET" and hit.body == b""
    assert hit.fields == {"tenant": "7", **{name: str(value) for name, value in FIELDS.items()}}
    assert verify(hit.headers[SIGNATURE_HEADER.lower()], hit.query)


async def test_the_public_verifier_accepts_both_methods(app: AppServer, client: AppClient) -> None:
    url = app.route("/voice", document())
    await client.fetch_actions(url, "POST", FIELDS)
    await client.fetch_actions(url, "GET", FIELDS)
    post, get = app.hits
    verify_webhook(post.body, post.headers[SIGNATURE_HEADER.lower()], SECRET)
    verify_webhook(get.query, get.headers[SIGNATURE_HEADER.lower()], SECRET)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(get.query, get.headers[SIGNATURE_HEADER.lower()], "another secret")


async def test_an_empty_answer_means_no_more_actions(app: AppServer, client: AppClient) -> None:
    url = app.route("/done", Reply(204))
    assert await client.fetch_actions(url, "POST", FIELDS) == []


async def failure(client: AppClient, url: str) -> AppRequestError:
    with pytest.raises(AppRequestError) as caught:
        await client.fetch_actions(url, "POST", FIELDS)
    return caught.value


@pytest.mark.parametrize("status", [500, 404, 302])
async def test_non_2xx_is_an_http_status_error(
    app: AppServer, client: AppClient, status: int
) -> None:
    url = app.route("/voice", Reply(status, b'{"actions": []}'))
    error = await failure(client, url)
    assert (error.kind, error.status, error.code) == (
        AppErrorKind.HTTP_STATUS,
        status,
        "application.http_status",
    )
    assert f"answered HTTP {status}" in error.message and url in error.message


async def test_a_slow_app_times_out(app: AppServer, client: AppClient) -> None:
    error = await failure(client, app.slow("/slow")[0])
    assert error.kind is AppErrorKind.TIMEOUT
    assert "did not answer within 0.3 s" in error.message


async def test_a_body_that_is_not_json(app: AppServer, client: AppClient) -> None:
    url = app.route("/voice", Reply(body=b"<Response><Say>hi</Say></Response>"))
    error = await failure(client, url)
    assert error.kind is AppErrorKind.NOT_JSON


async def test_an_invalid_document_names_the_problem(app: AppServer, client: AppClient) -> None:
    url = app.route("/voice", document({"say": {"text": "a"}}, {"recrod": {}}))
    error = await failure(client, url)
    assert error.kind is AppErrorKind.INVALID_DOCUMENT
    assert 'actions[1]: unknown verb "recrod" (did you mean "record"?)' in error.message


async def test_a_huge_answer_is_cut_off_as_invalid(app: AppServer, client: AppClient) -> None:
    url = app.route("/voice", Reply(body=b" " * (MAX_DOCUMENT_BYTES * 4) + b"[]"))
    error = await failure(client, url)
    assert error.kind is AppErrorKind.INVALID_DOCUMENT
    assert "over the limit of 65536" in error.message


async def test_a_closed_port_is_unreachable(client: AppClient) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    error = await failure(client, f"http://127.0.0.1:{port}/voice")
    assert error.kind is AppErrorKind.UNREACHABLE


async def test_private_addresses_are_refused_by_default(app: AppServer) -> None:
    url = app.route("/voice", document())
    async with outbound_client(allow_private=False) as http:
        error = await failure(AppClient(http, SECRET), url)
    assert error.kind is AppErrorKind.REFUSED
    assert app.hits == []


async def test_notify_reports_and_never_raises(app: AppServer, client: AppClient) -> None:
    taken = app.route("/events", Reply(204))
    broken = app.route("/broken", Reply(500))
    assert await client.notify(taken, FIELDS) is True
    assert await client.notify(broken, FIELDS) is False
    assert await client.notify(app.slow("/slow")[0], FIELDS) is False
    assert await client.notify("http://127.0.0.1:1/x", FIELDS, "GET") is False
    assert [hit.path for hit in app.hits] == ["/events", "/broken", "/slow"]
