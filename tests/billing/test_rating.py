"""Per-second prices and the rate deck: longest prefix, workspace rates, defaults."""

from __future__ import annotations

from fractions import Fraction
from math import ceil

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sautikit import accounts
from sautikit.billing.rating import (
    RateLine,
    price_for,
    published_rates,
    rate_for,
    seconds_affordable,
    store_rates,
)
from sautikit.config import Settings
from sautikit.db import Database


@pytest.mark.parametrize(
    ("seconds", "rate", "price"),
    [
        (0, 300, 0),
        (1, 300, 5),
        (59, 300, 295),
        (60, 300, 300),
        (61, 300, 305),
        (3599, 300, 17995),
        # 7 and 301 do not divide by 60: every part of a minor unit is rounded up.
        (0, 7, 0),
        (1, 7, 1),
        (59, 7, 7),
        (60, 7, 7),
        (61, 7, 8),
        (3599, 7, 420),
        (1, 301, 6),
        (59, 301, 296),
        (60, 301, 301),
        (61, 301, 307),
        (3599, 301, 18055),
        (3599, 0, 0),
    ],
)
def test_the_per_second_price_at_boundary_durations(seconds: int, rate: int, price: int) -> None:
    assert price_for(seconds, rate) == price


@given(st.integers(0, 10**7), st.integers(0, 10**9))
def test_the_price_is_the_exact_ceiling_without_floats(seconds: int, rate: int) -> None:
    assert price_for(seconds, rate) == ceil(Fraction(seconds * rate, 60))


@given(st.integers(0, 10**9), st.integers(1, 10**6))
def test_the_affordable_seconds_are_the_longest_the_money_pays_for(amount: int, rate: int) -> None:
    seconds = seconds_affordable(amount, rate)
    assert price_for(seconds, rate) <= amount < price_for(seconds + 1, rate)


def test_negative_durations_and_rates_are_refused() -> None:
    with pytest.raises(ValueError):
        price_for(-1, 300)
    with pytest.raises(ValueError):
        price_for(1, -300)


async def test_an_empty_deck_falls_back_to_the_settings(
    database: Database, settings: Settings
) -> None:
    async with database.transaction() as session:
        outbound = await rate_for(session, None, "outbound", "+254711000000", settings=settings)
        inbound = await rate_for(session, None, "inbound", "+254711000000", settings=settings)
        published = await published_rates(session, "outbound", settings=settings)
        custom = await rate_for(
            session,
            None,
            "outbound",
            "+254711000000",
            settings=Settings(default_outbound_rate_minor=450),
        )
    assert (outbound.rate_per_minute_minor, outbound.source, outbound.prefix) == (
        300,
        "default",
        None,
    )
    assert inbound.rate_per_minute_minor == 0
    assert published == [RateLine("+254", "Kenya", "outbound", 300)]
    assert custom.rate_per_minute_minor == 450


async def test_the_longest_matching_prefix_wins(database: Database, settings: Settings) -> None:
    deck = [
        RateLine("+254", "Kenya", "outbound", 300),
        RateLine("+2547", "Kenya mobile", "outbound", 250),
        RateLine("+25471", "Safaricom", "outbound", 200),
        RateLine("+254", "Kenya inbound", "inbound", 50),
    ]
    async with database.transaction() as session:
        await store_rates(session, deck)

    async def rate(direction: str, destination: str) -> tuple[int, str | None]:
        async with database.transaction() as session:
            applied = await rate_for(session, None, direction, destination, settings=settings)
        return applied.rate_per_minute_minor, applied.prefix

    assert await rate("outbound", "+254711000000") == (200, "+25471")
    assert await rate("outbound", "+254733000000") == (250, "+2547")
    assert await rate("outbound", "+254200000000") == (300, "+254")
    assert await rate("outbound", "+255700000000") == (300, None)  # no line: the default
    assert await rate("outbound", "sip:alice@example.com") == (300, None)
    assert await rate("inbound", "+254711000000") == (50, "+254")


async def test_a_workspaces_own_rates_beat_the_deck(database: Database, settings: Settings) -> None:
    async with database.transaction() as session:
        mine = (await accounts.create_workspace(session, "negotiated")).id
        other = (await accounts.create_workspace(session, "list price")).id
        await store_rates(session, [RateLine("+2547", "Kenya mobile", "outbound", 250)])
        await store_rates(
            session, [RateLine("+254", "Kenya, agreed", "outbound", 180)], workspace_id=mine
        )

    async with database.transaction() as session:
        for_mine = await rate_for(session, mine, "outbound", "+254711000000", settings=settings)
        for_other = await rate_for(session, other, "outbound", "+254711000000", settings=settings)
        inbound = await rate_for(session, mine, "inbound", "+254711000000", settings=settings)
        published = await published_rates(session, "outbound", settings=settings)
    assert (for_mine.rate_per_minute_minor, for_mine.source) == (180, "workspace")
    assert (for_other.rate_per_minute_minor, for_other.source) == (250, "deck")
    assert inbound.source == "default"
    assert published == [RateLine("+2547", "Kenya mobile", "outbound", 250)]


async def test_importing_again_updates_and_replace_removes(database: Database) -> None:
    async with database.transaction() as session:
        first = await store_rates(
            session,
            [RateLine("+254", "Kenya", "outbound", 300), RateLine("+255", "TZ", "outbound", 400)],
        )
    async with database.transaction() as session:
        second = await store_rates(session, [RateLine("+254", "Kenya", "outbound", 290)])
    async with database.transaction() as session:
        third = await store_rates(
            session, [RateLine("+256", "Uganda", "outbound", 500)], replace=True
        )
        settings = Settings()
        remaining = await published_rates(session, "outbound", settings=settings)
    assert (first.added, first.updated, first.removed) == (2, 0, 0)
    assert (second.added, second.updated, second.removed) == (0, 1, 0)
    assert (third.added, third.updated, third.removed) == (1, 0, 2)
    assert remaining == [RateLine("+256", "Uganda", "outbound", 500)]


async def test_rates_for_an_unknown_workspace_are_refused(database: Database) -> None:
    async with database.transaction() as session:
        with pytest.raises(LookupError):
            await store_rates(session, [RateLine("+254", "", "outbound", 1)], workspace_id="nope")
