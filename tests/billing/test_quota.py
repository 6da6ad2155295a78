"""Prepaid quota (SPEC §6): a live call holds a slice of credit and renews it slice by slice."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from sautikit import accounts
from sautikit.billing import ledger
from sautikit.billing.ledger import InsufficientFunds
from sautikit.billing.quota import Quota, first_grant, next_grant, open_quota, renew_quota
from sautikit.billing.rating import price_for
from sautikit.config import Settings
from sautikit.db import Database
from sautikit.db.models import Call, WalletReservation
from sautikit.db.types import utcnow

rates = st.integers(min_value=1, max_value=50_000)
seconds = st.integers(min_value=0, max_value=100_000)
money = st.integers(min_value=-1_000, max_value=10_000_000)
slices = st.integers(min_value=1, max_value=3_600)


@given(granted=seconds, spendable=money, rate=rates, slice_seconds=slices)
def test_a_renewal_grants_only_paid_seconds_and_never_takes_any_back(
    granted: int, spendable: int, rate: int, slice_seconds: int
) -> None:
    total = next_grant(granted, spendable, rate, slice_seconds)
    assert granted <= total <= granted + slice_seconds
    if total > granted:  # every new second is paid for by what the wallet may spend
        assert price_for(total, rate) <= spendable
    # ... and as many as are paid for: one more second would cost more than there is.
    if total < granted + slice_seconds:
        assert price_for(total + 1, rate) > spendable


@given(spendable=money, rate=st.integers(min_value=0, max_value=50_000), wanted=slices)
def test_a_first_slice_is_all_or_nothing(spendable: int, rate: int, wanted: int) -> None:
    try:
        quota = first_grant(spendable, rate, wanted)
    except InsufficientFunds as short:
        assert price_for(wanted, rate) > spendable
        assert short.needed_minor == price_for(wanted, rate)
        return
    assert quota.hold_minor == price_for(wanted, rate) <= max(spendable, 0)
    if rate:
        assert quota.seconds is not None and quota.seconds >= wanted
        assert price_for(quota.seconds, rate) == quota.hold_minor  # the hold pays them all
    else:
        assert quota.seconds is None


@given(
    balance=st.integers(min_value=0, max_value=100_000),
    rate=rates,
    first=st.integers(min_value=1, max_value=600),
    slice_seconds=slices,
    calls=st.integers(min_value=1, max_value=6),
)
def test_slices_of_concurrent_calls_never_hold_more_than_the_balance(
    balance: int, rate: int, first: int, slice_seconds: int, calls: int
) -> None:
    """Calls opening and renewing in turn, as the wallet lock orders them."""
    holds: list[int] = []
    for _ in range(calls):
        try:
            holds.append(first_grant(balance - sum(holds), rate, first).hold_minor)
        except InsufficientFunds:
            continue
    for _ in range(3):
        for index, hold in enumerate(holds):
            others = sum(holds) - hold
            granted = (hold * 60) // rate
            total = next_grant(granted, balance - others, rate, slice_seconds)
            holds[index] = max(hold, price_for(total, rate))
            assert sum(holds) <= balance


async def _workspace_with(database: Database, credit: int) -> str:
    async with database.transaction() as session:
        workspace = await accounts.create_workspace(session, "quota")
        if credit:
            await ledger.top_up(session, workspace.id, credit, idempotency_key="seed")
        return workspace.id


async def _live_call(database: Database, workspace_id: str) -> str:
    async with database.transaction() as session:
        call = Call(
            workspace_id=workspace_id,
            direction="outbound",
            from_number="+254700000001",
            to_number="+254711000000",
            status="answered",
            answered_at=utcnow(),
        )
        session.add(call)
        await session.flush()
        return call.id


async def _renew(
    database: Database, workspace_id: str, call_id: str, slice_seconds: int = 300
) -> Quota | None:
    async with database.transaction() as session:
        return await renew_quota(session, workspace_id, call_id, 300, slice_seconds=slice_seconds)


async def test_a_renewal_grants_the_next_slice_and_a_top_up_funds_it(
    database: Database,
) -> None:
    """KES 3.50 at KES 3.00/min: a minute, then 10 s more; a top-up of KES 3.00 during
    the call funds the next slice, and the wallet's last minor unit is spent."""
    workspace_id = await _workspace_with(database, 350)
    call_id = await _live_call(database, workspace_id)
    async with database.transaction() as session:
        assert (await open_quota(session, workspace_id, call_id, 300, seconds=60)).seconds == 60
    renewed = await _renew(database, workspace_id, call_id)
    assert renewed is not None and renewed.seconds == 70  # 350 minor pays 70 s
    again = await _renew(database, workspace_id, call_id)
    assert again is not None and again.seconds == 70  # nothing more to grant
    async with database.transaction() as session:
        await ledger.top_up(session, workspace_id, 300, idempotency_key="mid-call")
    funded = await _renew(database, workspace_id, call_id)
    assert funded is not None and funded.seconds == 130
    async with database.transaction() as session:
        assert await ledger.available(session, workspace_id) == 0


async def test_a_slice_is_at_most_the_quota(database: Database) -> None:
    workspace_id = await _workspace_with(database, 100_000)
    call_id = await _live_call(database, workspace_id)
    async with database.transaction() as session:
        await open_quota(session, workspace_id, call_id, 300, seconds=60)
    renewed = await _renew(database, workspace_id, call_id, slice_seconds=300)
    assert renewed is not None and renewed.seconds == 360
    async with database.transaction() as session:
        hold = await session.scalar(
            select(WalletReservation.amount_minor).where(WalletReservation.call_id == call_id)
        )
    assert hold == 1_800  # 360 s at 300/min; the rest of the wallet stays free


async def test_a_call_settled_is_never_held_again(database: Database, settings: Settings) -> None:
    workspace_id = await _workspace_with(database, 1_000)
    call_id = await _live_call(database, workspace_id)
    async with database.transaction() as session:
        await open_quota(session, workspace_id, call_id, 300, seconds=60)
        call = await session.get(Call, call_id)
        assert call is not None
        call.status, call.ended_at, call.duration_seconds = "completed", utcnow(), 10
        await ledger.settle_call(session, call, settings=settings)
    assert await _renew(database, workspace_id, call_id) is None
    async with database.transaction() as session:
        assert await ledger.available(session, workspace_id) == 950


async def test_concurrent_renewals_never_hold_more_than_the_balance(database: Database) -> None:
    workspace_id = await _workspace_with(database, 2_000)
    calls = [await _live_call(database, workspace_id) for _ in range(5)]
    async with database.transaction() as session:
        for call_id in calls:
            await open_quota(session, workspace_id, call_id, 300, seconds=60)
    results = await asyncio.gather(*(_renew(database, workspace_id, c) for c in calls))
    granted = sorted(result.seconds for result in results if result is not None)
    # 500 minor were free: exactly 100 s more went to the calls, in whole seconds.
    assert sum(granted) == 5 * 60 + 100
    async with database.transaction() as session:
        assert await ledger.available(session, workspace_id) == 0


@pytest.mark.parametrize("short", [0, 299])
async def test_a_first_slice_the_wallet_cannot_pay_is_refused(
    database: Database, short: int
) -> None:
    workspace_id = await _workspace_with(database, short)
    call_id = await _live_call(database, workspace_id)
    with pytest.raises(InsufficientFunds):
        async with database.transaction() as session:
            await open_quota(session, workspace_id, call_id, 300, seconds=60)
