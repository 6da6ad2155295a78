"""Numbers: the operator's inventory of Kenyan DIDs, and their claim, rental and release.

* :func:`parse_inventory` reads the operator's CSV (``number,monthly_price_minor,
  capabilities``) and is pure; :func:`import_inventory` applies it. A wrong line names its
  line number and nothing is applied.
* :func:`claim_number` gives an available number to a workspace with one conditional
  UPDATE (``WHERE workspace_id IS NULL AND status = 'available'``): when workspaces race
  for one number the database lets exactly one row change, so exactly one wins. The first
  month's rental is debited in the same transaction; short funds roll the claim back.
* :func:`renew_numbers` is the monthly job. A number whose paid period has ended is
  renewed from the wallet; when the wallet cannot pay, the number is ``suspended`` (it
  stays the workspace's but takes no calls and its devices cannot register). Each run
  retries suspended numbers; one still unpaid after :data:`SUSPENSION_GRACE` is released
  back to the inventory.
* :func:`release_number` puts a number back: routing cleared, SIP credentials revoked,
  rental stopped, ``number.released`` recorded.

Statuses: ``available`` (in the inventory) → ``active`` (claimed and paid) ⇄
``suspended`` (unpaid) → ``available`` again on release.
"""

from __future__ import annotations

import calendar
import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from sautikit.billing.ledger import InsufficientFunds, charge_number_rental
from sautikit.billing.sip_credentials import revoke_number_credentials
from sautikit.db.models import Number
from sautikit.db.types import rows_changed
from sautikit.events.outbox import record_event

__all__ = [
    "ACTIVE",
    "AVAILABLE",
    "CAPABILITIES",
    "SUSPENDED",
    "SUSPENSION_GRACE",
    "ImportSummary",
    "InventoryError",
    "InventoryLine",
    "NumberNotAvailable",
    "NumberNotFound",
    "RenewalReport",
    "active_number",
    "claim_number",
    "import_inventory",
    "month_after",
    "number_event_data",
    "parse_inventory",
    "release_number",
    "renew_numbers",
]

AVAILABLE = "available"
ACTIVE = "active"
SUSPENDED = "suspended"

CAPABILITIES: frozenset[str] = frozenset({"voice", "sms"})
#: How long a suspended number waits for its rental before it goes back to the inventory.
SUSPENSION_GRACE = timedelta(days=30)

_KENYAN_E164 = re.compile(r"\+254[0-9]{9}")
_PRICE = re.compile(r"[0-9]{1,12}")
_HEADER = ("number", "monthly_price_minor", "capabilities")


class InventoryError(ValueError):
    """The inventory file is wrong; ``problems`` lists ``(line number, message)``."""

    def __init__(self, problems: Sequence[tuple[int, str]]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(f"line {line}: {message}" for line, message in self.problems))


class NumberNotFound(LookupError):
    """No number with this id exists."""


class NumberNotAvailable(Exception):
    """The number is already claimed (by this workspace or another)."""


@dataclass(frozen=True)
class InventoryLine:
    line: int
    e164: str
    monthly_price_minor: int
    capabilities: tuple[str, ...]


@dataclass(frozen=True)
class ImportSummary:
    added: int
    updated: int
    unchanged: int
    #: Numbers in the file that a workspace holds: their price stays as it was claimed.
    held: int


@dataclass
class RenewalReport:
    renewed: list[str] = field(default_factory=list)
    suspended: list[str] = field(default_factory=list)
    reactivated: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)


def _parse_row(line: int, row: list[str]) -> InventoryLine | str:
    """One CSV row as an ``InventoryLine``, or the message saying what is wrong with it."""
    cells = [cell.strip() for cell in row]
    if len(cells) not in (2, 3):
        return f"expected 3 columns ({','.join(_HEADER)}), found {len(cells)}"
    e164, price = cells[0].replace(" ", ""), cells[1]
    if not _KENYAN_E164.fullmatch(e164):
        return f"{cells[0]!r:.30} is not a Kenyan E.164 number (+254 and 9 digits)"
    if not _PRICE.fullmatch(price):
        return f"monthly_price_minor {price!r:.30} is not a whole number of minor units"
    wanted = cells[2] if len(cells) == 3 and cells[2] else "voice"
    capabilities = {part.strip().lower() for part in wanted.split(";") if part.strip()}
    unknown = sorted(capabilities - CAPABILITIES)
    if unknown or not capabilities:
        return f"unknown capabilities {';'.join(unknown)!r:.40}; known: voice, sms"
    return InventoryLine(line, e164, int(price), tuple(sorted(capabilities)))


