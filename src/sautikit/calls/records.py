"""Call rows through their lifecycle (SPEC §4), each change with its event (SPEC §7).

Every function here changes a ``calls`` row and writes the matching event into the outbox
in the same transaction, so the event log never says more or less than the table. Status
changes go through :func:`sautikit.calls.status.advance`. Ending an answered call also
settles its price in that transaction (SPEC §6): the debit happens exactly once, with the
change that makes it due.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from sautikit.billing.ledger import release_reservation, settle_call
from sautikit.calls.status import (
    LIVE_STATUSES,
    CallStatus,
    advance,
    can_advance,
    status_for_unanswered,
)
from sautikit.config import Settings
from sautikit.db import Database
from sautikit.db.models import Call
from sautikit.db.types import utcnow
from sautikit.events.outbox import record_event

__all__ = [
    "CallRecords",
    "call_data",
    "end_call",
    "mark_answered",
    "mark_ringing",
    "record_funds_low",
    "record_started",
]


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
        "status": str(call.status),
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
        "quality": call.quality,
        "answered_by": call.answered_by,
    }


async def _event(session: AsyncSession, call: Call, kind: str) -> None:
    await session.flush()  # the row's defaults (created_at) belong in the event's data
    await record_event(
        session,
        workspace_id=call.workspace_id,
        kind=kind,
        data=call_data(call),
        call_id=call.id,
        target_url=call.events_url,
    )


async def record_started(session: AsyncSession, call: Call) -> None:
    """A new call row, ``queued``: ``call.started``."""
    call.status = CallStatus.QUEUED
    session.add(call)
    await _event(session, call, "call.started")


async def mark_ringing(session: AsyncSession, call: Call) -> None:
    """``queued`` → ``ringing``; a call past ringing is left as it is."""
    if call.status != CallStatus.QUEUED:
        return
    advance(call, CallStatus.RINGING)
    call.started_at = call.started_at or utcnow()
    await _event(session, call, "call.ringing")


async def mark_answered(session: AsyncSession, call: Call, *, at: datetime | None = None) -> None:
    """``queued``/``ringing`` → ``answered`` (at ``at``, by default now); an answered or
    ended call is left as it is."""
    if not can_advance(call.status, CallStatus.ANSWERED):
        return
    now = at or utcnow()
    call.started_at = call.started_at or now
    advance(call, CallStatus.ANSWERED)
    call.answered_at = now
    await _event(session, call, "call.answered")


async def record_funds_low(session: AsyncSession, call_id: str, *, seconds_left: int) -> None:
    """``call.funds_low``: the wallet cannot fund the call's next slice, so it will be cut
    with ``insufficient_funds`` in ``seconds_left`` seconds unless the wallet is topped up."""
    call = await session.get(Call, call_id)
    if call is None or call.status not in LIVE_STATUSES:
        return
    await session.flush()
    await record_event(
        session,
        workspace_id=call.workspace_id,
        kind="call.funds_low",
        data={**call_data(call), "seconds_left": seconds_left},
        call_id=call.id,
        target_url=call.events_url,
    )


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
        advance(call, CallStatus.COMPLETED)
        await settle_call(session, call, settings=settings)
        await _event(session, call, "call.completed")
    else:
        call.duration_seconds = 0
        advance(call, status_for_unanswered(cause))
        call.price_minor = 0
        await release_reservation(session, call.id)
        await _event(session, call, "call.failed")
    return True


class CallRecords:
    """The writes a live call makes to its own row, each a job of the database writer
    (:mod:`sautikit.db.writer`) keyed by the call: they run in the order they were
    handed over, also where several writers commit side by side."""

    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.settings = settings

    def dialled(self, call_id: str, sip_call_id: str, sip_dialog: dict[str, Any]) -> None:
        """The call's INVITE has gone out: store its SIP dialog as it stands (the INVITE
        alone, before any answer), so that crash recovery can CANCEL a leg that never
        rang back. Handed to the writer without waiting, ahead of the leg's later
        writes (``ringing``, ``answered``), which it always precedes."""

        async def job(session: AsyncSession) -> None:
            record = await session.get(Call, call_id)
            if record is not None and record.status in LIVE_STATUSES:
                record.sip_call_id = record.sip_call_id or sip_call_id
                if record.sip_dialog is None or record.status == CallStatus.QUEUED:
                    record.sip_dialog = sip_dialog

        self.database.write_later(job, what=f"call {call_id} dialled", key=call_id)

    def ringing(self, call_id: str, sip_dialog: dict[str, Any] | None = None) -> None:
        """``ringing``, storing the call's SIP dialog as it now stands (crash recovery
        CANCELs from it); handed to the writer without waiting: nothing of the call
        waits for this row, and later writes of the call run after it."""

        async def job(session: AsyncSession) -> None:
            record = await session.get(Call, call_id)
            if record is not None:
                if sip_dialog is not None:
                    record.sip_dialog = sip_dialog
                await mark_ringing(session, record)

        self.database.write_later(job, what=f"call {call_id} ringing", key=call_id)

    async def answered(
        self,
        call_id: str,
        sip_dialog: dict[str, Any] | None = None,
        *,
        at: datetime | None = None,
    ) -> None:
        """``answered`` (at ``at``), storing the confirmed SIP dialog (crash recovery BYEs
        from it)."""

        async def job(session: AsyncSession) -> None:
            record = await session.get(Call, call_id)
            if record is not None:
                if sip_dialog is not None:
                    record.sip_dialog = sip_dialog
                await mark_answered(session, record, at=at)

        await self.database.write(job, what=f"call {call_id} answered", key=call_id)

    async def ended(
        self,
        call_id: str,
        cause: str,
        quality: dict[str, Any] | None = None,
        *,
        at: datetime | None = None,
        error: dict[str, Any] | None = None,
    ) -> None:
        """End the call's row with ``cause`` at ``at`` (also for a call that was never
        placed), its leg's media ``quality`` (media.LegQuality.as_record) when it had
        media, and ``error`` when it failed (voice.failure)."""

        async def job(session: AsyncSession) -> None:
            record = await session.get(Call, call_id)
            if record is not None:
                if quality is not None and record.quality is None:
                    record.quality = quality
                await end_call(
                    session, record, cause, settings=self.settings, ended_at=at, error=error
                )

        await self.database.write(job, what=f"call {call_id} ended", key=call_id)

    async def answered_by(self, call_id: str, verdict: str) -> None:
        """Keep answering-machine detection's verdict (``AnsweredBy``) on the call."""

        async def job(session: AsyncSession) -> None:
            record = await session.get(Call, call_id)
            if record is not None:
                record.answered_by = verdict

        await self.database.write(job, what=f"call {call_id} answered by", key=call_id)

    async def error(self, call_id: str, code: str, message: str) -> None:
        async def job(session: AsyncSession) -> None:
            record = await session.get(Call, call_id)
            if record is not None:
                record.error = {"code": code, "message": message}

        await self.database.write(job, what=f"call {call_id} error", key=call_id)
