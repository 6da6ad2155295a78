"""Delivering the outbox to apps' webhooks (SPEC §7).

Two steps, each a short transaction, so that every state lives in the database and a
restarted worker (or another process) carries on where one stopped:

1. **Dispatch** turns an undispatched ``Event`` into ``Delivery`` rows — one for the event's
   ``target_url`` (the call's or number's ``events_url``) and one per workspace subscription
   whose ``events`` holds the kind or ``"*"`` — and stamps ``dispatched_at`` in the same
   transaction: a crash leaves either all of it or none of it.
2. **Delivery** claims due deliveries and POSTs the signed envelope. The claim selects due
   rows ``FOR UPDATE SKIP LOCKED`` and, in the same short transaction, pushes their
   ``next_attempt_at`` forward as a lease with an UPDATE that re-checks that they are still
   due. On PostgreSQL concurrent workers skip each other's locked rows; on SQLite (which
   has no row locks) the UPDATE runs under the database's single write lock and finds rows
   another worker has just leased no longer due. Either way one attempt is sent by one
   worker. The outcome is written back only while the lease is still ours.

**Order and fairness.** One call's events reach each receiver (a delivery URL) in their
``sequence`` order: a delivery is not claimed while an earlier event of the same call is
undispatched or has a delivery to the same URL still pending or retrying — a later event
waits for the earlier one's delivery or dead-lettering. :meth:`DeliveryWorker.run` keeps up
to ``max_in_flight`` attempts going, each as its own task, and claims more as soon as any
finishes (no batch waits for its slowest member); at most ``per_endpoint`` of them go to one
URL at a time, so a receiver that hangs holds its own slots and never another's.

A voice callback that must be retried like an event (``transcribeCallback``) is a delivery
of its event with ``callback`` set: it carries the callback's fields (a form, or JSON, as the
app chose; SPEC §3) instead of the envelope, signed with the workspace's secret.

A 2xx within the timeout is success; anything else is retried on ``RetrySchedule`` and,
after the last attempt, the delivery is ``dead_letter``. Delivery is at least once: a crash
between sending and recording sends that attempt again when the lease runs out. Receivers
deduplicate on the stable ``X-Sautikit-Event-Id``.

Deliveries to a subscription are signed with its ``whsec_`` secret; deliveries to an
``events_url`` with the workspace's own signing secret (``workspace_signing_secret``), which
voice callbacks use too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, NamedTuple

import httpx
from pydantic import BaseModel
from sqlalchemy import exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

import sautikit
from sautikit.config import Settings
from sautikit.db import Database
from sautikit.db.models import Delivery, DeliveryAttempt, Event, WebhookSubscription, Workspace
from sautikit.db.types import utcnow
from sautikit.events.schedule import RetrySchedule
from sautikit.events.signing import EVENT_HEADER, EVENT_ID_HEADER, SIGNATURE_HEADER, sign
from sautikit.metrics import COUNTERS
from sautikit.net import OutboundAddressRefused, outbound_client
from sautikit.voice.callbacks import CallbackEncoding, build_app_request

__all__ = [
    "DELIVERY_TIMEOUT_SECONDS",
    "PER_ENDPOINT",
    "DeliveryStatus",
    "DeliveryWorker",
    "EventEnvelope",
    "WorkDone",
    "add_callback_delivery",
    "dispatch_events",
    "envelope_body",
    "fan_out",
    "workspace_signing_secret",
]

log = logging.getLogger(__name__)

DELIVERY_TIMEOUT_SECONDS = 10.0
PER_ENDPOINT = 4
"""Attempts in flight to one URL at a time, per worker."""

Clock = Callable[[], datetime]


class DeliveryStatus:
    """The values of ``Delivery.status``."""

    PENDING = "pending"  # not tried yet
    RETRYING = "retrying"  # failed at least once, another attempt is scheduled
    DELIVERED = "delivered"  # a 2xx came back
    DEAD_LETTER = "dead_letter"  # every attempt failed; redeliver through the API
    CANCELED = "canceled"  # its subscription was deleted before it got through

    DUE = (PENDING, RETRYING)


class EventEnvelope(BaseModel):
    """The JSON body of every delivery (SPEC §7)."""

    kind: str
    event_id: str
    workspace_id: str
    occurred_at: datetime
    data: dict[str, Any]


def envelope_body(event: Event) -> bytes:
    """The exact bytes POSTed (and signed) for ``event``; the same on every attempt."""
    return (
        EventEnvelope(
            kind=event.kind,
            event_id=event.id,
            workspace_id=event.workspace_id,
            occurred_at=event.occurred_at,
            data=event.data,
        )
        .model_dump_json()
        .encode()
    )


async def workspace_signing_secret(session: AsyncSession, workspace_id: str) -> str:
    """The secret that signs ``events_url`` deliveries and voice callbacks of a workspace,
    made on first use. Concurrent first uses agree: only one UPDATE finds it unset."""
    secret_of = select(Workspace.signing_secret).where(Workspace.id == workspace_id)
    secret = await session.scalar(secret_of)
    if secret is None:
        await session.execute(
            update(Workspace)
            .where(Workspace.id == workspace_id, Workspace.signing_secret.is_(None))
            .values(signing_secret="whsec_" + secrets.token_urlsafe(32))
        )
        secret = await session.scalar(secret_of)
    if secret is None:
        raise LookupError(f"no workspace {workspace_id}")
    return str(secret)


async def fan_out(
    session: AsyncSession, event: Event, now: datetime, *, callbacks: bool = False
) -> list[Delivery]:
    """Add a pending delivery of ``event`` to its ``target_url`` and to every subscription
    of its workspace that matches it today, and mark the event dispatched. With
    ``callbacks`` (a redelivery), the voice callbacks the event carried are sent again too."""
    subscriptions = (
        await session.scalars(
            select(WebhookSubscription)
            .where(WebhookSubscription.workspace_id == event.workspace_id)
            .order_by(WebhookSubscription.id)
        )
    ).all()
    deliveries = []
    if event.target_url:
        deliveries.append(Delivery(event_id=event.id, url=event.target_url))
    deliveries += [
        Delivery(event_id=event.id, subscription_id=subscription.id, url=subscription.url)
        for subscription in subscriptions
        if event.kind in subscription.events or "*" in subscription.events
    ]
    if callbacks:
        carried = await session.scalars(
            select(Delivery).where(Delivery.event_id == event.id, Delivery.callback.is_not(None))
        )
        unique = {(d.url, json.dumps(d.callback, sort_keys=True)): d for d in carried}
        deliveries += [
            Delivery(event_id=event.id, url=d.url, callback=d.callback) for d in unique.values()
        ]
    for delivery in deliveries:
        delivery.status = DeliveryStatus.PENDING
        delivery.attempts = 0
        delivery.next_attempt_at = now
        delivery.created_at = now
    session.add_all(deliveries)
    if event.dispatched_at is None:
        event.dispatched_at = now
    await session.flush()
    return deliveries


async def add_callback_delivery(
    session: AsyncSession,
    event: Event,
    *,
    url: str,
    method: str,
    fields: dict[str, str | int],
    encoding: CallbackEncoding,
) -> Delivery:
    """Send a voice callback (``transcribeCallback``) to ``url`` with ``event``'s retries:
    a pending delivery that carries ``fields`` instead of the envelope. Add it in the
    transaction that writes ``event``."""
    now = utcnow()
    delivery = Delivery(
        event_id=event.id,
        url=url,
        callback={"method": method, "encoding": str(encoding), "fields": fields},
        status=DeliveryStatus.PENDING,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(delivery)
    await session.flush()
    return delivery


async def dispatch_events(database: Database, *, now: datetime, limit: int = 100) -> int:
    """Fan out up to ``limit`` undispatched events in one transaction; answers how many.

    The events are locked (skipping those another dispatcher holds) and stamped by an
    UPDATE that re-checks ``dispatched_at``, so two dispatchers never fan out one event
    twice. Two statements rather than ``UPDATE … WHERE id IN (SELECT … LIMIT …)``:
    PostgreSQL may run such a subquery more than once and so take more than ``limit``.
    """
    async with database.transaction() as session:
        candidates = (
            await session.scalars(
                select(Event.id)
                .where(Event.dispatched_at.is_(None))
                .order_by(Event.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
        claimed = (
            await session.scalars(
                update(Event)
                .where(Event.id.in_(candidates), Event.dispatched_at.is_(None))
                .values(dispatched_at=now)
                .returning(Event.id)
                .execution_options(synchronize_session=False)
            )
        ).all()
        if not claimed:
            return 0
        events = (await session.scalars(select(Event).where(Event.id.in_(claimed)))).all()
        for event in events:
            await fan_out(session, event, now)
    return len(claimed)


@dataclass(frozen=True)
class _Claimed:
    """One attempt this worker holds the lease for, with everything needed to send it."""

    delivery_id: str
    url: str
    kind: str
    event_id: str
    body: bytes
    secret: str
    attempts_made: int
    lease_until: datetime
    occurred_at: datetime | None = None
    callback: dict[str, Any] | None = None
    """``{"method", "encoding", "fields"}`` of a voice callback; None: the envelope."""


@dataclass(frozen=True)
class _Outcome:
    attempted_at: datetime
    status_code: int | None
    latency_ms: int
    error: str | None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class WorkDone(NamedTuple):
    dispatched: int  # events fanned out into deliveries
    attempted: int  # delivery attempts sent (successful or not)


class DeliveryWorker:
    """Dispatches the outbox and sends due deliveries until ``stop()``.

    ``clock`` tells the time used for scheduling and signatures (tests advance it instead
    of sleeping); ``http`` defaults to ``outbound_client`` under the operator's
    ``allow_private_http``, and is closed by ``aclose`` only when the worker made it.
    ``batch_size`` bounds the attempts in flight (and those claimed at once);
    ``per_endpoint`` bounds those to one URL.
    """

    def __init__(
        self,
        database: Database,
        settings: Settings,
        *,
        clock: Clock = utcnow,
        http: httpx.AsyncClient | None = None,
        schedule: RetrySchedule | None = None,
        timeout: float = DELIVERY_TIMEOUT_SECONDS,
        batch_size: int = 50,
        per_endpoint: int = PER_ENDPOINT,
        poll_interval: float = 1.0,
    ) -> None:
        self._database = database
        self._clock = clock
        self._owns_http = http is None
        self._http = http or outbound_client(
            allow_private=settings.allow_private_http, timeout=timeout
        )
        self._schedule = schedule or RetrySchedule()
        self._timeout = timeout
        # The lease outlives a whole attempt (send, then record), so it never runs out
        # under a live worker; it only frees the rows of one that died.
        self._lease = timedelta(seconds=timeout + 50)
        self._batch_size = batch_size
        self._per_endpoint = per_endpoint
        self._poll_interval = poll_interval
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._in_flight: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> DeliveryWorker:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    def stop(self) -> None:
        """Ask ``run`` to return once the attempts in flight are recorded."""
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        """Work until ``stop()``: dispatch, claim as many due deliveries as there are free
        slots, start each attempt as a task of its own, and go round again at once when
        something was started, else when an attempt finishes or after ``poll_interval``.
        A failing database is logged and retried, never fatal."""
        self._stopping.clear()
        try:
            while not self._stopping.is_set():
                self._wake.clear()
                try:
                    dispatched = await dispatch_events(
                        self._database, now=self._clock(), limit=self._batch_size
                    )
                    claimed = await self._claim(self._batch_size - len(self._tasks))
                except Exception:
                    log.exception("event delivery round failed; retrying")
                    dispatched, claimed = 0, []
                for item in claimed:
                    task = asyncio.create_task(
                        self._attempt(item), name=f"delivery {item.delivery_id}"
                    )
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                if not claimed and dispatched < self._batch_size:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self._poll_interval)
        finally:
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)

    async def run_once(self) -> WorkDone:
        """One round, awaited whole (tests and tools): dispatch new events, claim what is
        due and may go now (order and per-endpoint limits hold), send each, record it."""
        dispatched = await dispatch_events(
            self._database, now=self._clock(), limit=self._batch_size
        )
        claimed = await self._claim(self._batch_size)
        await asyncio.gather(*(self._attempt(item) for item in claimed))
        return WorkDone(dispatched, len(claimed))

    async def _claim(self, limit: int) -> list[_Claimed]:
        """Lease up to ``limit`` due deliveries that may go now: not to a URL already at
        ``per_endpoint`` attempts, and not while an earlier event of the same call still
        waits to reach the same URL (see the module docstring)."""
        if limit <= 0:
            return []
        now = self._clock()
        lease_until = now + self._lease
        this, earlier_event, earlier = aliased(Event), aliased(Event), aliased(Delivery)
        earlier_of_call = (
            earlier_event.call_id == this.call_id,
            earlier_event.sequence < this.sequence,
        )
        waits_for_earlier = exists().where(
            *earlier_of_call, earlier_event.dispatched_at.is_(None)
        ) | exists().where(
            *earlier_of_call,
            earlier.event_id == earlier_event.id,
            earlier.url == Delivery.url,
            earlier.status.in_(DeliveryStatus.DUE),
        )
        query = (
            select(Delivery.id, Delivery.url)
            .join(this, this.id == Delivery.event_id)
            .where(
                Delivery.status.in_(DeliveryStatus.DUE),
                Delivery.next_attempt_at <= now,
                ~waits_for_earlier,
            )
            .order_by(Delivery.next_attempt_at, Delivery.id)
            .limit(limit)
            .with_for_update(of=Delivery, skip_locked=True)
        )
        full = [url for url, count in self._in_flight.items() if count >= self._per_endpoint]
        if full:
            query = query.where(Delivery.url.not_in(full))
        async with self._database.transaction() as session:
            picked: list[str] = []
            taken: Counter[str] = Counter()
            for delivery_id, url in (await session.execute(query)).all():
                if self._in_flight[url] + taken[url] < self._per_endpoint:
                    picked.append(delivery_id)
                    taken[url] += 1
            ids = (
                await session.scalars(
                    update(Delivery)
                    .where(
                        Delivery.id.in_(picked),
                        Delivery.status.in_(DeliveryStatus.DUE),
                        Delivery.next_attempt_at <= now,
                    )
                    .values(next_attempt_at=lease_until)
                    .returning(Delivery.id)
                    .execution_options(synchronize_session=False)
                )
            ).all()
            if not ids:
                return []
            rows = (
                await session.execute(
                    select(Delivery, Event, WebhookSubscription)
                    .join(Event, Event.id == Delivery.event_id)
                    .outerjoin(
                        WebhookSubscription, WebhookSubscription.id == Delivery.subscription_id
                    )
                    .where(Delivery.id.in_(ids))
                    .order_by(Delivery.id)
                )
            ).all()
            claimed = []
            for delivery, event, subscription in rows:
                if subscription is not None:
                    secret = subscription.secret
                elif delivery.callback is not None or delivery.url == event.target_url:
                    secret = await workspace_signing_secret(session, event.workspace_id)
                else:  # the subscription was deleted: the app no longer wants these
                    delivery.status = DeliveryStatus.CANCELED
                    delivery.next_attempt_at = None
                    continue
                claimed.append(
                    _Claimed(
                        delivery_id=delivery.id,
                        url=delivery.url,
                        kind=event.kind,
                        event_id=event.id,
                        body=envelope_body(event),
                        secret=secret,
                        attempts_made=delivery.attempts,
                        lease_until=lease_until,
                        occurred_at=event.occurred_at,
                        callback=delivery.callback,
                    )
                )
        for item in claimed:
            self._in_flight[item.url] += 1
        return claimed

    async def _attempt(self, item: _Claimed) -> None:
        try:
            outcome = await self._send(item)
            COUNTERS.outbox_attempt(outcome.latency_ms / 1000, outcome.status_code, outcome.error)
            if outcome.succeeded and item.occurred_at is not None:
                waited = (outcome.attempted_at - item.occurred_at).total_seconds()
                COUNTERS.outbox_delivery_latency.observe(max(waited, 0.0))
            try:
                await self._record(item, outcome)
            except Exception:
                # The lease runs out and the attempt is made again: at least once.
                log.exception("could not record delivery %s's attempt", item.delivery_id)
        finally:
            self._in_flight[item.url] -= 1
            if self._in_flight[item.url] <= 0:
                del self._in_flight[item.url]
            self._wake.set()

    def _request(self, item: _Claimed, timestamp: int) -> httpx.Request:
        names = {EVENT_HEADER: item.kind, EVENT_ID_HEADER: item.event_id}
        if item.callback is not None:
            request = build_app_request(
                self._http,
                item.secret,
                item.url,
                str(item.callback["method"]),
                item.callback["fields"],
                CallbackEncoding(item.callback["encoding"]),
                timestamp=timestamp,
            )
            request.headers.update(names)
            return request
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"Sautikit/{sautikit.__version__}",
            **names,
            SIGNATURE_HEADER: sign(item.secret, item.body, timestamp),
        }
        return self._http.build_request(
            "POST", item.url, content=item.body, headers=headers, timeout=self._timeout
        )

    async def _send(self, item: _Claimed) -> _Outcome:
        attempted_at = self._clock()
        started = time.perf_counter()
        status_code: int | None = None
        error: str | None = None
        try:
            request = self._request(item, int(attempted_at.timestamp()))
            async with asyncio.timeout(self._timeout):
                # Streamed so the receiver's answer is never read: only its status matters.
                response = await self._http.send(request, stream=True)
                status_code = response.status_code
                await response.aclose()
            if not 200 <= status_code < 300:
                error = f"the receiver answered HTTP {status_code}"
        except (TimeoutError, httpx.TimeoutException):
            error = f"no answer within {self._timeout:g} s"
        except OutboundAddressRefused as exc:
            error = f"refused: {exc}"
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        latency_ms = round((time.perf_counter() - started) * 1000)
        return _Outcome(attempted_at, status_code, latency_ms, error)

    async def _record(self, item: _Claimed, outcome: _Outcome) -> None:
        attempts = item.attempts_made + 1
        now = self._clock()
        changes: dict[str, Any] = {"attempts": attempts}
        if outcome.succeeded:
            changes |= {
                "status": DeliveryStatus.DELIVERED,
                "delivered_at": now,
                "next_attempt_at": None,
            }
        elif (delay := self._schedule.delay_after(attempts)) is None:
            changes |= {"status": DeliveryStatus.DEAD_LETTER, "next_attempt_at": None}
        else:
            changes |= {"status": DeliveryStatus.RETRYING, "next_attempt_at": now + delay}
        async with self._database.transaction() as session:
            still_ours = await session.scalar(
                update(Delivery)
                .where(
                    Delivery.id == item.delivery_id, Delivery.next_attempt_at == item.lease_until
                )
                .values(**changes)
                .returning(Delivery.id)
                .execution_options(synchronize_session=False)
            )
            if still_ours is None:
                log.warning("delivery %s changed hands while it was being sent", item.delivery_id)
            if await session.get(Delivery, item.delivery_id) is None:
                return  # its event was deleted meanwhile
            session.add(
                DeliveryAttempt(
                    delivery_id=item.delivery_id,
                    attempted_at=outcome.attempted_at,
                    status_code=outcome.status_code,
                    latency_ms=outcome.latency_ms,
                    error=outcome.error,
                )
            )
        if outcome.error is not None:
            log.info(
                "event %s delivery %s attempt %d failed: %s",
                item.event_id,
                item.delivery_id,
                attempts,
                outcome.error,
            )
