"""examples/record-dial: the seed's "Record a two-party call via Dial"."""

from __future__ import annotations

import asyncio
import json
from types import ModuleType

import httpx
import pytest
from fastapi import FastAPI
from tests.client.conftest import Fund, Workspace
from tests.examples.conftest import load_example

from sautikit.voice.actions import Dial, Say, parse_actions
from sautikit.voice.callbacks import CallbackEncoding, encode_fields
from sautikit_sdk import InsufficientFundsError, Sautikit
from sautikit_sdk.signing import SIGNATURE_HEADER, sign

SECRET = "whsec_record_dial"

record_dial: ModuleType = load_example("record-dial")


def _signed(
    fields: dict[str, object],
    secret: str = SECRET,
    encoding: CallbackEncoding = CallbackEncoding.FORM,
) -> dict[str, object]:
    """A request as Sautikit sends it: a form of strings unless JSON was chosen."""
    raw, content_type = encode_fields(fields, encoding)  # type: ignore[arg-type]
    return {
        "content": raw,
        "headers": {"Content-Type": content_type, SIGNATURE_HEADER: sign(secret, raw)},
    }


@pytest.fixture
def app() -> FastAPI:
    return record_dial.create_app(record_dial.RecordDialSettings(signing_secret=SECRET))


async def test_the_handler_answers_say_then_dial_recorded_from_answer(app: FastAPI) -> None:
    fields = {"CallId": "c1", "From": "+254700000001", "To": "+254722999000"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app.test") as client:
        answer = await client.post("/calls/connect-and-record", **_signed(fields))
        refused = await client.post("/calls/connect-and-record", **_signed(fields, "whsec_bad"))
    assert answer.json() == {
        "actions": [
            {"say": {"text": "This call will be recorded. Please hold while we connect you."}},
            {
                "dial": {
                    "number": "+254720000001",
                    "record": "record-from-answer",
                    "callerId": "+254722999000",
                }
            },
        ]
    }
    say, dialled = parse_actions(answer.json())
    assert isinstance(say, Say) and isinstance(dialled, Dial)
    assert dialled.record == "record-from-answer" and dialled.caller_id == "+254722999000"
    assert refused.status_code == 401


async def test_the_recording_ready_event_is_accepted(app: FastAPI) -> None:
    event = {"kind": "call.recording.ready", "data": {"call_id": "c1", "download_url": "u"}}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app.test") as client:
        answer = await client.post(
            "/calls/events", **_signed(event, encoding=CallbackEncoding.JSON)
        )
    assert answer.status_code == 204


async def test_place_call_sends_the_seeds_post_v1_calls(
    live_url: str, workspace: Workspace, inventory: dict[str, str], fund: Fund
) -> None:
    """Over TCP to the real API. The wallet pays the number's month and is then empty, so
    the call is refused 402 — which shows the body reached /v1/calls valid and whole (a
    held number, URLs accepted) without needing a PBX to dial it."""
    await fund(10000)
    sent: list[dict[str, object]] = []

    def keep_body(request: httpx.Request) -> None:
        if request.url.path == "/v1/calls":
            sent.append(json.loads(request.content))

    def script() -> None:
        with httpx.Client(event_hooks={"request": [keep_body]}) as http:
            client = Sautikit(workspace.api_key, base_url=live_url, http_client=http)
            client.numbers.claim(inventory["+254201000001"])
            with pytest.raises(InsufficientFundsError):
                record_dial.place_call(
                    client,
                    to="+254722999000",
                    from_="+254201000001",
                    app_url="https://app.example/",
                )

    await asyncio.to_thread(script)
    assert sent == [
        {
            "to": "+254722999000",
            "from": "+254201000001",
            "action_url": "https://app.example/calls/connect-and-record",
            "events_url": "https://app.example/calls/events",
        }
    ]
