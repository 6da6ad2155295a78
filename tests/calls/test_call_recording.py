"""``POST /v1/calls`` with ``record: true`` (SPEC §5): recorded from answer, both parties
in two channels, through the recording pipeline — and nothing lost to a SIGKILL.

The callee is SIPp echoing what it hears (``-rtp_echo``): the app's prompt reaches it on
the right channel and comes back as the callee's voice on the left.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest
from sqlalchemy import select
from tests.media.media_rig import rms
from tests.serve_process import CALLEE, NUMBER, ServeProcess, calls, events, seed
from tests.sipp import SCENARIOS as SIP_SCENARIOS
from tests.sipp import Sipp, requires_sipp
from tests.voice.stack import Stack, open_stack
from tests.voice.voice_rig import AppServer, document

from sautikit.db import Database
from sautikit.db.models import Recording

pytestmark = requires_sipp

ECHO = ["-rtp_echo"]
PROMPT = {"say": {"text": "This call is recorded for quality. Thank you for calling."}}


@pytest.mark.parametrize("empty_database", ["sqlite"], indirect=True)
async def test_an_api_call_with_record_true_is_recorded_in_two_channels(
    database: Database, app: AppServer, tmp_path: Path
) -> None:
    async with open_stack(database, app, tmp_path) as stack:
        stack.app.route("/answered", document(PROMPT, {"hangup": {}}))
        async with Sipp(
            scenario=SIP_SCENARIOS / "uas_answer.xml", timeout=30, extra=ECHO
        ) as callee:
            await stack.route_trunk_to(callee.port)
            body = {
                "to": CALLEE,
                "from": NUMBER,
                "action_url": stack.app.url("/answered"),
                "record": True,
            }
            placed = await stack.api.post("/v1/calls", json=body, headers=stack.headers)
            assert placed.status_code == 201, placed.text
            result = await callee.wait()
        assert result.returncode == 0, result.explain()
        (call,) = await stack.wait_for_calls_to_end()
        recording = await _ready_recording(stack, call.id)
        assert (recording.source, recording.channels, recording.status) == ("api", 2, "ready")
        _, (callee_side, heard) = await stack.recording_audio(recording.id)
        assert rms(heard) > 300  # the prompt the callee heard
        assert rms(callee_side) > 300  # ... and what the callee said (its echo)
        kinds = await stack.events(call.id)
        assert "call.recording.ready" in kinds


async def _ready_recording(stack: Stack, call_id: str) -> Recording:
    for _ in range(200):
        async with stack.database.sessions() as session:
            found = (
                await session.scalars(select(Recording).where(Recording.call_id == call_id))
            ).all()
        if found and found[0].status == "ready":
            return found[0]
        await asyncio.sleep(0.1)
    raise AssertionError(f"no stored recording for {call_id}: {found}")


async def _recordings(database: Database) -> list[Recording]:
    async with database.sessions() as session:
        return list((await session.scalars(select(Recording))).all())


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


async def _until(condition_met: object, what: str, seconds: float = 30.0) -> None:
    assert callable(condition_met)
    for _ in range(int(seconds / 0.05)):
        if await condition_met():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


async def test_a_sigkill_mid_call_loses_nothing_of_the_recording(
    served_database: tuple[str, Database], app: AppServer, tmp_path: Path
) -> None:
    """SIGKILL while the recorded API call is up: the next start finishes the spool,
    stores it and writes ``call.recording.ready``; the call is closed and billed."""
    url, database = served_database
    answered = app.route("/answered", document(PROMPT, {"pause": {"length": 60}}))
    async with Sipp(scenario=SIP_SCENARIOS / "uas_answer.xml", timeout=90, extra=ECHO) as callee:
        seeded = await seed(database, voice_url=app.url("/voice"), trunk_port=callee.port)
        first = ServeProcess(tmp_path / "var", url)
        async with first, first.api(seeded.headers) as api:
            body = {"to": CALLEE, "from": NUMBER, "action_url": answered, "record": True}
            placed = await api.post("/v1/calls", json=body)
            assert placed.status_code == 201, placed.text

            async def spooling() -> bool:
                found = await _recordings(database)
                if not found or found[0].spool_path is None:
                    return False
                size = await asyncio.to_thread(_size, Path(found[0].spool_path))
                return size > 16_000  # more than half a second of audio

            await _until(spooling, "the recording's spool filling")
            first.send_signal(signal.SIGKILL)
            assert await first.wait_exit(10) == -signal.SIGKILL
        second = ServeProcess(tmp_path / "var", url, sip_port=first.sip_port)
        async with second:

            async def stored() -> bool:
                found = await _recordings(database)
                return bool(found) and found[0].status == "ready"

            await _until(stored, "the spool stored by the next start")
    (recording,) = await _recordings(database)
    assert (recording.source, recording.channels) == ("api", 2)
    assert recording.duration_seconds is not None and recording.duration_seconds >= 1
    assert recording.size_bytes is not None and recording.size_bytes > 16_000
    (call,) = await calls(database)
    assert call.status == "completed" and call.hangup_cause == "network_error"
    assert "call.recording.ready" in await events(database, call.id)
