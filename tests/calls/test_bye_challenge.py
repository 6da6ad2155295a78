"""A carrier that challenges our BYE (401/407) gets it again with the trunk's login.

Some carriers authenticate every request of a call, BYE included. Unanswered, the
challenge leaves the leg up at the carrier (and billing) after Sautikit thinks it ended.
SIPp plays the carrier on a trunk with a login, answers our BYE with 407 and takes only
a BYE whose digest it verifies (``verifyauth``): for a leg Sautikit placed on the trunk
(a ``dial``), and for a call the trunk brought in. After a crash the next start's BYE
from the stored dialog answers the challenge the same way, with the login of the trunk
at the dialog's host (tests/calls/test_crash_teardown.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import delete
from tests.serve_process import carrier_trunk
from tests.sipp import Sipp, requires_sipp
from tests.voice.stack import CALLEE, NUMBER, Stack, open_stack
from tests.voice.voice_rig import AppServer, document

from sautikit.calls.status import CallStatus
from sautikit.db import Database
from sautikit.db.models import Trunk

pytestmark = [pytest.mark.sipp, requires_sipp]

SCENARIOS = Path(__file__).parent / "scenarios"


@pytest.fixture
async def stack(database: Database, app: AppServer, tmp_path: Path) -> AsyncIterator[Stack]:
    async with open_stack(database, app, tmp_path) as opened:
        yield opened


async def trunk_with_login(stack: Stack, port: int) -> None:
    """The carrier at 127.0.0.1:``port``, trusted for calls in, with the login trunk/pa55
    stored as ``sautikit trunks add --username --password`` stores it."""
    async with stack.database.transaction() as session:
        await session.execute(delete(Trunk))
        session.add(carrier_trunk(port, name="carrier", login_key=stack.settings.signing_key()))
    await stack.manager.reload_trunks()


async def test_the_bye_to_a_dialled_leg_answers_the_carriers_challenge(stack: Stack) -> None:
    stack.app.route("/voice", document({"dial": {"number": CALLEE}}))
    async with Sipp(scenario=SCENARIOS / "uas_answer_challenges_bye.xml", timeout=30) as callee:
        await trunk_with_login(stack, callee.port)
        caller = Sipp(
            scenario="uac", remote=stack.sip, service=NUMBER, timeout=30, extra=["-d", "1000"]
        )
        caller_result = await caller.run()  # hangs up after a second: we BYE the carrier
        callee_result = await callee.wait()
    assert caller_result.returncode == 0, caller_result.explain()
    assert callee_result.returncode == 0, callee_result.explain()
    parent, child = await stack.wait_for_calls_to_end(count=2)
    assert parent.status == CallStatus.COMPLETED and child.status == CallStatus.COMPLETED


async def test_the_bye_to_a_call_the_trunk_brought_in_answers_its_challenge(
    stack: Stack,
) -> None:
    stack.app.route("/voice", document({"say": {"text": "Goodbye."}}, {"hangup": {}}))
    await trunk_with_login(stack, 5)  # calls out go nowhere here; this trunk brings one in
    carrier = Sipp(
        scenario=SCENARIOS / "uac_challenges_bye.xml", remote=stack.sip, service=NUMBER, timeout=30
    )
    result = await carrier.run()
    assert result.returncode == 0, result.explain()
    (call,) = await stack.wait_for_calls_to_end()
    assert (call.status, call.hangup_cause) == (CallStatus.COMPLETED, "normal_clearing")
