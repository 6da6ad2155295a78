"""Verbs whose rules live in the PBX, checked on real calls from the test phone: how a
``record`` ends (silence, maxLength, a key, trim, nothing said) and how a conference room
behaves (waiting with waitUrl until startOnEnter, endOnExit, maxParticipants, status
events, muting through the API)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.voice.stack import NUMBER, Stack, open_stack
from tests.voice.voice_rig import AppServer, Hit, Reply, document

from sautikit.db import Database
from sautikit.media import tone
from sautikit.media.audio import encode_wav
from sautikit.pbx import CallScript, Phone

pytestmark = pytest.mark.parametrize("empty_database", ["sqlite"], indirect=True)


@pytest.fixture
async def stack(database: Database, app: AppServer, tmp_path: Path) -> AsyncIterator[Stack]:
    async with open_stack(database, app, tmp_path) as opened:
        yield opened


def _voice(tmp_path: Path, seconds: float, name: str = "voice.wav") -> Path:
    path = tmp_path / name
    path.write_bytes(encode_wav(tone(500, seconds)))
    return path


async def _call(stack: Stack, script: CallScript, ports: tuple[int, int]) -> None:
    async with Phone(rtp_ports=ports) as phone:
        await phone.call(NUMBER, script, server=stack.sip)


def _record(stack: Stack, **params: object) -> None:
    stack.app.route(
        "/voice",
        document({"record": {"action": stack.app.url("/done"), "playBeep": False, **params}}),
    )
    stack.app.route("/done", document({"hangup": {}}))


async def _done(stack: Stack) -> dict:
    await stack.wait_for_calls_to_end()
    (hit,) = stack.app.hits_to("/done")
    return hit.fields


async def test_record_ends_after_silence_following_speech(stack: Stack, tmp_path: Path) -> None:
    _record(stack, timeout=1, trim="do-not-trim")
    script = CallScript(voice=_voice(tmp_path, 2.0), linger=10)
    await _call(stack, script, (44500, 44549))
    fields = await _done(stack)
    assert fields["Digits"] == ""  # ended by silence, not a key
    assert 2 <= int(fields["RecordingDuration"]) <= 4  # the speech, then 1 s of quiet


async def test_record_stops_at_max_length(stack: Stack, tmp_path: Path) -> None:
    _record(stack, maxLength=2, timeout=10)
    await _call(stack, CallScript(voice=_voice(tmp_path, 6.0), linger=10), (44550, 44599))
    fields = await _done(stack)
    assert fields["RecordingDuration"] == "2"  # a string, as the app reads a form


async def test_trim_silence_cuts_leading_quiet(stack: Stack, tmp_path: Path) -> None:
    _record(stack, timeout=4, trim="trim-silence")
    script = CallScript(voice=_voice(tmp_path, 1.5), speak_after=2.0, dtmf="#", linger=10)
    await _call(stack, script, (44600, 44649))
    fields = await _done(stack)
    assert fields["Digits"] == "#"
    assert 1 <= int(fields["RecordingDuration"]) <= 2  # 2 s of leading quiet are gone


async def test_saying_nothing_stores_nothing_and_goes_on(stack: Stack) -> None:
    """As Twilio's <Record>: no request to ``action`` with an empty URL; the next action
    runs, and the call's record says the recording was empty."""
    stack.app.route(
        "/voice",
        document(
            {"record": {"action": stack.app.url("/done"), "playBeep": False, "timeout": 1}},
            {"redirect": {"url": stack.app.url("/after")}},
        ),
    )
    stack.app.route("/after", document({"hangup": {}}))
    await _call(stack, CallScript(linger=10), (44650, 44699))
    (call,) = await stack.wait_for_calls_to_end()
    assert stack.app.hits_to("/done") == []
    assert len(stack.app.hits_to("/after")) == 1
    shown = (await stack.api.get(f"/v1/calls/{call.id}", headers=stack.headers)).json()
    assert [(r["source"], r["status"]) for r in shown["recordings"]] == [("record", "empty")]
    listed = await stack.api.get("/v1/recordings", headers=stack.headers)
    assert [r["status"] for r in listed.json()["data"]] == ["empty"]


async def test_conference_rules(stack: Stack, tmp_path: Path) -> None:
    """A guest waits on hold music until the host (startOnEnter) arrives; the host's
    leaving ends the room (endOnExit); a third caller finds it full; events are posted."""
    hold = stack.app.route("/hold.wav", _hold_music())
    events = stack.app.url("/room-events")
    stack.app.route("/room-events", document())

    def join(hit: Hit) -> Reply:
        host = hit.fields["From"] == "+254711000001"
        return document(
            {
                "conference": {
                    "name": "board",
                    "beep": False,
                    "startOnEnter": host,
                    "endOnExit": host,
                    "maxParticipants": 2,
                    "waitUrl": hold,
                    "statusEventsCallbackUrl": events,
                }
            },
            {"say": {"text": "The meeting has ended."}},
        )

    stack.app.route("/voice", join)
    heard = tmp_path / "guest.wav"

    async def guest() -> None:
        async with Phone(rtp_ports=(44700, 44749)) as phone:
            await phone.call(
                NUMBER, CallScript(record_to=heard, linger=15), server=stack.sip,
                caller_id="+254711000002",
            )  # fmt: skip

    async def host() -> None:
        await asyncio.sleep(2.0)
        async with Phone(rtp_ports=(44750, 44799)) as phone:
            await phone.call(
                NUMBER, CallScript(hangup_after=2.0), server=stack.sip,
                caller_id="+254711000001",
            )  # fmt: skip

    async def latecomer() -> None:
        await asyncio.sleep(3.0)
        async with Phone(rtp_ports=(44800, 44849)) as phone:
            await phone.call(
                NUMBER, CallScript(hangup_after=1.0), server=stack.sip,
                caller_id="+254711000003",
            )  # fmt: skip

    await asyncio.gather(guest(), host(), latecomer())
    await stack.wait_for_calls_to_end(count=3)
    posted = [hit.fields["ConferenceEvent"] for hit in stack.app.hits_to("/room-events")]
    assert {"join", "start", "leave", "end"} <= set(posted)
    assert stack.app.hits_to("/hold.wav")  # the guest waited on the hold audio
    # The room ended when the host left: the guest went on to the next action.
    guest_calls = [c for c in await stack.calls() if c.from_number == "+254711000002"]
    assert guest_calls[0].hangup_cause == "normal_clearing"


def _hold_music() -> Reply:
    return Reply(body=encode_wav(tone(300, 1.0)), content_type="audio/wav")
