"""After a SIGKILL, the next start ends every leg at the far end from its stored dialog.

A leg that never rang back is still CANCELled, and a carrier that challenges the BYE
gets it again with its trunk's login.

A ``dial`` leg's dialog (``calls.sip_dialog``: the INVITE as sent) is stored as soon as
the INVITE goes out, not at its first 180: a carrier that only answered ``100 Trying``
when the process died must still get the CANCEL a live process would have sent (and the
ACK of its 487), or the leg would ring on at the carrier with nobody behind it.

The real process runs (tests/serve_process.py): a SIPp caller dials NUMBER, the app
answers ``dial``, the SIPp callee on the trunk answers the INVITE with 100 Trying only.
Once the leg's dialog is stored the process is SIGKILLed and a new one started on the
same data and SIP port; both SIPp scenarios end only on what it sends them.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from tests.serve_process import (
    CALLEE,
    calls,
    crash_mid_call,
    seed,
)
from tests.sipp import Sipp, requires_sipp
from tests.voice.voice_rig import AppServer, document

from sautikit.calls.status import CallStatus
from sautikit.db import Database
from sautikit.db.models import Call

pytestmark = [pytest.mark.sipp, requires_sipp]

TRYING_ONLY = Path(__file__).parent / "scenarios" / "uas_trying_only.xml"
CHALLENGES_BYE = Path(__file__).parent / "scenarios" / "uas_answer_challenges_bye.xml"


async def dialled_leg(database: Database, seconds: float = 30) -> Call:
    """The dial's leg once its dialog is stored (it is still ``queued``: nothing rang)."""
    for _ in range(int(seconds / 0.1)):
        for call in await calls(database):
            if call.parent_call_id is not None and call.sip_dialog is not None:
                return call
        await asyncio.sleep(0.1)
    raise AssertionError(f"no dial leg stored its dialog: {await calls(database)}")


async def test_a_leg_that_only_said_trying_is_cancelled_after_a_crash(
    served_database: tuple[str, Database], app: AppServer, tmp_path: Path
) -> None:
    url, database = served_database
    app.route("/voice", document({"dial": {"number": CALLEE, "timeout": 60}}))
    async with Sipp(scenario=TRYING_ONLY, timeout=60) as callee:
        await seed(database, voice_url=app.url("/voice"), trunk_port=callee.port)

        async def until_its_leg_is_stored() -> None:
            leg = await dialled_leg(database)
            assert leg.status == CallStatus.QUEUED  # no 180 came: never ringing

        # The caller gets its BYE; the callee a CANCEL, and the ACK of its 487.
        await crash_mid_call(url, tmp_path / "var", callee, until_its_leg_is_stored)
    parent, child = await calls(database)
    assert child.parent_call_id == parent.id
    assert (parent.status, parent.hangup_cause) == (CallStatus.COMPLETED, "network_error")
    assert (child.status, child.hangup_cause) == (CallStatus.FAILED, "network_error")


async def test_after_a_crash_the_bye_answers_the_carriers_challenge(
    served_database: tuple[str, Database], app: AppServer, tmp_path: Path
) -> None:
    url, database = served_database
    app.route("/voice", document({"dial": {"number": CALLEE, "timeout": 60}}))
    async with Sipp(scenario=CHALLENGES_BYE, timeout=60) as callee:
        await seed(database, voice_url=app.url("/voice"), trunk_port=callee.port, trunk_login=True)
        # The callee answers the BYE with 401, then verifies the BYE sent again.
        await crash_mid_call(url, tmp_path / "var", callee, lambda: until_both_answered(database))


async def until_both_answered(database: Database, seconds: float = 30) -> None:
    for _ in range(int(seconds / 0.1)):
        found = await calls(database)
        if len(found) == 2 and all(call.status == CallStatus.ANSWERED for call in found):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"calls are {[call.status for call in await calls(database)]}")
