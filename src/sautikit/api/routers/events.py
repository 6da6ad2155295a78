"""``/v1/events``: the event log, each event's deliveries and attempts, and redelivery.

Every endpoint needs the ``webhooks.manage`` scope: the log shows where events go and how
receivers answered, which is the business of whoever manages the workspace's webhooks.

Redelivery fans the event out again as if it had just happened: one new pending delivery to
the event's ``events_url`` and one to each subscription that matches it *now* (a deleted
subscription gets none; a new one gets the event too). Earlier deliveries, dead-lettered or
not, stay in the log as they were, attempts and all. The event keeps its id, so receivers
that deduplicate on ``X-Sautikit-Event-Id`` see the same event again.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from sautikit.api.auth import Principal, require_scopes
from sautikit.api.deps import DbSession
from sautikit.api.errors import ApiError, ErrorEnvelope
from sautikit.api.pagination import PageParams, page_params, paginate
from sautikit.api.routing import SautikitRoute
from sautikit.db.models import Delivery, DeliveryAttempt, Event
from sautikit.db.types import utcnow
from sautikit.events import EVENT_KINDS
from sautikit.events.delivery import fan_out

__all__ = ["router"]

router = APIRouter(prefix="/v1/events", route_class=SautikitRoute, tags=["events"])

manage = require_scopes("webhooks.manage")

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorEnvelope, "description": "`events.not_found`"}
}


class EventOut(BaseModel):
    id: str = Field(description="Also sent as `event_id` and `X-Sautikit-Event-Id`.")
    kind: str
    workspace_id: str
    call_id: str | None
    occurred_at: datetime
    data: dict[str, Any]
    events_url: str | None = Field(description="The call's or number's events_url, if any.")
    dispatched_at: datetime | None = Field(
        description="When the event was fanned out into deliveries; null until then."
    )


class EventPage(BaseModel):
    data: list[EventOut]
    next_cursor: str | None


class AttemptOut(BaseModel):
    attempted_at: datetime
    status_code: int | None = Field(description="The receiver's HTTP status; null if none.")
    latency_ms: int | None
    error: str | None = Field(description="Why the attempt failed; null when it succeeded.")


class DeliveryOut(BaseModel):
    id: str
    event_id: str
    url: str
    subscription_id: str | None = Field(
        description="The subscription delivered to; null for the events_url."
    )
    status: str = Field(description="pending, retrying, delivered, dead_letter or canceled.")
    attempt_count: int
    next_attempt_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None
    attempts: list[AttemptOut] = Field(description="Every attempt, oldest first.")


class DeliveryPage(BaseModel):
    data: list[DeliveryOut]
    next_cursor: str | None


class Redelivered(BaseModel):
    data: list[DeliveryOut] = Field(description="The new pending deliveries.")


def _event_out(event: Event) -> EventOut:
    return EventOut(
        id=event.id,
        kind=event.kind,
        workspace_id=event.workspace_id,
        call_id=event.call_id,
        occurred_at=event.occurred_at,
        data=event.data,
        events_url=event.target_url,
        dispatched_at=event.dispatched_at,
    )


async def _deliveries_out(session: AsyncSession, deliveries: list[Delivery]) -> list[DeliveryOut]:
    attempts: dict[str, list[AttemptOut]] = defaultdict(list)
    if deliveries:
        rows = await session.scalars(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id.in_([delivery.id for delivery in deliveries]))
            .order_by(DeliveryAttempt.id)
        )
        for attempt in rows:
            attempts[attempt.delivery_id].append(
                AttemptOut(
                    attempted_at=attempt.attempted_at,
                    status_code=attempt.status_code,
                    latency_ms=attempt.latency_ms,
                    error=attempt.error,
                )
            )
    return [
        DeliveryOut(
            id=delivery.id,
            event_id=delivery.event_id,
            url=delivery.url,
            subscription_id=delivery.subscription_id,
            status=delivery.status,
            attempt_count=delivery.attempts,
            next_attempt_at=delivery.next_attempt_at,
            created_at=delivery.created_at,
            delivered_at=delivery.delivered_at,
            attempts=attempts[delivery.id],
        )
        for delivery in deliveries
    ]


async def _owned(session: AsyncSession, principal: Principal, event_id: str) -> Event:
    event = await session.get(Event, event_id)
    if event is None or event.workspace_id != principal.workspace_id:
        raise ApiError(404, "events.not_found", f"no event {event_id}")
    return event


@router.get("", response_model=EventPage, summary="The event log, newest first")
async def list_events(
    session: DbSession,
    kind: str | None = Query(
        None,
        description="Only events of this kind.",
        json_schema_extra={"enum": sorted(EVENT_KINDS)},
    ),
    call_id: str | None = Query(None, description="Only events about this call."),
    page: PageParams = Depends(page_params),
    principal: Principal = Depends(manage),
) -> dict[str, Any]:
    """Every event of the workspace, newest first. Needs the `webhooks.manage` scope."""
    if kind is not None and kind not in EVENT_KINDS:
        raise ApiError(
            400, "validation.invalid_field", f"kind: unknown event kind {kind!r}", field="kind"
        )
    query = select(Event).where(Event.workspace_id == principal.workspace_id)
    if kind is not None:
        query = query.where(Event.kind == kind)
    if call_id is not None:
        query = query.where(Event.call_id == call_id)
    return await paginate(session, query, Event.id, page, _event_out)


@router.get("/{event_id}", response_model=EventOut, responses=_NOT_FOUND, summary="One event")
async def get_event(
    event_id: str, session: DbSession, principal: Principal = Depends(manage)
) -> EventOut:
    """Needs the `webhooks.manage` scope."""
    return _event_out(await _owned(session, principal, event_id))


@router.get(
    "/{event_id}/deliveries",
    response_model=DeliveryPage,
    responses=_NOT_FOUND,
    summary="An event's deliveries, newest first, each with its attempts",
)
async def list_deliveries(
    event_id: str,
    session: DbSession,
    page: PageParams = Depends(page_params),
    principal: Principal = Depends(manage),
) -> dict[str, Any]:
    """One delivery per destination (and per redelivery), each with every attempt: the
    receiver's status code, the latency and the error. Needs the `webhooks.manage` scope."""
    await _owned(session, principal, event_id)
    listed = await paginate(
        session,
        select(Delivery).where(Delivery.event_id == event_id),
        Delivery.id,
        page,
        lambda delivery: delivery,
    )
    listed["data"] = await _deliveries_out(session, listed["data"])
    return listed


@router.post(
    "/{event_id}/redeliver",
    status_code=202,
    response_model=Redelivered,
    responses=_NOT_FOUND,
    summary="Send the event again to its events_url, matching subscriptions and callbacks",
)
async def redeliver_event(
    event_id: str, session: DbSession, principal: Principal = Depends(manage)
) -> Redelivered:
    """Creates a fresh pending delivery to the event's events_url, to each subscription
    that matches the event now, and to a voice callback it carried (a
    `transcribeCallback`); earlier deliveries, dead-lettered or not, are left as they were.
    The event keeps its id. Honours `Idempotency-Key`. Needs `webhooks.manage`."""
    event = await _owned(session, principal, event_id)
    deliveries = await fan_out(session, event, utcnow(), callbacks=True)
    return Redelivered(data=await _deliveries_out(session, deliveries))
