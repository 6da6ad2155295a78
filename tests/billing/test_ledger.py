"""The wallet ledger: balance == sum of entries, no overdraft under races, exactly-once
settlement, reservations shared by concurrent calls, and low-balance events."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from sautikit import accounts
from sautikit.billing import ledger
from sautikit.billing.ledger import InsufficientFunds
from sautikit.billing.quota import open_quota, renew_quota
from sautikit.billing.rating import RateLine, store_rates
from sautikit.config import Settings
from sautikit.db import Database
from sautikit.db.models import Call, Event, Number, Wallet, WalletEntry, WalletReservation
from sautikit.db.types import utcnow


async def _workspace(database: Database, threshold: int = 0) -> str:
    async with database.transaction() as session:
        workspace = await accounts.create_workspace(session, "ledger")
        workspace.low_balance_threshold_minor = threshold
        return workspace.id


async def _credit(database: Database, workspace_id: str, amount: int, key: str) -> None:
    async with database.transaction() as session:
        await ledger.top_up(session, workspace_id, amount, idempotency_key=key, reference=key)


async def _debit(database: Database, workspace_id: str, amount: int, key: str) -> bool:
    try:
        async with database.transaction() as session:
            await ledger.post_entry(
                session,
                workspace_id=workspace_id,
                amount_minor=-amount,
                entry_type="number_rental",
                idempotency_key=key,
            )
    except InsufficientFunds:
        return False
    return True


async def _books(database: Database, workspace_id: str) -> tuple[int, int, int]:
    """(balance, sum of entries, number of entries)."""
    async with database.transaction() as session:
        balance = await ledger.balance(session, workspace_id)
        total, count = (
            await session.execute(
                select(func.coalesce(func.sum(WalletEntry.amount_minor), 0), func.count()).where(
                    WalletEntry.workspace_id == workspace_id
                )
            )
        ).one()
    return balance, int(total), count


async def _event_kinds(database: Database, workspace_id: str) -> list[str]:
    async with database.transaction() as session:
        return list(
            (
                await session.scalars(
                    select(Event.kind).where(Event.workspace_id == workspace_id).order_by(Event.id)
                )
            ).all()
        )


async def _call(
    database: Database,
    workspace_id: str,
    *,
    answered_seconds: int | None,
    direction: str = "outbound",
    to: str = "+254711000000",
) -> str:
    ended = utcnow()
    async with database.transaction() as session:
        call = Call(
            workspace_id=workspace_id,
            direction=direction,
            from_number="+254700000001",
            to_number=to,
            status="completed" if answered_seconds is not None else "no_answer",
            answered_at=(
                ended - timedelta(seconds=answered_seconds)
                if answered_seconds is not None
                else None
            ),
            ended_at=ended,
            duration_seconds=answered_seconds,
        )
        session.add(call)
        await session.flush()
        return call.id


async def _settle(database: Database, call_id: str, settings: Settings) -> WalletEntry | None:
    async with database.transaction() as session:
        call = await session.get(Call, call_id)
        assert call is not None
        return await ledger.settle_call(session, call, settings=settings)


async def test_credits_and_debits_keep_the_balance_equal_to_the_entries(
    database: Database,
) -> None:
    workspace_id = await _workspace(database)
    async with database.transaction() as session:
        assert await ledger.balance(session, workspace_id) == 0
        assert await session.get(Wallet, workspace_id) is None  # reading creates nothing
    await _credit(database, workspace_id, 10_000, "mpesa-1")
    assert await _debit(database, workspace_id, 2_500, "rent-1")
    async with database.transaction() as session:
        entries = (
            await session.scalars(
                select(WalletEntry)
                .where(WalletEntry.workspace_id == workspace_id)
                .order_by(WalletEntry.id)
            )
        ).all()
    assert [(e.entry_type, e.amount_minor, e.balance_after_minor) for e in entries] == [
        ("top_up", 10_000, 10_000),
        ("number_rental", -2_500, 7_500),
    ]
    assert entries[0].currency == "KES" and entries[0].reference == "mpesa-1"
    assert await _books(database, workspace_id) == (7_500, 7_500, 2)


async def test_a_debit_beyond_the_balance_is_refused_and_changes_nothing(
    database: Database,
) -> None:
    workspace_id = await _workspace(database)
    await _credit(database, workspace_id, 1_000, "pay")
    async with database.transaction() as session:
        with pytest.raises(InsufficientFunds) as caught:
            await ledger.post_entry(
                session,
                workspace_id=workspace_id,
                amount_minor=-1_001,
                entry_type="call",
                idempotency_key="too-much",
            )
    assert (caught.value.balance_minor, caught.value.needed_minor) == (1_000, 1_001)
    assert "KES 10.00 to spend and KES 10.01 is needed" in str(caught.value)
    assert await _books(database, workspace_id) == (1_000, 1_000, 1)
    assert await _debit(database, workspace_id, 1_000, "exactly-all")
    assert await _books(database, workspace_id) == (0, 0, 2)


async def test_a_repeated_key_returns_the_first_entry_and_moves_no_money(
    database: Database,
) -> None:
    workspace_id = await _workspace(database)
    async with database.transaction() as session:
        first = await ledger.top_up(session, workspace_id, 5_000, idempotency_key="receipt-9")
    async with database.transaction() as session:
        again = await ledger.top_up(session, workspace_id, 5_000, idempotency_key="receipt-9")
    assert again.id == first.id
    assert await _books(database, workspace_id) == (5_000, 5_000, 1)
    async with database.transaction() as session:
        (event,) = (
            await session.scalars(select(Event).where(Event.workspace_id == workspace_id))
        ).all()
    assert event.kind == "wallet.top_up"
    assert (event.data["amount_minor"], event.data["balance_minor"]) == (5_000, 5_000)
    assert (event.data["currency"], event.data["reference"]) == ("KES", None)


async def test_malformed_entries_and_unknown_workspaces_are_refused(database: Database) -> None:
    workspace_id = await _workspace(database)
    async with database.transaction() as session:
        with pytest.raises(ValueError, match="must move money"):
            await ledger.post_entry(
                session,
                workspace_id=workspace_id,
                amount_minor=0,
                entry_type="top_up",
                idempotency_key="k",
            )
        with pytest.raises(ValueError, match="entry_type"):
            await ledger.post_entry(
                session,
                workspace_id=workspace_id,
                amount_minor=5,
                entry_type="gift",
                idempotency_key="k",
            )
        with pytest.raises(ValueError, match="positive"):
            await ledger.top_up(session, workspace_id, -5, idempotency_key="k")
        with pytest.raises(LookupError):
            await ledger.top_up(session, "no-such-workspace", 5, idempotency_key="k")


async def test_concurrent_debits_never_overdraw(database: Database) -> None:
    """50 debits of 100 race, each in its own transaction, against 2 050: exactly 20 pass."""
    workspace_id = await _workspace(database)
    await _credit(database, workspace_id, 2_050, "float")
    results = await asyncio.gather(
        *(_debit(database, workspace_id, 100, f"debit-{n}") for n in range(50))
    )
    assert results.count(True) == 20
    assert await _books(database, workspace_id) == (50, 50, 21)


async def test_one_key_posted_concurrently_makes_one_entry(database: Database) -> None:
    workspace_id = await _workspace(database)
    await asyncio.gather(*(_credit(database, workspace_id, 700, "same-receipt") for _ in range(20)))
    assert await _books(database, workspace_id) == (700, 700, 1)


async def test_low_balance_fires_once_per_downward_crossing(database: Database) -> None:
    workspace_id = await _workspace(database, threshold=1_000)
    await _credit(database, workspace_id, 500, "small")  # starts below: not a crossing
    await _credit(database, workspace_id, 4_500, "more")  # 5 000
    await _debit(database, workspace_id, 3_000, "d1")  # 2 000, still above
    await _debit(database, workspace_id, 1_500, "d2")  # 500: crosses down
    await _debit(database, workspace_id, 100, "d3")  # 400: still below, no repeat
    await _credit(database, workspace_id, 600, "back")  # 1 000: at the threshold again
    await _debit(database, workspace_id, 1, "d4")  # 999: crosses down again
    kinds = await _event_kinds(database, workspace_id)
    assert kinds == [
        "wallet.top_up",
        "wallet.top_up",
        "wallet.low_balance",
        "wallet.top_up",
        "wallet.low_balance",
    ]
    async with database.transaction() as session:
        event = await session.scalar(
            select(Event).where(Event.kind == "wallet.low_balance").order_by(Event.id.desc())
        )
        wallet = await session.get(Wallet, workspace_id)
    assert event is not None and event.data["balance_minor"] == 999
    assert event.data["low_balance_threshold_minor"] == 1_000
    assert wallet is not None and wallet.below_threshold


async def test_a_call_is_billed_per_second_once_even_when_settled_twice(
    database: Database, settings: Settings
) -> None:
    workspace_id = await _workspace(database)
    await _credit(database, workspace_id, 10_000, "float")
    call_id = await _call(database, workspace_id, answered_seconds=61)
    first = await _settle(database, call_id, settings)
    again = await _settle(database, call_id, settings)  # crash recovery runs it again
    assert first is not None and again is not None and again.id == first.id
    assert (first.amount_minor, first.entry_type, first.call_id) == (-305, "call", call_id)
    assert first.idempotency_key == f"call:{call_id}"
    async with database.transaction() as session:
        call = await session.get(Call, call_id)
    assert call is not None and call.price_minor == 305
    assert await _books(database, workspace_id) == (9_695, 9_695, 2)


async def test_a_crash_before_the_settlement_committed_leaves_it_to_recovery(
    database: Database, settings: Settings
) -> None:
    workspace_id = await _workspace(database)
    await _credit(database, workspace_id, 10_000, "float")
    call_id = await _call(database, workspace_id, answered_seconds=59)

    class Crash(Exception):
        pass

    with pytest.raises(Crash):
        async with database.transaction() as session:
            call = await session.get(Call, call_id)
            assert call is not None
            await ledger.settle_call(session, call, settings=settings)
            raise Crash
    assert await _books(database, workspace_id) == (10_000, 10_000, 1)
    await _settle(database, call_id, settings)
    await _settle(database, call_id, settings)
    assert await _books(database, workspace_id) == (9_705, 9_705, 2)


async def test_recovery_settles_ended_unpriced_calls_once(
    database: Database, settings: Settings
) -> None:
    workspace_id = await _workspace(database)
    await _credit(database, workspace_id, 10_000, "float")
    await _call(database, workspace_id, answered_seconds=60)
    await _call(database, workspace_id, answered_seconds=None)
    async with database.transaction() as session:
        first = await ledger.settle_ended_calls(session, settings=settings)
    async with database.transaction() as session:  # a second start finds nothing to do
        second = await ledger.settle_ended_calls(session, settings=settings)
    assert (first, second) == (2, 0)
    async with database.transaction() as session:
        prices = (await session.scalars(select(Call.price_minor).order_by(Call.id))).all()
    assert list(prices) == [300, 0]
    assert await _books(database, workspace_id) == (9_700, 9_700, 2)


async def test_unanswered_and_inbound_calls_are_free_by_default_but_inbound_can_be_rated(
    database: Database, settings: Settings
) -> None:
    workspace_id = await _workspace(database)
    await _credit(database, workspace_id, 10_000, "float")
    unanswered = await _call(database, workspace_id, answered_seconds=None)
    assert await _settle(database, unanswered, settings) is None
    async with database.transaction() as session:
        call = await session.get(Call, unanswered)
    assert call is not None and call.price_minor == 0
    free = await _call(database, workspace_id, answered_seconds=600, direction="inbound")
    assert await _settle(database, free, settings) is None
    async with database.transaction() as session:
        await store_rates(session, [RateLine("+254", "Kenya", "inbound", 7)])
    rated = await _call(database, workspace_id, answered_seconds=61, direction="inbound")
    entry = await _settle(database, rated, settings)
    assert entry is not None and entry.amount_minor == -8
    assert await _books(database, workspace_id) == (9_992, 9_992, 2)


async def test_the_duration_comes_from_the_timestamps_when_none_was_written(
    database: Database, settings: Settings
) -> None:
    workspace_id = await _workspace(database)
    await _credit(database, workspace_id, 10_000, "float")
    call_id = await _call(database, workspace_id, answered_seconds=0)
    async with database.transaction() as session:
        call = await session.get(Call, call_id)
        assert call is not None and call.ended_at is not None
        call.answered_at = call.ended_at - timedelta(seconds=60, milliseconds=1)
        call.duration_seconds = None
        assert ledger.answered_seconds(call) == 61  # a started second is billed
        entry = await ledger.settle_call(session, call, settings=settings)
    assert entry is not None and entry.amount_minor == -305


async def test_holds_make_concurrent_calls_share_the_balance(
    database: Database, settings: Settings
) -> None:
    workspace_id = await _workspace(database)
    await _credit(database, workspace_id, 750, "float")
    first, second, third = [
        await _call(database, workspace_id, answered_seconds=30) for _ in range(3)
    ]
    async with database.transaction() as session:
        # Each call's first slice is a minute at 300/min, whatever the balance.
        assert (await open_quota(session, workspace_id, first, 300, seconds=60)).seconds == 60
        assert await ledger.available(session, workspace_id) == 450
        # Opening again replaces the hold.
        assert (await open_quota(session, workspace_id, first, 300, seconds=30)).seconds == 30
        assert await ledger.available(session, workspace_id) == 600
        assert (await open_quota(session, workspace_id, second, 300, seconds=120)).seconds == 120
        assert await ledger.available(session, workspace_id) == 0
        with pytest.raises(InsufficientFunds) as caught:
            await open_quota(session, workspace_id, third, 300, seconds=60)
        assert caught.value.balance_minor == 0 and caught.value.needed_minor == 300
    # Money held for live calls cannot be spent elsewhere.
    assert not await _debit(database, workspace_id, 1, "rent")
    entry = await _settle(database, first, settings)  # 30 s at 300/min, releasing its hold
    assert entry is not None and entry.amount_minor == -150
    async with database.transaction() as session:
        assert await ledger.available(session, workspace_id) == 0
        assert await ledger.balance(session, workspace_id) == 600
        ledger_holds = await session.scalar(select(func.count()).select_from(WalletReservation))
    assert ledger_holds == 1


async def test_a_free_rate_holds_nothing_and_is_never_cut(database: Database) -> None:
    workspace_id = await _workspace(database)
    call_id = await _call(database, workspace_id, answered_seconds=None)
    async with database.transaction() as session:
        quota = await open_quota(session, workspace_id, call_id, 0, seconds=60)
        assert (quota.seconds, quota.hold_minor) == (None, 0)
        renewed = await renew_quota(session, workspace_id, call_id, 0, slice_seconds=300)
        assert renewed is not None and renewed.seconds is None
        with pytest.raises(InsufficientFunds):
            await open_quota(session, workspace_id, call_id, 1, seconds=60)


async def test_concurrent_first_slices_never_hold_more_than_the_balance(
    database: Database,
) -> None:
    workspace_id = await _workspace(database)
    await _credit(database, workspace_id, 1_000, "float")
    calls = [await _call(database, workspace_id, answered_seconds=None) for _ in range(10)]

    async def hold(call_id: str) -> bool:
        try:
            async with database.transaction() as session:
                await open_quota(session, workspace_id, call_id, 300, seconds=60)
        except InsufficientFunds:
            return False
        return True

    results = await asyncio.gather(*(hold(call_id) for call_id in calls))
    assert results.count(True) == 3
    async with database.transaction() as session:
        assert await ledger.available(session, workspace_id) == 100


async def test_a_call_that_outran_its_hold_takes_no_more_than_the_wallet_has(
    database: Database, settings: Settings
) -> None:
    workspace_id = await _workspace(database)
    await _credit(database, workspace_id, 300, "float")
    call_id = await _call(database, workspace_id, answered_seconds=62)
    async with database.transaction() as session:
        assert (await open_quota(session, workspace_id, call_id, 300, seconds=60)).seconds == 60
    entry = await _settle(database, call_id, settings)
    assert entry is not None and entry.amount_minor == -300
    assert await _books(database, workspace_id) == (0, 0, 2)


async def test_transcription_is_charged_per_second_once_per_recording(
    database: Database, settings: Settings
) -> None:
    workspace_id = await _workspace(database)
    await _credit(database, workspace_id, 1_000, "float")
    async with database.transaction() as session:
        first = await ledger.charge_transcription(
            session, workspace_id, "rec-1", 61, settings=settings
        )
        again = await ledger.charge_transcription(
            session, workspace_id, "rec-1", 61, settings=settings
        )
        nothing = await ledger.charge_transcription(
            session, workspace_id, "rec-2", 0, settings=settings
        )
    assert first is not None and again is not None and again.id == first.id
    assert (first.amount_minor, first.entry_type) == (-102, "transcription")  # 100/min
    assert nothing is None
    assert await _books(database, workspace_id) == (898, 898, 2)


async def test_number_rental_is_charged_once_per_period(database: Database) -> None:
    workspace_id = await _workspace(database)
    await _credit(database, workspace_id, 15_000, "float")
    async with database.transaction() as session:
        number = Number(e164="+254709000001", monthly_price_minor=10_000, workspace_id=workspace_id)
        session.add(number)
        await session.flush()
        november = await ledger.charge_number_rental(
            session, workspace_id, number.id, 10_000, "2026-11"
        )
        repeat = await ledger.charge_number_rental(
            session, workspace_id, number.id, 10_000, "2026-11"
        )
        assert november is not None and repeat is not None and repeat.id == november.id
        assert (november.number_id, november.reference) == (number.id, "2026-11")
        with pytest.raises(InsufficientFunds):
            await ledger.charge_number_rental(session, workspace_id, number.id, 10_000, "2026-12")
        free = await ledger.charge_number_rental(session, workspace_id, number.id, 0, "2027-01")
        assert free is None
    assert await _books(database, workspace_id) == (5_000, 5_000, 2)
