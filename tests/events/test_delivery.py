"""The delivery worker against real HTTP receivers on loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select
from tests.events.support import HANG, FakeClock, StartReceiver
from tests.support import KeyFactory

from sautikit import accounts
from sautikit.config import Settings
from sautikit.db import Database
from sautikit.db.models import Delivery, DeliveryAttempt, Event, WebhookSubscription
from sautikit.events.delivery import DeliveryWorker, dispatch_events, workspace_signing_secret
from sautikit.events.outbox import record_event
from sautikit.events.schedule import DELIVERY_WAITS, RetrySchedule
from sautikit.webhooks import WebhookVerificationError, verify

SUBSCRIPTION_SECRET = "whsec_subscription"


async def _workspace(database: Database) -> str:
    async with database.transaction() as session:
        return (await accounts.create_workspace(session, "deliveries")).id


async def _subscribe(
    database: Database, workspace_id: str, url: str, events: list[str] | None = None
) -> str:
    async with database.transaction() as session:
        subscription = WebhookSubscription(
            workspace_id=workspace_id,
            url=url,
            events=events or ["*"],
            secret=SUBSCRIPTION_SECRET,
        )
        session.add(subscription)
        await session.flush()
        return subscription.id


async def _event(
    database: Database,
    workspace_id: str,
    *,
    kind: str = "call.completed",
    target_url: str | None = None,
) -> str:
    async with database.transaction() as session:
        event = await record_event(
            session,
            workspace_id=workspace_id,
            kind=kind,
            data={"call_id": "c1", "duration_seconds": 42},
            target_url=target_url,
        )
        return event.id


async def _deliveries(database: Database, event_id: str) -> list[Delivery]:
    async with database.sessions() as session:
        query = select(Delivery).where(Delivery.event_id == event_id).order_by(Delivery.id)
        return list((await session.scalars(query)).all())


async def _attempts(database: Database, delivery_id: str) -> list[DeliveryAttempt]:
    async with database.sessions() as session:
        query = (
            select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id == delivery_id)
            .order_by(DeliveryAttempt.id)
        )
        return list((await session.scalars(query)).all())


async def test_what_the_worker_sends_is_what_verify_accepts(
    database: Database,
    settings: Settings,
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    receivers: StartReceiver,
) -> None:
    subscriber, events_url = await receivers(), await receivers()
    workspace_id, headers = await make_key()
    created = await client.post(
        "/v1/webhooks", json={"url": subscriber.url, "events": ["call.completed"]}, headers=headers
    )
    assert created.status_code == 201
    secret = created.json()["secret"]
    event_id = await _event(database, workspace_id, target_url=events_url.url)

    async with DeliveryWorker(database, settings) as worker:
        done = await worker.run_once()
    assert done.dispatched == 1
    assert done.attempted == 2

    [received] = subscriber.received
    assert received.method == "POST"
    assert received.headers["content-type"] == "application/json"
    assert received.headers["x-sautikit-event"] == "call.completed"
    assert received.headers["x-sautikit-event-id"] == event_id
    verify(received.body, received.headers["x-sautikit-signature"], secret)
    envelope = json.loads(received.body)
    assert envelope == {
        "kind": "call.completed",
        "event_id": event_id,
        "workspace_id": workspace_id,
        "occurred_at": envelope["occurred_at"],
        "data": {"call_id": "c1", "duration_seconds": 42},
    }
    assert envelope["occurred_at"].endswith("Z")

    # The events_url delivery is signed with the workspace's own secret, not the subscription's.
    [to_events_url] = events_url.received
    assert to_events_url.body == received.body
    async with database.transaction() as session:
        workspace_secret = await workspace_signing_secret(session, workspace_id)
    assert workspace_secret.startswith("whsec_")
    verify(to_events_url.body, to_events_url.headers["x-sautikit-signature"], workspace_secret)
    with pytest.raises(WebhookVerificationError):
        verify(to_events_url.body, to_events_url.headers["x-sautikit-signature"], secret)

    # Tampering with what was sent is caught.
    tampered = received.body.replace(b"42", b"43")
    with pytest.raises(WebhookVerificationError, match="does not match"):
        verify(tampered, received.headers["x-sautikit-signature"], secret)
    timestamp = int(received.headers["x-sautikit-signature"].split(",")[0][2:])
    with pytest.raises(WebhookVerificationError, match="old"):
        verify(received.body, received.headers["x-sautikit-signature"], secret, now=timestamp + 301)

    for delivery in await _deliveries(database, event_id):
        assert delivery.status == "delivered"
        assert delivery.attempts == 1
        [attempt] = await _attempts(database, delivery.id)
        assert attempt.status_code == 200
        assert attempt.latency_ms is not None and attempt.latency_ms >= 0
        assert attempt.error is None


async def test_a_workspace_gets_one_signing_secret_even_when_first_asked_concurrently(
    database: Database,
) -> None:
    workspace_id = await _workspace(database)

    async def ask() -> str:
        async with database.transaction() as session:
            return await workspace_signing_secret(session, workspace_id)

    secrets = await asyncio.gather(*(ask() for _ in range(5)))
    assert len(set(secrets)) == 1
    assert await ask() == secrets[0]
    async with database.transaction() as session:
        with pytest.raises(LookupError):
            await workspace_signing_secret(session, "no-such-workspace")


async def test_only_matching_subscriptions_receive_an_event(
    database: Database, settings: Settings, receivers: StartReceiver
) -> None:
    everything, completed, wallet = await receivers(), await receivers(), await receivers()
    workspace_id = await _workspace(database)
    other_workspace = await _workspace(database)
    await _subscribe(database, workspace_id, everything.url, ["*"])
    await _subscribe(database, workspace_id, completed.url, ["call.answered", "call.completed"])
    await _subscribe(database, workspace_id, wallet.url, ["wallet.top_up"])
    await _subscribe(database, other_workspace, wallet.url, ["*"])
    await _event(database, workspace_id, kind="call.completed")

    async with DeliveryWorker(database, settings) as worker:
        await worker.run_once()
    assert len(everything.received) == 1
    assert len(completed.received) == 1
    assert wallet.received == []


async def test_a_receiver_that_fails_twice_gets_the_event_on_the_third_attempt(
    database: Database, settings: Settings, clock: FakeClock, receivers: StartReceiver
) -> None:
    receiver = await receivers((500, 503))
    workspace_id = await _workspace(database)
    event_id = await _event(database, workspace_id, target_url=receiver.url)

    async with DeliveryWorker(database, settings, clock=clock) as worker:
        await worker.run_once()
        [delivery] = await _deliveries(database, event_id)
        assert (delivery.status, delivery.attempts) == ("retrying", 1)
        # Nothing is sent again before the (jittered) wait is over.
        assert delivery.next_attempt_at is not None
        assert delivery.next_attempt_at <= clock.now + timedelta(seconds=30)
        clock.advance_to(delivery.next_attempt_at - timedelta(microseconds=1))
        assert (await worker.run_once()).attempted == 0

        clock.advance_to(delivery.next_attempt_at)
        await worker.run_once()
        [delivery] = await _deliveries(database, event_id)
        assert (delivery.status, delivery.attempts) == ("retrying", 2)
        assert delivery.next_attempt_at is not None
        clock.advance_to(delivery.next_attempt_at)
        await worker.run_once()

    [delivery] = await _deliveries(database, event_id)
    assert (delivery.status, delivery.attempts) == ("delivered", 3)
    attempts = await _attempts(database, delivery.id)
    assert [attempt.status_code for attempt in attempts] == [500, 503, 200]
    assert [attempt.error for attempt in attempts] == [
        "the receiver answered HTTP 500",
        "the receiver answered HTTP 503",
        None,
    ]
    # Every attempt carried the same event, under the same id.
    assert len({request.body for request in receiver.received}) == 1
    assert {request.headers["x-sautikit-event-id"] for request in receiver.received} == {event_id}


async def test_eight_attempts_on_the_jittered_schedule_then_dead_letter(
    database: Database, settings: Settings, clock: FakeClock, receivers: StartReceiver
) -> None:
    receiver = await receivers(then=500)
    workspace_id = await _workspace(database)
    event_id = await _event(database, workspace_id, target_url=receiver.url)
    schedule = RetrySchedule(rng=random.Random(2026))

    async with DeliveryWorker(database, settings, clock=clock, schedule=schedule) as worker:
        for nominal in DELIVERY_WAITS:
            await worker.run_once()
            [delivery] = await _deliveries(database, event_id)
            assert delivery.status == "retrying"
            assert delivery.next_attempt_at is not None
            assert clock.now <= delivery.next_attempt_at <= clock.now + nominal
            clock.advance_to(delivery.next_attempt_at)
        await worker.run_once()
        clock.advance(48 * 3600)
        assert (await worker.run_once()).attempted == 0

    [delivery] = await _deliveries(database, event_id)
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == (
        "dead_letter",
        8,
        None,
    )
    assert len(await _attempts(database, delivery.id)) == 8
    assert len(receiver.received) == 8


async def test_a_receiver_that_does_not_answer_in_time_counts_as_a_failure(
    database: Database, settings: Settings, clock: FakeClock, receivers: StartReceiver
) -> None:
    receiver = await receivers((HANG,))
    workspace_id = await _workspace(database)
    event_id = await _event(database, workspace_id, target_url=receiver.url)

    async with DeliveryWorker(database, settings, clock=clock, timeout=0.2) as worker:
        await worker.run_once()
        [delivery] = await _deliveries(database, event_id)
        assert (delivery.status, delivery.attempts) == ("retrying", 1)
        [attempt] = await _attempts(database, delivery.id)
        assert attempt.status_code is None
        assert attempt.error == "no answer within 0.2 s"

        assert delivery.next_attempt_at is not None
        clock.advance_to(delivery.next_attempt_at)
        await worker.run_once()
    [delivery] = await _deliveries(database, event_id)
    assert delivery.status == "delivered"


async def test_a_refused_connection_is_logged_and_retried(
    database: Database, settings: Settings, clock: FakeClock, receivers: StartReceiver
) -> None:
    receiver = await receivers()
    url = receiver.url
    await receiver.close()
    workspace_id = await _workspace(database)
    event_id = await _event(database, workspace_id, target_url=url)

    async with DeliveryWorker(database, settings, clock=clock) as worker:
        await worker.run_once()
    [delivery] = await _deliveries(database, event_id)
    assert delivery.status == "retrying"
    [attempt] = await _attempts(database, delivery.id)
    assert attempt.status_code is None
    assert attempt.error is not None and attempt.error.startswith("ConnectError")


@pytest.mark.parametrize("url", ["http://[::1/hook", "ftp://127.0.0.1/hook"])
async def test_an_unusable_url_is_a_failed_attempt_not_a_stuck_worker(
    database: Database, settings: Settings, url: str
) -> None:
    workspace_id = await _workspace(database)
    event_id = await _event(database, workspace_id, target_url=url)

    async with DeliveryWorker(database, settings) as worker:
        assert (await worker.run_once()).attempted == 1
    [delivery] = await _deliveries(database, event_id)
    assert delivery.status == "retrying"
    [attempt] = await _attempts(database, delivery.id)
    assert attempt.error is not None and attempt.error.startswith(("InvalidURL", "Unsupported"))


async def test_private_addresses_are_refused_unless_the_operator_allows_them(
    database: Database, tmp_path: Path, receivers: StartReceiver
) -> None:
    receiver = await receivers()
    workspace_id = await _workspace(database)
    event_id = await _event(database, workspace_id, target_url=receiver.url)
    strict = Settings(data_dir=tmp_path / "var", secret_key=SecretStr("test-secret"))

    async with DeliveryWorker(database, strict) as worker:
        await worker.run_once()
    assert receiver.received == []
    [delivery] = await _deliveries(database, event_id)
    [attempt] = await _attempts(database, delivery.id)
    assert attempt.error is not None and attempt.error.startswith("refused: 127.0.0.1")


async def test_a_deleted_subscription_gets_no_more_attempts(
    database: Database, settings: Settings, clock: FakeClock, receivers: StartReceiver
) -> None:
    receiver = await receivers((500,))
    workspace_id = await _workspace(database)
    subscription_id = await _subscribe(database, workspace_id, receiver.url)
    event_id = await _event(database, workspace_id)

    async with DeliveryWorker(database, settings, clock=clock) as worker:
        await worker.run_once()
        async with database.transaction() as session:
            subscription = await session.get(WebhookSubscription, subscription_id)
            await session.delete(subscription)
        clock.advance(60)
        assert (await worker.run_once()).attempted == 0
    [delivery] = await _deliveries(database, event_id)
    assert delivery.status == "canceled"
    assert len(receiver.received) == 1


async def test_a_new_worker_resumes_what_a_stopped_one_left(
    database: Database, settings: Settings, clock: FakeClock, receivers: StartReceiver
) -> None:
    receiver = await receivers((500,))
    workspace_id = await _workspace(database)
    retried = await _event(database, workspace_id, target_url=receiver.url)

    async with DeliveryWorker(database, settings, clock=clock) as first:
        await first.run_once()
    untouched = await _event(database, workspace_id, target_url=receiver.url)

    clock.advance(30)
    async with DeliveryWorker(database, settings, clock=clock) as second:
        done = await second.run_once()
    assert done == (1, 2)
    for event_id in (retried, untouched):
        [delivery] = await _deliveries(database, event_id)
        assert delivery.status == "delivered"
    assert Counter(r.headers["x-sautikit-event-id"] for r in receiver.received) == {
        retried: 2,
        untouched: 1,
    }


async def test_an_attempt_cut_off_by_a_crash_is_sent_again_once_its_lease_runs_out(
    database: Database, settings: Settings, clock: FakeClock, receivers: StartReceiver
) -> None:
    receiver = await receivers((HANG,))
    workspace_id = await _workspace(database)
    event_id = await _event(database, workspace_id, target_url=receiver.url)

    crashed = DeliveryWorker(database, settings, clock=clock)
    attempt = asyncio.create_task(crashed.run_once())
    await receiver.arrived.wait()
    attempt.cancel()  # the process dies mid-request: nothing is recorded
    with pytest.raises(asyncio.CancelledError):
        await attempt
    await crashed.aclose()

    async with DeliveryWorker(database, settings, clock=clock) as survivor:
        assert (await survivor.run_once()).attempted == 0  # the lease still holds
        clock.advance(61)
        assert (await survivor.run_once()).attempted == 1
    [delivery] = await _deliveries(database, event_id)
    assert (delivery.status, delivery.attempts) == ("delivered", 1)
    assert len(receiver.received) == 2


async def test_run_works_until_stopped(
    database: Database, settings: Settings, receivers: StartReceiver
) -> None:
    receiver = await receivers()
    workspace_id = await _workspace(database)
    event_id = await _event(database, workspace_id, target_url=receiver.url)

    async with DeliveryWorker(database, settings, poll_interval=0.01) as worker:
        running = asyncio.create_task(worker.run())
        await receiver.arrived.wait()
        worker.stop()
        await running
    [delivery] = await _deliveries(database, event_id)
    assert delivery.status == "delivered"


async def test_dispatching_twice_never_duplicates_deliveries(
    database: Database, clock: FakeClock
) -> None:
    workspace_id = await _workspace(database)
    await _subscribe(database, workspace_id, "http://127.0.0.1:9/hook")
    event_ids = [
        await _event(database, workspace_id, target_url="http://127.0.0.1:9/events")
        for _ in range(10)
    ]
    dispatched = 0
    while True:
        counts = await asyncio.gather(
            *(dispatch_events(database, now=clock.now, limit=3) for _ in range(6))
        )
        assert all(count <= 3 for count in counts)
        if not sum(counts):
            break
        dispatched += sum(counts)
    assert dispatched == 10
    for event_id in event_ids:
        assert len(await _deliveries(database, event_id)) == 2
    async with database.sessions() as session:
        undispatched = await session.scalar(select(Event).where(Event.dispatched_at.is_(None)))
    assert undispatched is None


async def test_two_workers_racing_over_one_outbox_send_each_attempt_once(
    database: Database, settings: Settings, clock: FakeClock, receivers: StartReceiver
) -> None:
    # Slow answers keep each batch in flight while the other worker claims its own.
    subscriber, events_url = await receivers(delay=0.02), await receivers(delay=0.02)
    workspace_id = await _workspace(database)
    await _subscribe(database, workspace_id, subscriber.url)
    event_ids = [await _event(database, workspace_id, target_url=events_url.url) for _ in range(30)]

    async def outstanding() -> int:
        async with database.sessions() as session:
            undispatched = await session.scalar(
                select(func.count()).where(Event.dispatched_at.is_(None))
            )
            unsent = await session.scalar(
                select(func.count()).where(Delivery.status.in_(["pending", "retrying"]))
            )
        return (undispatched or 0) + (unsent or 0)

    async def drain(worker: DeliveryWorker) -> int:
        # Each worker keeps going while any work is left, so the two overlap throughout.
        attempted = 0
        while True:
            done = await worker.run_once()
            assert done.attempted <= 4 and done.dispatched <= 4
            attempted += done.attempted
            if done == (0, 0):
                if not await outstanding():
                    return attempted
                await asyncio.sleep(0.005)

    async with (
        DeliveryWorker(database, settings, clock=clock, batch_size=4) as one,
        DeliveryWorker(database, settings, clock=clock, batch_size=4) as other,
    ):
        attempted = await asyncio.gather(drain(one), drain(other))

    assert sum(attempted) == 60
    for receiver in (subscriber, events_url):
        sent = Counter(request.headers["x-sautikit-event-id"] for request in receiver.received)
        assert sent == dict.fromkeys(event_ids, 1)
    async with database.sessions() as session:
        attempts = (await session.scalars(select(DeliveryAttempt))).all()
        statuses = (await session.scalars(select(Delivery.status))).all()
    assert len(attempts) == 60
    assert set(statuses) == {"delivered"}
