"""A ``dial`` owns the legs it places: none outlives it, however it ends.

The flood test (test_flood.py) found the race this pins down: the callee answers, and
while the answer is being recorded the caller hangs up, so the bridge cannot be built.
Before, the answered leg was left up with nobody to end it (and its media channel, RTP
port and row with it). Here the race is made certain — the child's answer is held until
the caller's BYE has arrived — and everything must still come back to rest: the callee
gets its BYE, both rows end, the app hears the dial's outcome with its (empty)
recording, and no leg, channel or live call is left in the process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.sipp import SCENARIOS as SIP_SCENARIOS
from tests.sipp import Sipp, requires_sipp
from tests.voice.stack import CALLEE, NUMBER, Stack, open_stack
from tests.voice.voice_rig import AppServer

from sautikit.calls.status import CallStatus
from sautikit.db import Database
from sautikit.voice.live import LiveCall

pytestmark = [pytest.mark.sipp, requires_sipp]

CALLER = Path(__file__).parent.parent / "voice" / "scenarios" / "caller_talks_then_hangs_up.xml"


@pytest.fixture
async def stack(database: Database, app: AppServer, tmp_path: Path) -> AsyncIterator[Stack]:
    async with open_stack(database, app, tmp_path) as opened:
        yield opened


async def test_a_leg_answered_as_the_caller_hangs_up_is_ended(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack.app.recorded_dial(CALLEE)
    manager = stack.manager
    record_answer = manager.call_answered

    async def answered_after_the_caller_left(call: LiveCall) -> None:
        if call.direction == "outbound":  # the dial's leg: hold it until the caller is gone
            (parent,) = [live for live in manager.live.values() if live.direction == "inbound"]
            await parent.leg.wait_ended()
        await record_answer(call)

    monkeypatch.setattr(manager, "call_answered", answered_after_the_caller_left)
    async with Sipp(scenario=SIP_SCENARIOS / "uas_answer.xml", timeout=30) as callee:
        await stack.route_trunk_to(callee.port)
        caller = Sipp(scenario=CALLER, remote=stack.sip, service=NUMBER, timeout=30)
        result = await caller.run()
        callee_result = await callee.wait()  # it ends only on our BYE
    assert result.returncode == 0, result.explain()
    assert callee_result.returncode == 0, callee_result.explain()

    parent, child = await stack.wait_for_calls_to_end(count=2)
    assert child.parent_call_id == parent.id
    assert parent.status == CallStatus.COMPLETED and child.status == CallStatus.COMPLETED
    (dialled,) = await stack.app.wait_for_hits("/dialled")
    assert dialled.fields["DialCallStatus"] == "completed"
    assert dialled.fields["DialCallId"] == child.id
    assert dialled.fields["RecordingDuration"] == "0"
    assert manager.live == {}
    assert stack.pbx.legs == {}
    assert stack.pbx.media.ports.in_use == 0
