"""The rate deck (SPEC §6): which per-minute price applies, and what a duration costs.

A deck line maps an E.164 prefix and a direction to a price per minute in minor units.
For a destination, the longest matching prefix wins. A workspace may have its own lines;
when any of them matches, they beat the operator's deck outright, so a negotiated price
for ``+254`` holds even where the deck has a longer ``+2547`` line. When nothing matches
(or the deck is empty) the settings' defaults apply: KES 3.00/min out, inbound free.

Money is integer minor units throughout; the price of a duration is rounded up to the
next minor unit, never computed through floats.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from sautikit.config import Settings
from sautikit.db.models import Rate, Workspace

__all__ = [
    "DIRECTIONS",
    "HOME_PREFIX",
    "ON_NET",
    "AppliedRate",
    "RateLine",
    "StoredRates",
    "call_rate_direction",
    "default_rate",
    "price_for",
    "published_rates",
    "rate_for",
    "seconds_affordable",
    "store_rates",
]

DIRECTIONS: tuple[str, ...] = ("outbound", "inbound", "on_net")
#: The deck direction of an outbound call to a number this deployment holds: it never
#: leaves the platform, so it is priced apart from calls a carrier carries.
ON_NET = "on_net"
# Where the settings' default rates are advertised: Kenya, the only default destination.
HOME_PREFIX = "+254"
_HOME_NAME = "Kenya"
_E164 = re.compile(r"\+[0-9]{1,15}")


@dataclass(frozen=True)
class RateLine:
    """One line of a rate deck, as imported or as published."""

    prefix: str
    destination: str
    direction: str
    rate_per_minute_minor: int


@dataclass(frozen=True)
class AppliedRate:
    """The rate chosen for one destination, and where it came from."""

    direction: str
    rate_per_minute_minor: int
    # The matched prefix; None when no line matched and the settings' default applied.
    prefix: str | None
    destination: str
    source: Literal["workspace", "deck", "default"]


@dataclass(frozen=True)
class StoredRates:
    """What an import changed."""

    added: int
    updated: int
    removed: int


def price_for(seconds: int, rate_per_minute_minor: int) -> int:
    """``ceil(seconds × rate / 60)`` minor units: SPEC §6's per-second price."""
    if seconds < 0 or rate_per_minute_minor < 0:
        raise ValueError("seconds and rate must not be negative")
    return -(-seconds * rate_per_minute_minor // 60)


def seconds_affordable(amount_minor: int, rate_per_minute_minor: int) -> int:
    """The longest whole number of seconds whose price is at most ``amount_minor``.

    Raises ``ValueError`` for a free rate, where every duration is affordable.
    """
    if rate_per_minute_minor <= 0:
        raise ValueError("a free rate affords any duration")
    return max(amount_minor, 0) * 60 // rate_per_minute_minor


def _check_direction(direction: str) -> None:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, not {direction!r}")


def default_rate(settings: Settings, direction: str) -> AppliedRate:
    """The settings' rate for a direction, applied when no deck line matches."""
    _check_direction(direction)
    rates = {
        "outbound": settings.default_outbound_rate_minor,
        "inbound": settings.default_inbound_rate_minor,
        ON_NET: settings.default_on_net_rate_minor,
    }
    rate = rates[direction]
    return AppliedRate(direction, rate, None, _HOME_NAME, "default")


def call_rate_direction(direction: str, on_net: bool) -> str:
    """The deck direction a call is rated in: ``on_net`` for an outbound call that stayed
    on the platform, else the call's own direction (SPEC §9: each leg on its own)."""
    return ON_NET if on_net and direction == "outbound" else direction


def _prefixes_of(destination: str) -> list[str]:
    if not _E164.fullmatch(destination):
        return []  # a SIP URI or anything else matches no prefix
    return [destination[:end] for end in range(2, len(destination) + 1)]


async def rate_for(
    session: AsyncSession,
    workspace_id: str | None,
    direction: str,
    destination: str,
    *,
    settings: Settings,
) -> AppliedRate:
    """The per-minute rate for calling ``destination`` (for inbound: the number called).

    ``workspace_id`` None asks for the operator's deck alone.
    """
    _check_direction(direction)
    prefixes = _prefixes_of(destination)
    if not prefixes:
        return default_rate(settings, direction)
    connection = await session.connection()
    matches = (
        await connection.execute(
            _RATES_FOR,
            {"direction": direction, "prefixes": prefixes, "owner": workspace_id},
        )
    ).all()
    if not matches:
        return default_rate(settings, direction)
    # A workspace's own line first, then the longest prefix; the newest line breaks a tie.
    best = max(matches, key=lambda rate: (rate.workspace_id is not None, len(rate.prefix), rate.id))
    return AppliedRate(
        direction=direction,
        rate_per_minute_minor=best.rate_per_minute_minor,
        prefix=best.prefix,
        destination=best.destination,
        source="deck" if best.workspace_id is None else "workspace",
    )


_RATES_FOR = select(
    Rate.id, Rate.workspace_id, Rate.prefix, Rate.destination, Rate.rate_per_minute_minor
).where(
    Rate.direction == bindparam("direction"),
    Rate.prefix.in_(bindparam("prefixes", expanding=True)),
    # The deck's lines and the workspace's own (none when ``owner`` is NULL).
    or_(Rate.workspace_id.is_(None), Rate.workspace_id == bindparam("owner")),
)
"""Built once and run on the session's connection: every call's admission and end ask."""


async def published_rates(
    session: AsyncSession, direction: str, *, settings: Settings
) -> list[RateLine]:
    """The operator's deck for one direction, by prefix; the default line while it is empty."""
    _check_direction(direction)
    deck = (
        await session.scalars(
            select(Rate)
            .where(Rate.workspace_id.is_(None), Rate.direction == direction)
            .order_by(Rate.prefix, Rate.id)
        )
    ).all()
    if not deck:
        default = default_rate(settings, direction)
        return [
            RateLine(HOME_PREFIX, default.destination, direction, default.rate_per_minute_minor)
        ]
    return [
        RateLine(rate.prefix, rate.destination, rate.direction, rate.rate_per_minute_minor)
        for rate in deck
    ]


async def store_rates(
    session: AsyncSession,
    lines: list[RateLine],
    *,
    workspace_id: str | None = None,
    replace: bool = False,
) -> StoredRates:
    """Add or update ``lines`` in the operator's deck, or in a workspace's own rates.

    A line with the same direction and prefix as a stored one updates it. With ``replace``
    the stored lines the file does not name are removed, so the file becomes the deck.
    Raises ``LookupError`` for an unknown workspace, ``ValueError`` for a line given twice.
    """
    if workspace_id is not None and await session.get(Workspace, workspace_id) is None:
        raise LookupError(f"no workspace {workspace_id}")
    owner = (
        Rate.workspace_id.is_(None) if workspace_id is None else Rate.workspace_id == workspace_id
    )
    stored: dict[tuple[str, str], list[Rate]] = {}
    for rate in (await session.scalars(select(Rate).where(owner))).all():
        stored.setdefault((rate.direction, rate.prefix), []).append(rate)
    added = updated = removed = 0
    named: set[tuple[str, str]] = set()
    for line in lines:
        _check_direction(line.direction)
        if (line.direction, line.prefix) in named:
            raise ValueError(f"{line.direction} prefix {line.prefix} is given twice")
        named.add((line.direction, line.prefix))
        same = stored.pop((line.direction, line.prefix), [])
        if same:
            updated += 1
            same[0].destination = line.destination
            same[0].rate_per_minute_minor = line.rate_per_minute_minor
            for duplicate in same[1:]:  # left by an earlier concurrent import
                await session.delete(duplicate)
        else:
            added += 1
            session.add(
                Rate(
                    workspace_id=workspace_id,
                    direction=line.direction,
                    prefix=line.prefix,
                    destination=line.destination,
                    rate_per_minute_minor=line.rate_per_minute_minor,
                )
            )
    if replace:
        for leftovers in stored.values():
            removed += 1
            for rate in leftovers:
                await session.delete(rate)
    await session.flush()
    return StoredRates(added=added, updated=updated, removed=removed)