def parse_inventory(data: bytes) -> list[InventoryLine]:
    """Read an inventory CSV. An optional header row and blank lines are skipped.

    Raises :class:`InventoryError` naming every wrong line (a duplicated number names the
    line it first appeared on), and nothing else.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InventoryError([(data.count(b"\n", 0, error.start) + 1, "not UTF-8 text")]) from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    lines: list[InventoryLine] = []
    problems: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    try:
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if not lines and not problems and row[0].strip().lower() == _HEADER[0]:
                continue
            parsed = _parse_row(line, row)
            if isinstance(parsed, str):
                problems.append((line, parsed))
            elif parsed.e164 in seen:
                problems.append(
                    (line, f"{parsed.e164} already appears on line {seen[parsed.e164]}")
                )
            else:
                seen[parsed.e164] = line
                lines.append(parsed)
    except csv.Error as error:
        problems.append((reader.line_num, f"not valid CSV: {error}"))
    if problems:
        raise InventoryError(problems)
    return lines


async def import_inventory(session: AsyncSession, lines: Sequence[InventoryLine]) -> ImportSummary:
    """Add new numbers; update price and capabilities of those nobody holds."""
    existing = {
        number.e164: number
        for number in await session.scalars(
            select(Number).where(Number.e164.in_([line.e164 for line in lines]))
        )
    }
    added = updated = unchanged = held = 0
    for line in lines:
        number = existing.get(line.e164)
        if number is None:
            session.add(
                Number(
                    e164=line.e164,
                    monthly_price_minor=line.monthly_price_minor,
                    capabilities=list(line.capabilities),
                    status=AVAILABLE,
                )
            )
            added += 1
        elif number.workspace_id is not None or number.status != AVAILABLE:
            held += 1
        elif (number.monthly_price_minor, tuple(number.capabilities)) == (
            line.monthly_price_minor,
            line.capabilities,
        ):
            unchanged += 1
        else:
            number.monthly_price_minor = line.monthly_price_minor
            number.capabilities = list(line.capabilities)
            updated += 1
    await session.flush()
    return ImportSummary(added, updated, unchanged, held)


def month_after(moment: datetime) -> datetime:
    """The same day and time one calendar month later, on the month's last day if shorter."""
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    return moment.replace(
        year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1])
    )


def _period_key(start: datetime) -> str:
    return start.strftime("%Y%m%dT%H%M%SZ")


def number_event_data(number: Number) -> dict[str, Any]:
    """The ``data`` of ``number.provisioned``, ``number.released`` and ``number.suspended``."""
    return {
        "number_id": number.id,
        "number": number.e164,
        "status": number.status,
        "capabilities": list(number.capabilities),
        "monthly_price_minor": number.monthly_price_minor,
        "currency": "KES",
    }


async def active_number(
    session: AsyncSession, e164: str, *, workspace_id: str | None = None
) -> Number | None:
    """The held, paid-up number ``e164`` (of ``workspace_id`` when given), else ``None``.

    The PBX asks this for an inbound call (``None``: answer 404) and the calls API for a
    ``from`` number; a suspended number neither rings nor calls out.
    """
    query = select(Number).where(
        Number.e164 == e164, Number.status == ACTIVE, Number.workspace_id.is_not(None)
    )
    if workspace_id is not None:
        query = query.where(Number.workspace_id == workspace_id)
    number: Number | None = await session.scalar(query)
    return number


async def _charge_period(session: AsyncSession, number: Number, start: datetime) -> None:
    assert number.workspace_id is not None
    await charge_number_rental(
        session, number.workspace_id, number.id, number.monthly_price_minor, _period_key(start)
    )


