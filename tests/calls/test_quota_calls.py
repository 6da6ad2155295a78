"""Prepaid quota on real calls (SPEC §6): SIPp callees on a trunk, the app on loopback.

The seed's Pattern A and small wallets: KES 10.00 at KES 3.00/min funds a recorded
bridged call's two legs or two concurrent calls, KES 20.00 five; every call is billed
``ceil(seconds × rate / 60)`` in one debit; a call whose next slice cannot be funded is
cut with ``insufficient_funds`` after ``call.funds_low``; a top-up during the call funds
what follows.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from tests.sipp import SCENARIOS as SIP_SCENARIOS
from tests.sipp import Sipp, requires_sipp
from tests.voice.stack import CALLEE, NUMBER, Stack, open_stack
from tests.voice.voice_rig import AppServer, document

from sautikit.billing.ledger import top_up
from sautikit.billing.rating import price_for
from sautikit.db import Database
from sautikit.db.models import Call, Rate, WalletEntry, WalletReservation

pytestmark = [requires_sipp]

AGENT = "+254720000002"
RATE = 300  # KES 3.00 a minute, the default outbound rate


async def _place(stack: Stack, **extra: object) -> dict[str, object]:
    body = {"to": CALLEE, "from": NUMBER, "action_url": stack.app.url("/answered"), **extra}
    answer = await stack.api.post("/v1/calls", json=body, headers=stack.headers)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


async def _debits(stack: Stack) -> dict[str, int]:
    async with stack.database.sessions() as session:
        rows = await session.execute(
            select(WalletEntry.call_id, WalletEntry.amount_minor).where(
                WalletEntry.entry_type == "call"
            )
        )
        return {str(call_id): -amount for call_id, amount in rows.all()}


async def _balance(stack: Stack) -> tuple[int, int]:
    shown = (await stack.api.get("/v1/wallet/balance", headers=stack.headers)).json()
    return shown["balance_minor"], shown["available_minor"]


async def _holds(stack: Stack) -> int:
    async with stack.database.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(WalletReservation)) or 0)


def _assert_billed_exactly(calls: list[Call], debits: dict[str, int]) -> None:
    for call in calls:
        assert call.status == "completed", (call.id, call.status, call.hangup_cause)
        assert call.duration_seconds is not None and call.duration_seconds > 0
        price = price_for(call.duration_seconds, RATE)
        assert call.price_minor == price
        assert debits[call.id] == price  # one debit per call, of exactly its price


@pytest.fixture
async def ten_shillings(database: Database, app: AppServer, tmp_path: Path) -> AsyncIterator[Stack]:
    async with open_stack(database, app, tmp_path, credit_minor=1_000) as opened:
        yield opened


async def test_a_recorded_dial_connects_both_legs_on_ten_shillings(ten_shillings: Stack) -> None:
    """Pattern A on KES 10.00: the API call and its dialled agent each hold a minute."""
    stack = ten_shillings
    stack.app.route(
        "/answered",
        document({"dial": {"number": AGENT, "record": "record-from-answer"}}),
    )
    async with Sipp(scenario=SIP_SCENARIOS / "uas_answer.xml", calls=2, timeout=30) as callee:
        await stack.route_trunk_to(callee.port)
        placed = await _place(stack, max_duration=3)
        result = await callee.wait()
    assert result.returncode == 0, result.explain()
    parent, child = await stack.wait_for_calls_to_end(count=2)
    assert parent.id == placed["id"] and child.parent_call_id == parent.id
    assert child.to_number == AGENT
    _assert_billed_exactly([parent, child], await _debits(stack))
    assert await _balance(stack) == (1_000 - parent.price_minor - child.price_minor,) * 2
    assert await _holds(stack) == 0
    shown = (await stack.api.get(f"/v1/calls/{parent.id}", headers=stack.headers)).json()
    assert [recording["source"] for recording in shown["recordings"]] == ["dial"]


@pytest.mark.parametrize(("credit", "calls"), [(1_000, 2), (2_000, 5)])
async def test_small_wallets_fund_concurrent_calls(
    database: Database, app: AppServer, tmp_path: Path, credit: int, calls: int
) -> None:
    async with open_stack(database, app, tmp_path, credit_minor=credit) as stack:
        stack.app.route("/answered", document({"pause": {"length": 2}}, {"hangup": {}}))
        async with Sipp(
            scenario=SIP_SCENARIOS / "uas_answer.xml", calls=calls, timeout=40
        ) as callee:
            await stack.route_trunk_to(callee.port)
            placed = [await _place(stack) for _ in range(calls)]
            result = await callee.wait()
        assert result.returncode == 0, result.explain()
        ended = await stack.wait_for_calls_to_end(count=calls, seconds=40)
        assert sorted(call.id for call in ended) == sorted(str(p["id"]) for p in placed)
        _assert_billed_exactly(ended, await _debits(stack))
        spent = sum(call.price_minor or 0 for call in ended)
        assert await _balance(stack) == (credit - spent, credit - spent)
        assert await _holds(stack) == 0


async def test_a_call_the_wallet_cannot_renew_is_warned_then_cut(
    database: Database, app: AppServer, tmp_path: Path
) -> None:
    """KES 1.00 a second, KES 3.50 in the wallet, slices of 2 s: the call gets its 2 s,
    then 1 s more, hears nothing of the rest, and is billed exactly KES 3.00."""
    async with open_stack(
        database,
        app,
        tmp_path,
        credit_minor=350,
        min_call_funding_seconds=2,
        call_quota_seconds=2,
    ) as stack:
        async with database.transaction() as session:
            session.add(Rate(direction="outbound", prefix="+25472", rate_per_minute_minor=6000))
        stack.app.route("/answered", document({"pause": {"length": 60}}))
        async with Sipp(scenario=SIP_SCENARIOS / "uas_answer.xml", timeout=30) as callee:
            await stack.route_trunk_to(callee.port)
            await _place(stack)
            result = await callee.wait()  # SIPp hears our BYE when the quota runs out
        assert result.returncode == 0, result.explain()
        (call,) = await stack.wait_for_calls_to_end()
        assert call.hangup_cause == "insufficient_funds"
        assert (call.duration_seconds, call.price_minor) == (3, 300)
        kinds = await stack.events(call.id)
        assert kinds.index("call.funds_low") < kinds.index("call.completed")
        assert await _balance(stack) == (50, 50)
        assert await _holds(stack) == 0


async def test_a_top_up_during_the_call_funds_its_next_slice(
    database: Database, app: AppServer, tmp_path: Path
) -> None:
    """KES 1.00 a second, KES 6.00 in the wallet, slices of 6 s; KES 6.00 more arrives
    while the first slice runs: the call lasts 12 s, and the wallet ends at zero."""
    async with open_stack(
        database,
        app,
        tmp_path,
        credit_minor=600,
        min_call_funding_seconds=6,
        call_quota_seconds=6,
    ) as stack:
        async with database.transaction() as session:
            session.add(Rate(direction="outbound", prefix="+25472", rate_per_minute_minor=6000))
        stack.app.route("/answered", document({"pause": {"length": 60}}))
        async with Sipp(scenario=SIP_SCENARIOS / "uas_answer.xml", timeout=40) as callee:
            await stack.route_trunk_to(callee.port)
            await _place(stack)
            await stack.app.wait_for_hits("/answered")
            async with database.transaction() as session:
                await top_up(session, stack.workspace_id, 600, idempotency_key="mid-call")
            result = await callee.wait()
        assert result.returncode == 0, result.explain()
        (call,) = await stack.wait_for_calls_to_end()
        assert call.hangup_cause == "insufficient_funds"
        assert (call.duration_seconds, call.price_minor) == (12, 1_200)
        assert await _balance(stack) == (0, 0)
