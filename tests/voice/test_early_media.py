"""A carrier's early media reaches the caller: while a ``dial`` rings one number whose
183 carries SDP, the caller hears the carrier's audio (an announcement, its ringback)
instead of Sautikit's own ringback.

The callee is SIPp playing 3 s of recorded speech after its 183; the dial records from
ringing, so the recording's right channel is what the caller heard.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.media.media_rig import rms
from tests.sipp import Sipp, requires_sipp
from tests.voice.stack import CALLEE, NUMBER, Stack, open_stack
from tests.voice.voice_rig import AppServer, document

from sautikit.db import Database

pytestmark = [requires_sipp, pytest.mark.parametrize("empty_database", ["sqlite"], indirect=True)]

SCENARIOS = Path(__file__).parent / "scenarios"


@pytest.fixture
async def stack(database: Database, app: AppServer, tmp_path: Path) -> AsyncIterator[Stack]:
    async with open_stack(database, app, tmp_path) as opened:
        yield opened


@pytest.mark.parametrize(
    "scenario", ["callee_early_media_speaks.xml", "callee_reliable_early_media_speaks.xml"]
)
async def test_the_caller_hears_the_carriers_early_media_not_our_ringback(
    stack: Stack, scenario: str
) -> None:
    """Plain (183) and reliable (183 with 100rel, which we PRACK) early media alike."""
    stack.app.route(
        "/voice",
        document(
            {
                "dial": {
                    "number": CALLEE,
                    "record": "record-from-ringing",
                    "action": stack.app.url("/dialled"),
                }
            }
        ),
    )
    stack.app.route("/dialled", document({"hangup": {}}))
    async with Sipp(scenario=SCENARIOS / scenario, timeout=30) as callee:
        await stack.route_trunk_to(callee.port)
        caller = Sipp(
            scenario=SCENARIOS / "caller_talks_then_hangs_up.xml",
            remote=stack.sip,
            service=NUMBER,
            timeout=30,
        )
        caller_result = await caller.run()
        callee_result = await callee.wait()
    assert caller_result.returncode == 0, caller_result.explain()
    assert callee_result.returncode == 0, callee_result.explain()
    (dialled,) = await stack.app.wait_for_hits("/dialled")
    assert dialled.fields["DialCallStatus"] == "completed"
    rate, (_, heard) = await stack.recording_audio(dialled.fields["RecordingSid"])
    # Our ringback is 1 s of tone then 4 s of silence: from 1.2 s to 2.8 s the caller
    # would hear nothing. It hears the carrier's announcement instead.
    assert rms(heard[int(1.2 * rate) : int(2.8 * rate)]) > 300
