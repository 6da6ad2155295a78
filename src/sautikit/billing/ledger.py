"""The prepaid KES wallet (SPEC §6): an append-only ledger and holds for live calls.

Every credit and debit is one ``WalletEntry``; ``wallets.balance_minor`` is kept equal to
the sum of a workspace's entries by changing both in the caller's transaction. Each
``(workspace, idempotency_key)`` posts at most once, so a retried top-up or a settlement
repeated by crash recovery never moves money twice.

Concurrency: every change starts by locking the workspace's wallet row with an upsert
(``INSERT … ON CONFLICT DO UPDATE … RETURNING``), which also creates the row on first use.
On PostgreSQL that is a row lock held to the end of the transaction; on SQLite the write
takes the database's one write lock. Either way, the idempotency check, the balance check
and the change happen with no other ledger writer of that workspace in between, so the
balance cannot go below zero through a race.

Reservations hold money for live calls: a debit may not spend what a live call holds, and
a call may last only as long as its hold pays for, so concurrent calls share the balance.
A call's hold grows slice by slice while it lasts (:mod:`sautikit.billing.quota`).

Lock order: the wallet row is the first row a ledger change locks, and admission
(:mod:`sautikit.calls.admission`) takes it before anything else too, so no two writers
ever wait on each other in opposite orders (on PostgreSQL, inserting a row that refers to
the workspace takes a KEY SHARE lock on it; nothing here locks the workspace row itself).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from sautikit.billing.rating import call_rate_direction, price_for, rate_for
from sautikit.config import Settings
from sautikit.db.models import Call, Wallet, WalletEntry, WalletReservation, Workspace
from sautikit.db.types import utcnow
from sautikit.events.outbox import record_event

__all__ = [
    "ENTRY_TYPES",
    "InsufficientFunds",
    "WalletState",
    "answered_seconds",
    "available",
    "balance",
    "charge_number_rental",
    "charge_transcription",
    "find_entry",
    "format_kes",
    "held",
    "lock_wallet",
    "post_entry",
    "release_reservation",
    "settle_call",
    "settle_ended_calls",
    "top_up",
]

log = logging.getLogger(__name__)

ENTRY_TYPES: frozenset[str] = frozenset({"top_up", "call", "transcription", "number_rental"})
_MAX_KEY_LENGTH = 255


def format_kes(minor: int) -> str:
    """Minor units as shillings for people, e.g. ``KES 1,500.00``; exact, never a float."""
    sign = "-" if minor < 0 else ""
    shillings, cents = divmod(abs(minor), 100)
    return f"KES {sign}{shillings:,}.{cents:02d}"


class InsufficientFunds(Exception):
    """The wallet cannot pay; nothing was changed.

    ``balance_minor`` is what could be spent: the balance less the holds of live calls.
    """

    def __init__(self, balance_minor: int, needed_minor: int) -> None:
        super().__init__(
            f"the wallet has {format_kes(balance_minor)} to spend "
            f"and {format_kes(needed_minor)} is needed"
        )
        self.balance_minor = balance_minor
        self.needed_minor = needed_minor


@dataclass(frozen=True)
class WalletState:
    """The wallet row as :func:`lock_wallet` found it, locked to the end of the
    transaction."""

    workspace_id: str
    balance_minor: int
    currency: str
    below_threshold: bool


def _wallet_upsert(insert: Any) -> Any:
    new_row = insert(Wallet).values(
        workspace_id=bindparam("wallet_of"),
        balance_minor=0,
        below_threshold=True,
        updated_at=bindparam("now"),
    )
    return new_row.on_conflict_do_update(
        index_elements=[Wallet.workspace_id], set_={"updated_at": new_row.excluded.updated_at}
    ).returning(Wallet.balance_minor, Wallet.currency, Wallet.below_threshold)


# The ledger's statements run on every call's admission and end: built once (statement
# construction and its cache key cost more than SQLite's work) and run on the session's
# connection (the ORM's execution path costs as much again). Nothing they touch is held
# as an ORM object, so the session's identity map cannot go stale.
_LOCK_WALLET = {
    "postgresql": _wallet_upsert(postgresql.insert),
    "sqlite": _wallet_upsert(sqlite.insert),
}
_HELD = select(func.coalesce(func.sum(WalletReservation.amount_minor), 0)).where(
    WalletReservation.workspace_id == bindparam("workspace_id")
)
_HELD_BY_OTHERS = _HELD.where(WalletReservation.call_id != bindparam("call_id"))
_THRESHOLD = select(Workspace.low_balance_threshold_minor).where(
    Workspace.id == bindparam("workspace_id")
)
_SET_BALANCE = (
    update(Wallet)
    .where(Wallet.workspace_id == bindparam("wallet_of"))
    .values(
        balance_minor=bindparam("balance"),
        below_threshold=bindparam("below"),
        updated_at=bindparam("now"),
    )
)
_RELEASE = delete(WalletReservation).where(WalletReservation.call_id == bindparam("hold_of"))


async def lock_wallet(session: AsyncSession, workspace_id: str) -> WalletState:
    """The workspace's wallet row, created if missing, locked to the end of the transaction.

    A new wallet is empty and so starts below any threshold: a first small top-up is not
    a downward crossing, and ``wallet.low_balance`` first fires after the balance has been
    at or above the threshold.
    """
    connection = await session.connection()
    statement = _LOCK_WALLET.get(connection.dialect.name, _LOCK_WALLET["sqlite"])
    row = (
        await connection.execute(statement, {"wallet_of": workspace_id, "now": utcnow()})
    ).one()  # an upsert with RETURNING always yields its row
    return WalletState(workspace_id, int(row[0]), str(row[1]), bool(row[2]))


async def held(session: AsyncSession, workspace_id: str, *, except_call: str | None = None) -> int:
    """What live calls of the workspace hold (all but ``except_call``'s), in minor units."""
    await session.flush()  # the session's own new holds count too
    connection = await session.connection()
    if except_call is None:
        result = await connection.execute(_HELD, {"workspace_id": workspace_id})
    else:
        result = await connection.execute(
            _HELD_BY_OTHERS, {"workspace_id": workspace_id, "call_id": except_call}
        )
    return int(result.scalar() or 0)  # PostgreSQL sums BIGINT into NUMERIC


async def balance(session: AsyncSession, workspace_id: str) -> int:
    """The wallet's balance in minor units; 0 for a wallet never used."""
    value = await session.scalar(
        select(Wallet.balance_minor).where(Wallet.workspace_id == workspace_id)
    )
    return value or 0


async def available(session: AsyncSession, workspace_id: str) -> int:
    """The balance less what live calls hold: what a new call or charge may spend."""
    return await balance(session, workspace_id) - await held(session, workspace_id)


async def find_entry(
    session: AsyncSession, workspace_id: str, idempotency_key: str
) -> WalletEntry | None:
    """The entry posted with this idempotency key, if any."""
    entry: WalletEntry | None = await session.scalar(
        select(WalletEntry).where(
            WalletEntry.workspace_id == workspace_id,
            WalletEntry.idempotency_key == idempotency_key,
        )
    )
    return entry


async def post_entry(
    session: AsyncSession,
    *,
    workspace_id: str,
    amount_minor: int,
    entry_type: str,
    idempotency_key: str,
    call_id: str | None = None,
    number_id: str | None = None,
    reference: str | None = None,
    top_up_details: Mapping[str, Any] | None = None,
) -> WalletEntry:
    """Credit (positive) or debit (negative) the wallet in ``session``'s transaction.

    A key already posted returns its entry and changes nothing. A debit larger than the
    balance less live calls' holds raises ``InsufficientFunds`` and changes nothing.
    Fires ``wallet.top_up`` for a credit (``top_up_details`` adds the payment's fields,
    e.g. the M-Pesa receipt), and ``wallet.low_balance`` when the balance
    falls below the workspace's threshold from at or above it. Raises ``LookupError``
    for an unknown workspace and ``ValueError`` for a malformed entry.
    """
    if entry_type not in ENTRY_TYPES:
        raise ValueError(f"entry_type must be one of {', '.join(sorted(ENTRY_TYPES))}")
    if amount_minor == 0:
        raise ValueError("an entry must move money: amount_minor is 0")
    if not idempotency_key or len(idempotency_key) > _MAX_KEY_LENGTH:
        raise ValueError(f"idempotency_key must be 1–{_MAX_KEY_LENGTH} characters")
    threshold = await _threshold(session, workspace_id)
    wallet = await lock_wallet(session, workspace_id)
    existing = await find_entry(session, workspace_id, idempotency_key)
    if existing is not None:
        return existing
    if amount_minor < 0:
        spendable = wallet.balance_minor - await held(session, workspace_id)
        if spendable + amount_minor < 0:
            raise InsufficientFunds(spendable, -amount_minor)
    return await _append(
        session,
        wallet,
        threshold,
        amount_minor=amount_minor,
        entry_type=entry_type,
        idempotency_key=idempotency_key,
        call_id=call_id,
        number_id=number_id,
        reference=reference,
        top_up_details=top_up_details,
    )


async def _threshold(session: AsyncSession, workspace_id: str) -> int:
    """The workspace's low-balance threshold; ``LookupError`` for an unknown workspace."""
    connection = await session.connection()
    threshold = (await connection.execute(_THRESHOLD, {"workspace_id": workspace_id})).scalar()
    if threshold is None:
        raise LookupError(f"no workspace {workspace_id}")
    return int(threshold)


async def _append(
    session: AsyncSession,
    wallet: WalletState,
    threshold: int,
    *,
    amount_minor: int,
    entry_type: str,
    idempotency_key: str,
    call_id: str | None = None,
    number_id: str | None = None,
    reference: str | None = None,
    top_up_details: Mapping[str, Any] | None = None,
) -> WalletEntry:
    """Post one entry on the locked ``wallet`` (checked by the caller: key not posted yet,
    funds enough) and move its balance with it, with the events it causes."""
    balance_after = wallet.balance_minor + amount_minor
    below = balance_after < threshold
    connection = await session.connection()
    await connection.execute(
        _SET_BALANCE,
        {
            "wallet_of": wallet.workspace_id,
            "balance": balance_after,
            "below": below,
            "now": utcnow(),
        },
    )
    entry = WalletEntry(
        workspace_id=wallet.workspace_id,
        entry_type=entry_type,
        amount_minor=amount_minor,
        balance_after_minor=balance_after,
        currency=wallet.currency,
        call_id=call_id,
        number_id=number_id,
        idempotency_key=idempotency_key,
        reference=reference,
    )
    session.add(entry)
    await session.flush()
    if amount_minor > 0:
        await record_event(
            session,
            workspace_id=wallet.workspace_id,
            kind="wallet.top_up",
            data={
                "entry_id": entry.id,
                "amount_minor": amount_minor,
                "balance_minor": balance_after,
                "new_balance_minor": balance_after,
                "currency": wallet.currency,
                "reference": reference,
                **(top_up_details or {}),
            },
        )
    if below and not wallet.below_threshold:
        await record_event(
            session,
            workspace_id=wallet.workspace_id,
            kind="wallet.low_balance",
            data={
                "entry_id": entry.id,
                "balance_minor": balance_after,
                "low_balance_threshold_minor": threshold,
                "currency": wallet.currency,
            },
        )
    return entry


async def top_up(
    session: AsyncSession,
    workspace_id: str,
    amount_minor: int,
    *,
    idempotency_key: str,
    reference: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> WalletEntry:
    """A credit for a payment received (an operator's, or a confirmed M-Pesa top-up);
    ``amount_minor`` must be positive; ``details`` go into the ``wallet.top_up`` event."""
    if amount_minor <= 0:
        raise ValueError("a top-up must be a positive amount of minor units")
    return await post_entry(
        session,
        workspace_id=workspace_id,
        amount_minor=amount_minor,
        entry_type="top_up",
        idempotency_key=idempotency_key,
        reference=reference,
        top_up_details=details,
    )


async def release_reservation(session: AsyncSession, call_id: str) -> None:
    """Drop a call's hold, if it has one."""
    await session.flush()  # a hold the session added and has not written yet
    connection = await session.connection()
    await connection.execute(_RELEASE, {"hold_of": call_id})


def answered_seconds(call: Call) -> int:
    """The call's billable seconds: 0 unless answered; else its answered duration."""
    if call.answered_at is None:
        return 0
    if call.duration_seconds is not None:
        return call.duration_seconds
    if call.ended_at is None:
        return 0
    # No duration recorded (a crash before it was written): round the timestamps up.
    return max(0, -(-(call.ended_at - call.answered_at) // timedelta(seconds=1)))


async def settle_call(
    session: AsyncSession, call: Call, *, settings: Settings
) -> WalletEntry | None:
    """Price an ended call, store ``price_minor`` on it, debit it once, release its hold.

    The price is ``ceil(answered_seconds × rate / 60)`` at the rate for the call's
    direction and ``to`` number. The debit's idempotency key is ``call:<id>``, so running
    this again (crash recovery) debits nothing more and answers the first entry.
    Unanswered calls cost nothing and answer None. Should a call have outrun its hold,
    the debit stops at what the wallet can spend: the balance never goes negative.
    """
    if call.ended_at is None:
        raise ValueError(f"call {call.id} has not ended")
    direction = call_rate_direction(call.direction, call.on_net)
    rate = await rate_for(session, call.workspace_id, direction, call.to_number, settings=settings)
    price = price_for(answered_seconds(call), rate.rate_per_minute_minor)
    key = f"call:{call.id}"
    wallet = await lock_wallet(session, call.workspace_id)
    await release_reservation(session, call.id)
    call.price_minor = price
    if price == 0:
        return None
    existing = await find_entry(session, call.workspace_id, key)
    if existing is not None:
        return existing
    charged = min(price, wallet.balance_minor - await held(session, call.workspace_id))
    if charged < price:
        log.warning(
            "call %s cost %d minor but the wallet could pay only %d", call.id, price, charged
        )
    if charged <= 0:
        return None
    return await _append(
        session,
        wallet,
        await _threshold(session, call.workspace_id),
        amount_minor=-charged,
        entry_type="call",
        idempotency_key=key,
        call_id=call.id,
    )


async def settle_ended_calls(
    session: AsyncSession, *, settings: Settings, limit: int = 1000
) -> int:
    """Settle ended calls that have no price yet; answer how many were settled.

    Run at start: a crash between a hangup and its settlement leaves the call ended and
    unpriced, and this finishes it. Settling is idempotent, so two processes recovering
    at once still debit each call once.
    """
    calls = (
        await session.scalars(
            select(Call)
            .where(Call.ended_at.is_not(None), Call.price_minor.is_(None))
            .order_by(Call.id)
            .limit(limit)
        )
    ).all()
    for call in calls:
        await settle_call(session, call, settings=settings)
    return len(calls)


async def charge_transcription(
    session: AsyncSession,
    workspace_id: str,
    recording_id: str,
    seconds: int,
    *,
    settings: Settings,
) -> WalletEntry | None:
    """Debit a transcription per second of audio, once per recording.

    Charge before transcribing: the duration is known, and ``InsufficientFunds`` then
    means nothing is transcribed unpaid. A price of 0 posts nothing and answers None.
    """
    price = price_for(seconds, settings.default_transcription_rate_minor)
    if price == 0:
        return None
    return await post_entry(
        session,
        workspace_id=workspace_id,
        amount_minor=-price,
        entry_type="transcription",
        idempotency_key=f"transcription:{recording_id}",
        reference=recording_id,
    )


async def charge_number_rental(
    session: AsyncSession,
    workspace_id: str,
    number_id: str,
    amount_minor: int,
    period_key: str,
) -> WalletEntry | None:
    """Debit a number's rental for one period (e.g. ``2026-11``), once per period.

    Raises ``InsufficientFunds`` when the wallet cannot pay; a free number posts nothing.
    """
    if amount_minor < 0:
        raise ValueError("a rental must not be negative")
    if amount_minor == 0:
        return None
    return await post_entry(
        session,
        workspace_id=workspace_id,
        amount_minor=-amount_minor,
        entry_type="number_rental",
        idempotency_key=f"number:{number_id}:{period_key}",
        number_id=number_id,
        reference=period_key,
    )
