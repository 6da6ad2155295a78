"""The shared queues on /metrics: the outbox backlog counts events not yet fanned out and
deliveries not yet delivered, its age is the oldest of them, dead letters apart."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sautikit import accounts
from sautikit.cluster.sampler import Sampler
from sautikit.db import Database
from sautikit.db.models import Delivery, Event
from sautikit.db.types import utcnow


async def test_the_sampler_reads_the_outbox_backlog_and_its_age(database: Database) -> None:
    now = utcnow()
    async with database.transaction() as session:
        workspace = await accounts.create_workspace(session, "w")
        waiting = Event(workspace_id=workspace.id, kind="call.completed", data={}, occurred_at=now)
        fanned = Event(
            workspace_id=workspace.id,
            kind="call.ringing",
            data={},
            occurred_at=now - timedelta(minutes=5),
            dispatched_at=now - timedelta(minutes=5),
        )
        session.add_all([waiting, fanned])
        await session.flush()
        session.add_all(
            [
                Delivery(
                    event_id=fanned.id,
                    url="http://a.test/",
                    status="retrying",
                    created_at=now - timedelta(minutes=5),
                ),
                Delivery(event_id=fanned.id, url="http://b.test/", status="delivered"),
                Delivery(event_id=fanned.id, url="http://c.test/", status="dead_letter"),
            ]
        )
    sampled = await Sampler(database).sample()
    assert sampled.outbox_backlog == 2  # the event not fanned out, the retrying delivery
    assert sampled.outbox_oldest_age == pytest.approx(300, abs=30)
    assert sampled.outbox_dead_letters == 1
    assert sampled.transcription_queue == 0
