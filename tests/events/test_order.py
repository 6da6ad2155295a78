"""SPEC §7: one call's events carry ``call_id`` and a ``sequence`` and reach each receiver
in that order; a receiver that hangs holds only its own deliveries, never another's."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import timedelta

from sqlalchemy import select
from tests.events.support import HANG, FakeClock, Receiver, StartReceiver

from sautikit import accounts
from sautikit.config import Settings
from sautikit.db import Database
from sautikit.db.models import Call, Delivery, Event
from sautikit.events.delivery import DeliveryStatus, DeliveryWorker
from sautikit.events.outbox import record_call_event, record_event
from sautikit.events.schedule import RetrySchedule


async def _call(database: Database, events_url: str) -> tuple[str, str]:
    async with database.transaction() as session:
        workspace = await accounts.create_workspace(session, "order")
        call = Call(
            workspace_id=workspace.id,
            direction="inbound",
            from_number="+254711000001",
            to_number="+254700000001",
            status="queued",
            events_url=events_url,
        )
        session.add(call)
        await session.flush()
        return workspace.id, call.id


async def _call_events(database: Database, call_id: str, *kinds: str) -> list[str]:
    ids = []
    for kind in kinds:
        async with database.transaction() as session:
            # As the call records write them: the call's view, which names it "id".
            data = {"id": call_id, "status": kind.removeprefix("call.")}
            ids.append((await record_call_event(session, call_id=call_id, kind=kind, data=data)).id)
    return ids


def _sent(receiver: Receiver) -> list[str]:
    return [json.loads(received.body)["event_id"] for received in receiver.received]


async def test_call_events_name_the_call_call_id_and_count_up(
    database: Database, receivers: StartReceiver
) -> None:
    receiver = await receivers()
    _, call_id = await _call(database, receiver.url)
    await _call_events(database, call_id, "call.started", "call.ringing", "call.answered")
    async with database.sessions() as session:
        events = (
            await session.scalars(select(Event).where(Event.call_id == call_id).order_by(Event.id))
        ).all()
    assert [event.data for event in events] == [
        {"call_id": call_id, "status": status, "sequence": number}
        for number, status in enumerate(["started", "ringing", "answered"], start=1)
    ]
    assert [event.sequence for event in events] == [1, 2, 3]


async def test_a_later_event_waits_for_the_earlier_ones_delivery(
    database: Database, settings: Settings, receivers: StartReceiver, clock: FakeClock
) -> None:
    receiver = await receivers(answers=(500,))
    _, call_id = await _call(database, receiver.url)
    started, ringing, answered = await _call_events(
        database, call_id, "call.started", "call.ringing", "call.answered"
    )
    schedule = RetrySchedule([timedelta(seconds=30)] * 3, rng=random.Random(7))
    async with DeliveryWorker(database, settings, clock=clock, schedule=schedule) as worker:
        assert (await worker.run_once()).attempted == 1  # started fails; the others wait
        assert (await worker.run_once()).attempted == 0  # its retry is not due yet
        clock.advance(31)
        for _ in range(3):
            assert (await worker.run_once()).attempted == 1
    assert _sent(receiver) == [started, started, ringing, answered]
    bodies = [json.loads(received.body)["data"] for received in receiver.received]
    assert [data["sequence"] for data in bodies] == [1, 1, 2, 3]


async def test_a_dead_lettered_event_lets_the_next_one_go(
    database: Database, settings: Settings, receivers: StartReceiver, clock: FakeClock
) -> None:
    receiver = await receivers(answers=(500, 500))
    _, call_id = await _call(database, receiver.url)
    started, completed = await _call_events(database, call_id, "call.started", "call.completed")
    schedule = RetrySchedule([timedelta(seconds=1)], rng=random.Random(7))
    async with DeliveryWorker(database, settings, clock=clock, schedule=schedule) as worker:
        await worker.run_once()
        clock.advance(2)
        await worker.run_once()  # the second and last attempt: dead letter
        await worker.run_once()
    assert _sent(receiver) == [started, started, completed]
    async with database.sessions() as session:
        statuses = dict(
            (await session.execute(select(Delivery.event_id, Delivery.status))).tuples().all()
        )
    assert statuses == {started: DeliveryStatus.DEAD_LETTER, completed: DeliveryStatus.DELIVERED}


async def test_a_hanging_receiver_never_holds_up_another(
    database: Database, settings: Settings, receivers: StartReceiver
) -> None:
    hanging, healthy = await receivers(then=HANG), await receivers()
    async with database.transaction() as session:
        workspace = await accounts.create_workspace(session, "tenants")
        for target, count in ((hanging, 6), (healthy, 3)):
            for _ in range(count):
                await record_event(
                    session,
                    workspace_id=workspace.id,
                    kind="wallet.top_up",
                    data={"amount_minor": 100},
                    target_url=target.url,
                )
    worker = DeliveryWorker(
        database, settings, timeout=60, batch_size=4, per_endpoint=2, poll_interval=0.05
    )
    running = asyncio.create_task(worker.run())
    try:
        async with asyncio.timeout(30):
            while len(healthy.received) < 3:  # noqa: ASYNC110 - the receiver has no count event
                await asyncio.sleep(0.05)
        # Every event of the healthy receiver arrived while the other one still hangs,
        # and the hanging one holds no more than its own two slots.
        assert len(hanging.received) == 2
    finally:
        await hanging.close()  # its connections drop: the hung attempts end as failures
        worker.stop()
        await running
        await worker.aclose()
