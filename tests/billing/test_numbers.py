"""The number inventory: CSV import, claims that race, monthly renewal and suspension."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from sautikit import accounts
from sautikit.billing import ledger
from sautikit.billing.numbers import (
    SUSPENSION_GRACE,
    ImportSummary,
    InventoryError,
    InventoryLine,
    NumberNotAvailable,
    NumberNotFound,
    active_number,
    claim_number,
    import_inventory,
    month_after,
    parse_inventory,
    release_number,
    renew_numbers,
)
from sautikit.db import Database
from sautikit.db.models import Event, Number, WalletEntry

NOW = datetime(2026, 1, 31, 9, 30, tzinfo=UTC)

INVENTORY = (
    b"\xef\xbb\xbfnumber,monthly_price_minor,capabilities\r\n"
    b"+254711000001,10000,voice\r\n"
    b"\r\n"
    b"+254 711 000 002 ,15000, voice;SMS \r\n"
    b"+254711000003,0\r\n"
)


def test_parse_inventory_reads_the_operators_csv() -> None:
    assert parse_inventory(INVENTORY) == [
        InventoryLine(2, "+254711000001", 10000, ("voice",)),
        InventoryLine(4, "+254711000002", 15000, ("sms", "voice")),
        InventoryLine(5, "+254711000003", 0, ("voice",)),
    ]


def test_parse_inventory_names_every_wrong_line() -> None:
    data = (
        b"+254711000001,10000,voice\n"
        b"0711000002,10000,voice\n"
        b"+254711000003,ten,voice\n"
        b"+254711000004,10000,fax\n"
        b"+254711000001,20000,voice\n"
        b"+254711000005\n"
        b"+2547110000061,100,voice\n"
    )
    with pytest.raises(InventoryError) as error:
        parse_inventory(data)
    assert [line for line, _ in error.value.problems] == [2, 3, 4, 5, 6, 7]
    message = str(error.value)
    assert "line 2: '0711000002' is not a Kenyan E.164 number" in message
    assert "line 3: monthly_price_minor 'ten'" in message
    assert "line 4: unknown capabilities 'fax'" in message
    assert "line 5: +254711000001 already appears on line 1" in message
    assert "line 6: expected 3 columns" in message


@pytest.mark.parametrize(
    ("data", "line"),
    [(b"+254711000001,1,voice\n\xff\xfe,1,voice\n", 2), (b'+254711000001,"1\n', 1)],
)
def test_parse_inventory_refuses_bytes_that_are_not_csv_text(data: bytes, line: int) -> None:
    with pytest.raises(InventoryError) as error:
        parse_inventory(data)
    assert error.value.problems[0][0] == line


@given(st.binary(max_size=200))
def test_parse_inventory_raises_only_inventory_error(data: bytes) -> None:
    try:
        lines = parse_inventory(data)
    except InventoryError as error:
        assert error.problems
        return
    assert all(line.e164.startswith("+254") and len(line.e164) == 13 for line in lines)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (datetime(2026, 1, 31, 9, 30, tzinfo=UTC), datetime(2026, 2, 28, 9, 30, tzinfo=UTC)),
        (datetime(2028, 1, 31, tzinfo=UTC), datetime(2028, 2, 29, tzinfo=UTC)),
        (datetime(2026, 12, 15, tzinfo=UTC), datetime(2027, 1, 15, tzinfo=UTC)),
    ],
)
def test_a_rental_period_is_one_calendar_month(start: datetime, end: datetime) -> None:
    assert month_after(start) == end


async def _workspace(database: Database, balance_minor: int = 0) -> str:
    async with database.transaction() as session:
        workspace_id = (await accounts.create_workspace(session, "w")).id
        if balance_minor:
            await ledger.top_up(session, workspace_id, balance_minor, idempotency_key="seed")
    return workspace_id


async def _import(database: Database, data: bytes = INVENTORY) -> ImportSummary:
    async with database.transaction() as session:
        return await import_inventory(session, parse_inventory(data))


async def _number_id(database: Database, e164: str) -> str:
    async with database.transaction() as session:
        number_id = await session.scalar(select(Number.id).where(Number.e164 == e164))
    assert number_id is not None
    return number_id


async def test_reimport_updates_prices_only_of_unclaimed_numbers(database: Database) -> None:
    assert await _import(database) == ImportSummary(added=3, updated=0, unchanged=0, held=0)
    workspace_id = await _workspace(database, 50_000)
    held_id = await _number_id(database, "+254711000001")
    async with database.transaction() as session:
        await claim_number(session, workspace_id=workspace_id, number_id=held_id, now=NOW)

    summary = await _import(
        database, b"+254711000001,99900,voice\n+254711000002,20000,voice\n+254711000003,0,voice\n"
    )
    assert summary == ImportSummary(added=0, updated=1, unchanged=1, held=1)
    async with database.transaction() as session:
        prices = dict(
            (await session.execute(select(Number.e164, Number.monthly_price_minor))).all()
        )
    assert prices == {"+254711000001": 10000, "+254711000002": 20000, "+254711000003": 0}


async def test_claim_pays_the_first_month_and_fires_provisioned(database: Database) -> None:
    await _import(database)
    workspace_id = await _workspace(database, 25_000)
    number_id = await _number_id(database, "+254711000002")
    async with database.transaction() as session:
        number = await claim_number(
            session, workspace_id=workspace_id, number_id=number_id, now=NOW
        )
        assert (number.status, number.workspace_id) == ("active", workspace_id)
        assert number.paid_until == datetime(2026, 2, 28, 9, 30, tzinfo=UTC)
    async with database.transaction() as session:
        assert await ledger.balance(session, workspace_id) == 10_000
        entry = await session.scalar(
            select(WalletEntry).where(WalletEntry.entry_type == "number_rental")
        )
        assert entry is not None and (entry.amount_minor, entry.number_id) == (-15_000, number_id)
        kinds = (
            await session.scalars(select(Event.kind).where(Event.workspace_id == workspace_id))
        ).all()
        assert "number.provisioned" in kinds
        with pytest.raises(NumberNotAvailable):
            await claim_number(session, workspace_id=workspace_id, number_id=number_id, now=NOW)
        with pytest.raises(NumberNotFound):
            await claim_number(session, workspace_id=workspace_id, number_id="0190-nope", now=NOW)


async def test_a_short_wallet_leaves_the_number_available(database: Database) -> None:
    await _import(database)
    workspace_id = await _workspace(database, 9_999)
    number_id = await _number_id(database, "+254711000001")
    with pytest.raises(ledger.InsufficientFunds):
        async with database.transaction() as session:
            await claim_number(session, workspace_id=workspace_id, number_id=number_id, now=NOW)
    async with database.transaction() as session:
        number = await session.get(Number, number_id)
        assert number is not None and (number.status, number.workspace_id) == ("available", None)
        assert await ledger.balance(session, workspace_id) == 9_999


async def test_concurrent_claims_of_one_number_have_one_winner(database: Database) -> None:
    await _import(database)
    workspaces = [await _workspace(database, 100_000) for _ in range(6)]
    number_id = await _number_id(database, "+254711000001")

    async def claim(workspace_id: str) -> str:
        try:
            async with database.transaction() as session:
                await claim_number(session, workspace_id=workspace_id, number_id=number_id, now=NOW)
        except NumberNotAvailable:
            return "lost"
        return "won"

    outcomes = await asyncio.gather(*(claim(workspace_id) for workspace_id in workspaces))
    assert sorted(outcomes) == ["lost"] * 5 + ["won"]
    winner = workspaces[outcomes.index("won")]
    async with database.transaction() as session:
        number = await session.get(Number, number_id)
        assert number is not None and number.workspace_id == winner
        for workspace_id in workspaces:
            expected = 90_000 if workspace_id == winner else 100_000
            assert await ledger.balance(session, workspace_id) == expected


async def test_release_returns_the_number_and_clears_its_routing(database: Database) -> None:
    await _import(database)
    workspace_id = await _workspace(database, 10_000)
    number_id = await _number_id(database, "+254711000001")
    async with database.transaction() as session:
        number = await claim_number(
            session, workspace_id=workspace_id, number_id=number_id, now=NOW
        )
        number.voice_url = "https://app.example.com/voice"
        number.events_url = "https://app.example.com/events"
    async with database.transaction() as session:
        number = await session.get(Number, number_id)
        assert number is not None
        await release_number(session, number, now=NOW)
    async with database.transaction() as session:
        number = await session.get(Number, number_id)
        assert number is not None
        assert (number.status, number.workspace_id, number.voice_url, number.paid_until) == (
            "available",
            None,
            None,
            None,
        )
        released = await session.scalar(select(Event).where(Event.kind == "number.released"))
        assert released is not None and released.workspace_id == workspace_id
        assert released.target_url == "https://app.example.com/events"
        assert released.data["number"] == "+254711000001"


async def test_renewal_charges_each_month_then_suspends_then_releases(database: Database) -> None:
    await _import(database)
    workspace_id = await _workspace(database, 30_000)
    number_id = await _number_id(database, "+254711000001")
    async with database.transaction() as session:
        await claim_number(session, workspace_id=workspace_id, number_id=number_id, now=NOW)

    async def renew(at: datetime) -> tuple[list[str], ...]:
        async with database.transaction() as session:
            report = await renew_numbers(session, at)
        return report.renewed, report.suspended, report.reactivated, report.released

    assert await renew(NOW + timedelta(days=10)) == ([], [], [], [])
    # Two periods ended (Feb 28 and Mar 28): both are paid, leaving 0.
    assert await renew(datetime(2026, 3, 29, tzinfo=UTC)) == ([number_id], [], [], [])
    assert await renew(datetime(2026, 3, 29, tzinfo=UTC)) == ([], [], [], [])
    suspended_at = datetime(2026, 4, 28, 9, 30, tzinfo=UTC)
    assert await renew(suspended_at) == ([], [number_id], [], [])
    async with database.transaction() as session:
        number = await session.get(Number, number_id)
        assert number is not None and number.status == "suspended"
        assert await ledger.balance(session, workspace_id) == 0
        suspended = await session.scalars(select(Event).where(Event.kind == "number.suspended"))
        assert [event.data["number_id"] for event in suspended] == [number_id]
        rentals = (
            await session.scalars(
                select(WalletEntry.reference).where(WalletEntry.entry_type == "number_rental")
            )
        ).all()
        assert sorted(rentals) == ["20260131T093000Z", "20260228T093000Z", "20260328T093000Z"]
        await ledger.top_up(session, workspace_id, 10_000, idempotency_key="again")

    back = suspended_at + timedelta(days=3)
    assert await renew(back) == ([], [], [number_id], [])
    async with database.transaction() as session:
        number = await session.get(Number, number_id)
        assert number is not None and number.status == "active"
        assert number.paid_until == month_after(back)

    # Unpaid beyond the grace period: back to the inventory.
    assert await renew(month_after(back)) == ([], [number_id], [], [])
    assert await renew(month_after(back) + SUSPENSION_GRACE) == ([], [], [], [number_id])
    async with database.transaction() as session:
        number = await session.get(Number, number_id)
        assert number is not None and (number.status, number.workspace_id) == ("available", None)


async def test_only_held_paid_up_numbers_ring_and_call_out(database: Database) -> None:
    await _import(database)
    workspace_id = await _workspace(database, 10_000)
    other_id = await _workspace(database)
    number_id = await _number_id(database, "+254711000001")
    async with database.transaction() as session:
        assert await active_number(session, "+254711000001") is None  # nobody holds it
        await claim_number(session, workspace_id=workspace_id, number_id=number_id, now=NOW)
        found = await active_number(session, "+254711000001")
        assert found is not None and found.id == number_id
        mine = await active_number(session, "+254711000001", workspace_id=workspace_id)
        assert mine is not None
        assert await active_number(session, "+254711000001", workspace_id=other_id) is None
        found.status = "suspended"
        await session.flush()
        assert await active_number(session, "+254711000001") is None


async def test_a_claim_starts_with_no_routing(database: Database) -> None:
    # A routing write racing a release could leave a URL on an inventory number; the next
    # owner's calls must never go to the previous owner's app.
    await _import(database)
    workspace_id = await _workspace(database, 10_000)
    number_id = await _number_id(database, "+254711000001")
    async with database.transaction() as session:
        number = await session.get(Number, number_id)
        assert number is not None
        number.voice_url = "https://previous-owner.example/voice"
        number.voice_method = "GET"
    async with database.transaction() as session:
        number = await claim_number(
            session, workspace_id=workspace_id, number_id=number_id, now=NOW
        )
        assert (number.voice_url, number.voice_method) == (None, "POST")