async def claim_number(
    session: AsyncSession, *, workspace_id: str, number_id: str, now: datetime
) -> Number:
    """Claim an available number for ``workspace_id`` and pay its first month.

    Raises :class:`NumberNotFound`, :class:`NumberNotAvailable`, or the ledger's
    ``InsufficientFunds`` — the caller's transaction must then roll back, which returns
    the number to the inventory.
    """
    result = await session.execute(
        update(Number)
        .where(Number.id == number_id, Number.workspace_id.is_(None), Number.status == AVAILABLE)
        .values(
            workspace_id=workspace_id,
            status=ACTIVE,
            claimed_at=now,
            paid_until=month_after(now),
            # Start with no routing, whatever a racing write left on the released number.
            voice_url=None,
            voice_method="POST",
            fallback_url=None,
            events_url=None,
            callback_encoding=None,
        )
        .execution_options(synchronize_session=False)
    )
    number = await session.get(Number, number_id, populate_existing=True)
    if number is None:
        raise NumberNotFound(number_id)
    if rows_changed(result) != 1:
        raise NumberNotAvailable(f"{number.e164} is not available")
    await _charge_period(session, number, now)
    await record_event(
        session,
        workspace_id=workspace_id,
        kind="number.provisioned",
        data=number_event_data(number),
    )
    return number


async def release_number(session: AsyncSession, number: Number, *, now: datetime) -> None:
    """Give ``number`` back to the inventory and record ``number.released``."""
    workspace_id, events_url = number.workspace_id, number.events_url
    assert workspace_id is not None
    number.workspace_id = None
    number.status = AVAILABLE
    number.voice_url = number.fallback_url = number.events_url = None
    number.voice_method = "POST"
    number.callback_encoding = None
    number.claimed_at = number.paid_until = None
    # The number's row first, its credentials second: the renewal job locks in that order
    # too, so a release and a renewal of one number cannot deadlock.
    await session.flush()
    await revoke_number_credentials(session, number.id, now=now)
    await record_event(
        session,
        workspace_id=workspace_id,
        kind="number.released",
        data=number_event_data(number),
        target_url=events_url,
    )


async def renew_numbers(session: AsyncSession, now: datetime) -> RenewalReport:
    """Charge every number whose paid period has ended, suspending those the wallet
    cannot pay for and releasing those suspended longer than :data:`SUSPENSION_GRACE`.

    Safe to run again after a crash or in two processes at once: each period's debit has
    its own ledger idempotency key (``rental:<number id>:<period start>``), and on
    PostgreSQL the rows being renewed are locked and skipped by a concurrent run.
    """
    report = RenewalReport()
    due = await session.scalars(
        select(Number)
        .where(Number.status.in_((ACTIVE, SUSPENDED)), Number.paid_until <= now)
        .order_by(Number.paid_until)
        .with_for_update(skip_locked=True)
    )
    for number in due.all():
        assert number.paid_until is not None
        if number.status == SUSPENDED:
            await _retry_suspended(session, number, now, report)
            continue
        try:
            while number.paid_until <= now:
                await _charge_period(session, number, number.paid_until)
                number.paid_until = month_after(number.paid_until)
        except InsufficientFunds:
            # paid_until stays at the end of the last paid period: the suspension's start.
            number.status = SUSPENDED
            report.suspended.append(number.id)
            assert number.workspace_id is not None
            # Not among SPEC §7's kinds: the issue asks that the app hear of it.
            await record_event(
                session,
                workspace_id=number.workspace_id,
                kind="number.suspended",
                data=number_event_data(number),
                target_url=number.events_url,
            )
        else:
            report.renewed.append(number.id)
    await session.flush()
    return report


async def _retry_suspended(
    session: AsyncSession, number: Number, now: datetime, report: RenewalReport
) -> None:
    assert number.paid_until is not None
    if now - number.paid_until >= SUSPENSION_GRACE:
        await release_number(session, number, now=now)
        report.released.append(number.id)
        return
    try:
        await _charge_period(session, number, now)
    except InsufficientFunds:
        return
    # A new period starts now: the suspended days were not served, so they are not paid.
    number.status = ACTIVE
    number.paid_until = month_after(now)
    report.reactivated.append(number.id)
