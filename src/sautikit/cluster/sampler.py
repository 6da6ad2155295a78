"""The platform's shared queues, read every few seconds for ``/metrics``."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from sautikit.db import Database
from sautikit.db.models import Delivery, Event, Transcription
from sautikit.db.types import utcnow

__all__ = ["Sampled", "Sampler"]

log = logging.getLogger(__name__)


@dataclass
class Sampled:
    """What the sampler last read from the shared database."""

    outbox_backlog: int = 0
    outbox_oldest_age: float = 0.0
    outbox_dead_letters: int = 0
    transcription_queue: int = 0
    sampled_at: datetime | None = None


class Sampler:
    """Reads the shared queues' size every ``interval`` seconds (never at scrape time:
    a scrape must not wait for the database)."""

    def __init__(self, database: Database, *, interval: float = 5.0) -> None:
        self.database = database
        self.interval = interval
        self.last = Sampled()

    async def sample(self) -> Sampled:
        now = utcnow()
        async with self.database.sessions() as session:
            pending = Delivery.status.in_(("pending", "retrying"))
            backlog, oldest = (
                await session.execute(
                    select(func.count(Delivery.id), func.min(Delivery.created_at)).where(pending)
                )
            ).one()
            undispatched = (
                await session.execute(
                    select(func.count(Event.id), func.min(Event.occurred_at)).where(
                        Event.dispatched_at.is_(None)
                    )
                )
            ).one()
            dead = await session.scalar(
                select(func.count(Delivery.id)).where(Delivery.status == "dead_letter")
            )
            queued = await session.scalar(
                select(func.count(Transcription.id)).where(
                    Transcription.status.in_(("queued", "running"))
                )
            )
        moments = [moment for moment in (oldest, undispatched[1]) if moment is not None]
        age = max((now - min(moments)).total_seconds(), 0.0) if moments else 0.0
        self.last = Sampled(
            outbox_backlog=int(backlog or 0) + int(undispatched[0] or 0),
            outbox_oldest_age=age,
            outbox_dead_letters=int(dead or 0),
            transcription_queue=int(queued or 0),
            sampled_at=now,
        )
        return self.last

    async def run(self) -> None:
        while True:
            try:
                await self.sample()
            except Exception as exc:  # the database is away: keep the last figures
                log.warning("metrics sampling failed: %s", exc)
            await asyncio.sleep(self.interval)
