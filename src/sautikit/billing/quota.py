"""Prepaid quota for live calls (SPEC §6): credit held slice by slice, as online charging
systems grant quota (3GPP Gy / Diameter credit control, RFC 4006).

A call never holds the whole wallet. Admission opens its quota with one *first slice* of
``SAUTIKIT_MIN_CALL_FUNDING_SECONDS`` (one minute by default) at its rate, and refuses the
call (402) when the wallet, less what other live calls hold, cannot pay it. While the
answered call lasts, :func:`renew_quota` asks for the next slice of up to
``SAUTIKIT_CALL_QUOTA_SECONDS`` (300 by default) and grants as much of it as the spendable
balance pays, so a top-up during the call funds what follows. The hold is always the price
of every second granted so far, ``ceil(granted × rate / 60)``: nothing is debited before
the hangup, where :func:`sautikit.billing.ledger.settle_call` debits the answered seconds in
one entry and drops the hold.

Why the first slice is the minimum and not a whole slice: a small balance must fund a
bridged call's two legs and several concurrent calls (KES 10.00 at KES 3.00/min is two
one-minute holds; KES 20.00 is five), and a slice held by the first call would refuse the
next. Renewals grow a call's hold only as it is used.

The seconds a call may last are derived from its hold (the largest number of seconds the
held amount pays), so the hold row is the one record of the grant: any process can read
it, and a renewal never needs to know what an earlier one granted.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from sautikit.billing.ledger import InsufficientFunds, WalletState, held, lock_wallet
from sautikit.billing.rating import price_for, seconds_affordable
from sautikit.db.models import WalletReservation

__all__ = [
    "Quota",
    "first_grant",
    "next_grant",
    "open_quota",
    "renew_quota",
]


@dataclass(frozen=True)
class Quota:
    """What a live call may spend: its rate, and the answered seconds its hold pays for
    (None at a free rate, where no second costs anything)."""

    rate_per_minute_minor: int
    seconds: int | None

    @property
    def hold_minor(self) -> int:
        if self.seconds is None:
            return 0
        return price_for(self.seconds, self.rate_per_minute_minor)


def _granted(hold_minor: int, rate: int) -> int | None:
    return None if rate == 0 else seconds_affordable(hold_minor, rate)


def first_grant(spendable_minor: int, rate: int, seconds: int) -> Quota:
    """The first slice: ``seconds`` at ``rate``, or :class:`InsufficientFunds` when the
    spendable balance cannot pay them."""
    if seconds < 1:
        raise ValueError("a first slice must be at least one second")
    if rate < 0:
        raise ValueError("the rate must not be negative")
    needed = price_for(seconds, rate)
    if needed > spendable_minor:
        raise InsufficientFunds(max(spendable_minor, 0), needed)
    # The hold may pay for a few seconds more than asked (the price rounds up).
    return Quota(rate, _granted(needed, rate))


def next_grant(granted: int, spendable_minor: int, rate: int, slice_seconds: int) -> int:
    """The seconds granted in all after asking for one more slice.

    ``granted`` is what the call has; ``spendable_minor`` what the wallet may spend on it
    (the balance less the other calls' holds). Grants up to ``slice_seconds`` more, as many
    as are paid for; never less than ``granted``, so a renewal cannot take back seconds
    already granted. At a free rate a whole slice is granted.
    """
    if granted < 0 or slice_seconds < 1:
        raise ValueError("granted must not be negative and a slice is at least one second")
    if rate == 0:
        return granted + slice_seconds
    affordable = seconds_affordable(spendable_minor, rate)
    return max(granted, min(granted + slice_seconds, affordable))


async def _own_hold(session: AsyncSession, call_id: str) -> WalletReservation | None:
    hold: WalletReservation | None = await session.scalar(
        select(WalletReservation).where(WalletReservation.call_id == call_id)
    )
    return hold


_NEW_HOLD = insert(WalletReservation)
"""Built once: admission runs it for every call (see ``billing.ledger``'s statements)."""


async def open_quota(
    session: AsyncSession,
    workspace_id: str,
    call_id: str,
    rate: int,
    *,
    seconds: int,
    wallet: WalletState | None = None,
    new_call: bool = False,
) -> Quota:
    """Hold the call's first slice of ``seconds``; raises :class:`InsufficientFunds`.

    Takes the wallet lock (the first lock of an admission, see
    :mod:`sautikit.calls.admission`) unless the caller holds it already (``wallet``).
    Opening again replaces the call's hold; a ``new_call`` (inserted in this
    transaction) has none to look for.
    """
    if wallet is None:
        wallet = await lock_wallet(session, workspace_id)
    spendable = wallet.balance_minor - await held(session, workspace_id, except_call=call_id)
    quota = first_grant(spendable, rate, seconds)
    hold = None if new_call else await _own_hold(session, call_id)
    if hold is None:
        connection = await session.connection()
        await connection.execute(
            _NEW_HOLD,
            {"workspace_id": workspace_id, "call_id": call_id, "amount_minor": quota.hold_minor},
        )
    else:
        hold.amount_minor = quota.hold_minor
        await session.flush()
    return quota


async def renew_quota(
    session: AsyncSession, workspace_id: str, call_id: str, rate: int, *, slice_seconds: int
) -> Quota | None:
    """Grant the call its next slice, as far as the wallet pays; answers the call's quota
    now (unchanged when not one more second is paid), or None when the call has no hold
    any more (it ended and was settled: nothing is held again)."""
    wallet = await lock_wallet(session, workspace_id)
    hold = await _own_hold(session, call_id)
    if hold is None:
        return None
    granted = _granted(hold.amount_minor, rate)
    if granted is None:
        return Quota(rate, None)
    spendable = wallet.balance_minor - await held(session, workspace_id, except_call=call_id)
    total = next_grant(granted, spendable, rate, slice_seconds)
    if total > granted:
        hold.amount_minor = max(hold.amount_minor, price_for(total, rate))
        await session.flush()
    return Quota(rate, _granted(hold.amount_minor, rate))
