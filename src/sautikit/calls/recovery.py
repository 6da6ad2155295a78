"""What a previous run of this process left behind, closed at start (SPEC §4, §6)."""

from __future__ import annotations

import logging

from sqlalchemy import select

from sautikit.billing.ledger import settle_ended_calls
from sautikit.calls.records import end_call
from sautikit.calls.status import LIVE_STATUSES
from sautikit.config import Settings
from sautikit.db import Database
from sautikit.db.models import Call

__all__ = ["recover_calls"]

log = logging.getLogger(__name__)


async def recover_calls(database: Database, settings: Settings, *, node: str) -> None:
    """Calls a crash left live are closed with ``network_error`` and the answered duration
    they really had, up to their last heartbeat; ended calls with no price are priced."""
    async with database.transaction() as session:
        stale = (
            await session.scalars(
                select(Call).where(Call.status.in_(LIVE_STATUSES), Call.owner == node)
            )
        ).all()
        for call in stale:
            await end_call(
                session,
                call,
                "network_error",
                settings=settings,
                ended_at=call.last_seen_at or call.answered_at or call.created_at,
            )
        # A call ended but not priced (a crash between its hangup and its debit in an
        # earlier version, or a failed settlement) is priced now, exactly once.
        settled = await settle_ended_calls(session, settings=settings)
    if stale:
        log.warning("closed %d calls left live by a previous run", len(stale))
    if settled:
        log.warning("settled %d ended calls that had no price", settled)
