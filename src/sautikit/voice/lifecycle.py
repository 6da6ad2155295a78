"""Call records through their lifecycle (SPEC §4), each change with its event (SPEC §7).

Every function here changes a ``calls`` row and writes the matching event into the outbox
in the same transaction, so the event log never says more or less than the table. Ending
an answered call also settles its price in that transaction (SPEC §6): the debit happens
exactly once, with the change that makes it due.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from sautikit.billing.ledger import release_reservation, settle_call
from sautikit.config import Settings
from sautikit.db.models import Call
from sautikit.db.types import utcnow
from sautikit.events.outbox import record_event

__all__ = [
    "LIVE_STATUSES",
    "call_data",
    "end_call",
    "mark_answered",
    "mark_ringing",
    "record_started",
    "status_for_unanswered",
]

LIVE_STATUSES = ("queued", "ringing", "answered")

# SPEC §4: a call that never answered ends in one of these, by its hangup cause.
_UNANSWERED_STATUS = {
    "busy": "busy",
    "no_answer": "no_answer",
    "caller_hangup": "canceled",
    "rejected": "failed",
}


def status_for_unanswered(cause: str) -> str:
    return _UNANSWERED_STATUS.get(cause, "failed")


def call_data(call: Call) -> dict[str, Any]:
    """The call as events and the API show it."""

    def stamp(moment: datetime | None) -> str | None:
        return moment.isoformat().replace("+00:00", "Z") if moment else None

    return {
        "id": call.id,
        "workspace_id": call.workspace_id,
        "direction": call.direction,
        "from": call.from_number,
        "to": call.to_number,
        "status": call.status,
        "number_id": call.number_id,
        "parent_call_id": call.parent_call_id,
        "created_at": stamp(call.created_at),
        "started_at": stamp(call.started_at),
        "answered_at": stamp(call.answered_at),
        "ended_at": stamp(call.ended_at),
        "duration_seconds": call.duration_seconds,
        "hangup_cause": call.hangup_cause,
        "price_minor": call.price_minor,
        "currency": call.currency,
        "error": call.error,
    }


async def _event(session: AsyncSession, call: Call, kind: str) -> None:
    await session.flush()
    await record_event(
        session,
        workspace_id=call.workspace_id,
        kind=kind,
        data=call_data(call),
        call_id=call.id,
        target_url=call.events_url,
    )


async def record_started(session: AsyncSession, call: Call) -> None:
    """A new call row: ``call.started``."""
    session.add(call)
    await _event(session, call, "call.started")


async def mark_ringing(session: AsyncSession, call: Call) -> None:
    if call.status != "queued":
        return
    call.status = "ringing"
    call.started_at = call.started_at or utcnow()
    await _event(session, call, "call.ringing")


async def mark_answered(session: AsyncSession, call: Call) -> None:
    if call.status not in ("queued", "ringing"):
        return
    now = utcnow()
    call.started_at = call.started_at or now
    call.status = "answered"
    call.answered_at = now
    await _event(session, call, "call.answered")


async def end_call(
    session: AsyncSession,
    call: Call,
    cause: str,
    *,
    settings: Settings,
    ended_at: datetime | None = None,
    error: dict[str, Any] | None = None,
) -> bool:
    """End a live call with ``cause``; answers False when it had already ended.

    An answered call becomes ``completed`` with its answered duration in whole seconds
    (rounded up, as carriers bill a started second) and is priced and debited; an
    unanswered one ends in the status its cause implies and costs nothing.
    """
    if call.status not in LIVE_STATUSES:
        return False
    call.ended_at = ended_at or utcnow()
    call.hangup_cause = cause
    if error is not None:
        call.error = error
    if call.answered_at is not None:
        seconds = (call.ended_at - call.answered_at).total_seconds()
        call.duration_seconds = max(0, math.ceil(seconds - 1e-6))
        call.status = "completed"
        await settle_call(session, call, settings=settings)
        await _event(session, call, "call.completed")
    else:
        call.duration_seconds = 0
        call.status = status_for_unanswered(cause)
        call.price_minor = 0
        await release_reservation(session, call.id)
        await _event(session, call, "call.failed")
    return True
