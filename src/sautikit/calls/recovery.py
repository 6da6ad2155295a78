"""What a previous run of this process left behind, closed at start (SPEC §4, §6).

A crash (SIGKILL, power, OOM) leaves rows that say ``ringing`` or ``answered`` and far ends
that are still on the line. :func:`recover_calls` closes the rows (SPEC: with
``network_error`` and the answered duration they really had, up to their last heartbeat,
billed once) and, from the dialog each row stored (``calls.sip_dialog``), ends every leg
at the far end: BYE to the carrier and to the caller, CANCEL for what was still ringing
(:mod:`sautikit.sip.teardown`).

A call the API accepted but no process placed stays ``queued``. :func:`expire_queued_calls`
fails those older than ``queued_call_expiry_seconds`` with a reason, so nobody's phone
rings minutes after the app asked; younger ones are placed at once by the caller, whose
claim holds their first slice again against the wallet as it is then (failing them with
``wallet.insufficient_funds`` when it no longer pays: never billed past zero).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from sautikit.billing.ledger import settle_ended_calls
from sautikit.calls.records import end_call
from sautikit.calls.status import LIVE_STATUSES, CallStatus
from sautikit.config import Settings
from sautikit.db import Database
from sautikit.db.models import Call
from sautikit.db.types import rows_changed, utcnow
from sautikit.sip.teardown import DialogSnapshot, Teardown

__all__ = [
    "QUEUED_UNFUNDED",
    "QUEUE_EXPIRED",
    "TEARDOWN_WAIT_SECONDS",
    "Recovery",
    "dialog_column",
    "expire_queued_calls",
    "recover_calls",
    "snapshots_of",
]

log = logging.getLogger(__name__)

TEARDOWN_WAIT_SECONDS = 3.0
"""How long start-up waits for the far ends to answer the teardown; transactions still
pending after that go on in the background (retransmitted until their own timeout)."""

QUEUE_EXPIRED: dict[str, Any] = {
    "code": "call.queue_expired",
    "message": "no process placed the call in time; it was not dialled",
}

QUEUED_UNFUNDED: dict[str, Any] = {
    "code": "wallet.insufficient_funds",
    "message": "when the queued call was about to be dialled the wallet could no longer pay "
    "its first minute; it was not dialled",
}


@dataclass
class Recovery:
    """What a start found: calls closed, legs ended at the far end, calls priced."""

    closed: int = 0
    settled: int = 0
    torn_down: list[str] = field(default_factory=list)
    pending: set[asyncio.Task[Any]] = field(default_factory=set)


def dialog_column(snapshots: list[DialogSnapshot]) -> dict[str, Any]:
    """The ``calls.sip_dialog`` value for a call's legs (a device call has two)."""
    return {"legs": [snapshot.to_json() for snapshot in snapshots]}


def snapshots_of(column: dict[str, Any] | None) -> list[DialogSnapshot]:
    """The legs stored in ``calls.sip_dialog``; an unreadable one is logged and skipped."""
    found = []
    for leg in (column or {}).get("legs", []):
        try:
            found.append(DialogSnapshot.from_json(leg))
        except (ValueError, KeyError, TypeError) as unreadable:
            log.warning("a stored SIP dialog cannot be read: %s", unreadable)
    return found


async def recover_calls(
    database: Database, settings: Settings, *, node: str, teardown: Teardown
) -> Recovery:
    """Close the calls ``node`` left live, end their legs at the far end, price what an
    earlier crash left unpriced. Returns once the far ends answered, or after
    :data:`TEARDOWN_WAIT_SECONDS` with the rest still running in ``pending``."""
    recovery = Recovery()
    snapshots: list[DialogSnapshot] = []
    async with database.transaction() as session:
        stale = (
            await session.scalars(
                select(Call).where(Call.status.in_(LIVE_STATUSES), Call.owner == node)
            )
        ).all()
        for call in stale:
            snapshots += snapshots_of(call.sip_dialog)
            await end_call(
                session,
                call,
                "network_error",
                settings=settings,
                ended_at=call.last_seen_at or call.answered_at or call.created_at,
            )
        recovery.closed = len(stale)
        # A call ended but not priced (a crash between its hangup and its debit in an
        # earlier version, or a failed settlement) is priced now, exactly once.
        recovery.settled = await settle_ended_calls(session, settings=settings)
    if recovery.closed:
        log.warning("closed %d calls left live by a previous run", recovery.closed)
    if recovery.settled:
        log.warning("settled %d ended calls that had no price", recovery.settled)
    tasks = {asyncio.ensure_future(teardown.end(snapshot)) for snapshot in snapshots}
    if tasks:
        done, recovery.pending = await asyncio.wait(tasks, timeout=TEARDOWN_WAIT_SECONDS)
        for task in done:
            if task.exception() is None:
                recovery.torn_down.append(task.result())
            else:
                log.warning("a stored SIP dialog could not be ended: %s", task.exception())
        log.warning(
            "ended %d SIP legs a previous run left up (%d still waiting for an answer)",
            len(recovery.torn_down),
            len(recovery.pending),
        )
    return recovery


async def expire_queued_calls(
    database: Database, settings: Settings, node: str, now: datetime | None = None
) -> tuple[list[str], list[str]]:
    """Fail queued calls nobody placed within ``queued_call_expiry_seconds`` (status
    ``failed``, ``network_error``, error ``call.queue_expired``); answers (expired ids,
    ids still worth placing now). ``node`` claims each call it expires, as placing one
    does, so two processes never both end it."""
    cutoff = (now or utcnow()) - timedelta(seconds=settings.queued_call_expiry_seconds)
    async with database.sessions() as session:
        queued = (
            await session.execute(
                select(Call.id, Call.created_at).where(
                    Call.status == CallStatus.QUEUED, Call.owner.is_(None)
                )
            )
        ).all()
    stale = [call_id for call_id, created_at in queued if created_at <= cutoff]
    fresh = [call_id for call_id, created_at in queued if created_at > cutoff]
    expired: list[str] = []
    if stale:
        async with database.transaction() as session:
            for call_id in stale:
                claimed = await session.execute(
                    update(Call)
                    .where(
                        Call.id == call_id, Call.status == CallStatus.QUEUED, Call.owner.is_(None)
                    )
                    .values(owner=node)
                )
                call = await session.get(Call, call_id) if rows_changed(claimed) == 1 else None
                if call is not None:
                    await end_call(
                        session, call, "network_error", settings=settings, error=QUEUE_EXPIRED
                    )
                    expired.append(call_id)
    if expired:
        log.warning("failed %d queued calls nobody placed in time", len(expired))
    return expired, fresh
