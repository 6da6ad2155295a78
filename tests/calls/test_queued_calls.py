"""A queued call is funded again when it is finally dialled (issue 11 item 10).

``POST /v1/calls`` admits a call and holds its first slice, and the call waits ``queued``
until a process dials it — at once normally, but after a crash only when the next
process starts (or a sweep finds a notice that was missed). By then the wallet or the
rate may have changed, so the claim that dials it holds the first slice again against
the wallet as it is: a call the wallet no longer pays fails with
``wallet.insufficient_funds`` and is not dialled, so no second is ever billed past zero.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select
from tests.sipp import SCENARIOS as SIP_SCENARIOS
from tests.sipp import Sipp, requires_sipp
from tests.voice.stack import CALLEE, NUMBER, Stack, open_stack
from tests.voice.voice_rig import AppServer, document

from sautikit.billing.ledger import available, balance
from sautikit.calls.admission import Admission, CallAsk, Origin
from sautikit.calls.status import CallStatus
from sautikit.db import Database
from sautikit.db.models import Rate, WalletReservation

pytestmark = [pytest.mark.sipp, requires_sipp]

WALLET = 500  # KES 5.00: one minute at the default KES 3.00/min, not at KES 10.00


@pytest.fixture
async def stack(database: Database, app: AppServer, tmp_path: Path) -> AsyncIterator[Stack]:
    async with open_stack(database, app, tmp_path, credit_minor=WALLET) as opened:
        yield opened


async def queue_as_the_api_does(stack: Stack) -> str:
    """Admit a call as POST /v1/calls does (its first slice held), whose notice no process
    got: the state a crash right after the request leaves."""
    admission = Admission(stack.settings)
    async with stack.database.transaction() as session:
        ask = CallAsk(
            Origin.API,
            to=CALLEE,
            caller=NUMBER,
            workspace_id=stack.workspace_id,
            action_url=stack.app.url("/answered"),
        )
        admitted = await admission.admit(session, ask)
        return admitted.call.id


async def holds(stack: Stack) -> list[int]:
    async with stack.database.sessions() as session:
        return list((await session.scalars(select(WalletReservation.amount_minor))).all())


async def test_a_queued_call_the_wallet_no_longer_pays_fails_undialled(stack: Stack) -> None:
    call_id = await queue_as_the_api_does(stack)
    assert await holds(stack) == [300]  # one minute at KES 3.00
    # While it waited the operator raised the rate: a minute now costs KES 10.00.
    async with stack.database.transaction() as session:
        session.add(Rate(direction="outbound", prefix="+25472", rate_per_minute_minor=1000))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as carrier:
        carrier.bind(("127.0.0.1", 0))
        carrier.setblocking(False)
        await stack.route_trunk_to(carrier.getsockname()[1])
        await stack.manager._maintain()  # what a start (or the sweep) does with it
        await asyncio.sleep(0.5)
        with pytest.raises(BlockingIOError):
            carrier.recv(65536)  # no INVITE reached the carrier
    assert stack.manager.live == {}
    body = (await stack.api.get(f"/v1/calls/{call_id}", headers=stack.headers)).json()
    assert (body["status"], body["hangup_cause"]) == (CallStatus.FAILED, "insufficient_funds")
    assert body["error"]["code"] == "wallet.insufficient_funds"
    assert body["price_minor"] == 0
    assert await holds(stack) == []  # its hold went with it
    async with stack.database.sessions() as session:
        assert await balance(session, stack.workspace_id) == WALLET
        assert await available(session, stack.workspace_id) == WALLET


async def test_a_queued_call_the_wallet_still_pays_is_dialled_with_its_hold(stack: Stack) -> None:
    stack.app.route("/answered", document({"hangup": {}}))
    call_id = await queue_as_the_api_does(stack)
    async with Sipp(scenario=SIP_SCENARIOS / "uas_answer.xml", timeout=20) as callee:
        await stack.route_trunk_to(callee.port)
        await stack.manager._maintain()
        result = await callee.wait()
    assert result.returncode == 0, result.explain()  # rung, answered, hung up by the app
    (call,) = await stack.wait_for_calls_to_end()
    assert (call.id, call.status) == (call_id, CallStatus.COMPLETED)
    assert await holds(stack) == []
    async with stack.database.sessions() as session:
        assert await balance(session, stack.workspace_id) == WALLET - call.price_minor
