"""After a crash: the next ``sautikit serve`` ends at the far end what the dead one held.

The crash tests run the real process (tests/serve_process.py), put a bridged call on it —
a SIPp caller dials NUMBER, the app answers ``dial``, a SIPp callee on the trunk answers
or keeps ringing — SIGKILL it, and start a new process on the same data and SIP port.
The SIPp peers must then hear what a live process would have sent: BYE to each answered
leg, CANCEL to the ringing one; the call records end as ``network_error``.

The queued-call tests run the in-process stack: a call the API queued is placed at once
while it is young, and failed with ``call.queue_expired`` once it is too old to ring.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from tests.serve_process import CALLEE, NUMBER, calls, crash_mid_call, seed
from tests.sipp import SCENARIOS as SIP_SCENARIOS
from tests.sipp import Sipp, requires_sipp
from tests.voice.stack import Stack, open_stack
from tests.voice.voice_rig import AppServer, document

from sautikit.db import Database
from sautikit.db.models import Call
from sautikit.db.types import utcnow

pytestmark = [pytest.mark.sipp, requires_sipp]


@pytest.fixture
def dial_app(app: AppServer) -> Iterator[AppServer]:
    app.route("/voice", document({"dial": {"number": CALLEE, "timeout": 60}}))
    yield app


async def until_statuses(database: Database, wanted: list[str], seconds: float = 60) -> None:
    """Wait until the calls (oldest first) have exactly the ``wanted`` statuses."""
    for _ in range(int(seconds / 0.1)):
        if [call.status for call in await calls(database)] == wanted:
            return
        await asyncio.sleep(0.1)
    found = [(call.status, call.direction) for call in await calls(database)]
    raise AssertionError(f"calls are {found}, never {wanted}")


@pytest.mark.parametrize(
    ("callee_scenario", "child_status"),
    [
        (SIP_SCENARIOS / "uas_answer.xml", "answered"),  # the carrier leg gets BYE
        (SIP_SCENARIOS / "uas_no_answer.xml", "ringing"),  # the carrier leg gets CANCEL
    ],
    ids=["answered", "ringing"],
)
async def test_after_a_sigkill_the_next_start_ends_every_leg_at_the_far_end(
    served_database: tuple[str, Database],
    dial_app: AppServer,
    tmp_path: Path,
    callee_scenario: Path,
    child_status: str,
) -> None:
    url, database = served_database
    async with Sipp(scenario=callee_scenario, timeout=60) as callee:
        await seed(database, voice_url=dial_app.url("/voice"), trunk_port=callee.port)
        # The caller's leg is answered by the dial; the carrier's answers or rings.
        await crash_mid_call(
            url,
            tmp_path / "var",
            callee,
            lambda: until_statuses(database, ["answered", child_status]),
        )
    # Each SIPp scenario ends with what a live Sautikit would have sent it: the caller's
    # BYE; the callee's BYE, or the CANCEL and the ACK of its 487.
    parent, child = await calls(database)
    assert child.parent_call_id == parent.id
    assert (parent.status, parent.hangup_cause) == ("completed", "network_error")
    expected_child = "completed" if child_status == "answered" else "failed"
    assert (child.status, child.hangup_cause) == (expected_child, "network_error")


# --- queued calls ---------------------------------------------------------------------


@pytest.fixture
async def stack(database: Database, app: AppServer, tmp_path: Path) -> AsyncIterator[Stack]:
    async with open_stack(database, app, tmp_path, queued_call_expiry_seconds=30) as opened:
        yield opened


async def queue(stack: Stack, age: timedelta) -> str:
    """A call as POST /v1/calls leaves it (queued, nobody's), whose notice no process got."""
    async with stack.database.transaction() as session:
        call = Call(
            workspace_id=stack.workspace_id,
            direction="outbound",
            from_number=NUMBER,
            to_number=CALLEE,
            action_url=stack.app.url("/answered"),
            created_at=utcnow() - age,
        )
        session.add(call)
        await session.flush()
        return call.id


async def test_a_queued_call_too_old_to_ring_fails_with_a_reason(stack: Stack) -> None:
    call_id = await queue(stack, timedelta(minutes=5))
    await stack.manager._maintain()
    assert stack.manager.live == {}  # nobody was dialled
    shown = await stack.api.get(f"/v1/calls/{call_id}", headers=stack.headers)
    body = shown.json()
    assert (body["status"], body["hangup_cause"]) == ("failed", "network_error")
    assert body["error"]["code"] == "call.queue_expired"
    assert body["price_minor"] == 0


async def test_a_young_queued_call_is_placed_at_once(stack: Stack) -> None:
    stack.app.route("/answered", document({"hangup": {}}))
    async with Sipp(scenario=SIP_SCENARIOS / "uas_answer.xml", timeout=20) as callee:
        await stack.route_trunk_to(callee.port)
        call_id = await queue(stack, timedelta(seconds=5))
        await stack.manager._maintain()
        result = await callee.wait()
    assert result.returncode == 0, result.explain()  # rung, answered, hung up by the app
    (call,) = await stack.wait_for_calls_to_end()
    assert (call.id, call.status) == (call_id, "completed")
