"""``/v1/webhooks``: workspace-level event subscriptions (SPEC §2, §7)."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import AnyHttpUrl, BaseModel, Field, field_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from sautikit.api.auth import Principal, require_scopes
from sautikit.api.deps import DbSession
from sautikit.api.errors import ApiError
from sautikit.api.pagination import PageParams, page_params, paginate
from sautikit.api.routing import SautikitRoute
from sautikit.api.schemas import RequestModel
from sautikit.api.urls import refuse_undeliverable_fields
from sautikit.db.models import WebhookSubscription
from sautikit.events import EVENT_KINDS

router = APIRouter(prefix="/v1/webhooks", route_class=SautikitRoute, tags=["webhooks"])

manage = require_scopes("webhooks.manage")


class WebhookIn(RequestModel):
    url: AnyHttpUrl = Field(description="Where events are POSTed.")
    events: list[str] = Field(
        min_length=1,
        description='Event kinds, or ["*"] for all.',
        json_schema_extra={"items": {"type": "string", "enum": ["*", *sorted(EVENT_KINDS)]}},
    )

    @field_validator("events")
    @classmethod
    def _known_kinds(cls, events: list[str]) -> list[str]:
        unknown = sorted(set(events) - EVENT_KINDS - {"*"})
        if unknown:
            raise ValueError(f"unknown event kind(s): {', '.join(unknown)}")
        return sorted(set(events))


class WebhookOut(BaseModel):
    id: str
    url: str
    events: list[str]
    created_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(description="The signing secret, shown only in this answer.")


class WebhookPage(BaseModel):
    data: list[WebhookOut]
    next_cursor: str | None


def _out(subscription: WebhookSubscription) -> WebhookOut:
    return WebhookOut(
        id=subscription.id,
        url=subscription.url,
        events=subscription.events,
        created_at=subscription.created_at,
    )


async def subscribe(
    session: AsyncSession, workspace_id: str, body: WebhookIn
) -> WebhookSubscription:
    """A new subscription with its signing secret (the API and the console make them)."""
    subscription = WebhookSubscription(
        workspace_id=workspace_id,
        url=str(body.url),
        events=body.events,
        secret="whsec_" + secrets.token_urlsafe(32),
    )
    session.add(subscription)
    await session.flush()
    return subscription


@router.post("", status_code=201, response_model=WebhookCreated, summary="Subscribe to events")
async def create_webhook(
    body: WebhookIn,
    request: Request,
    session: DbSession,
    principal: Principal = Depends(manage),
) -> WebhookCreated:
    refuse_undeliverable_fields(request, body, "url")
    subscription = await subscribe(session, principal.workspace_id, body)
    return WebhookCreated(**_out(subscription).model_dump(), secret=subscription.secret)


@router.get("", response_model=WebhookPage, summary="List subscriptions, newest first")
async def list_webhooks(
    session: DbSession,
    page: PageParams = Depends(page_params),
    principal: Principal = Depends(manage),
) -> dict[str, Any]:
    query = select(WebhookSubscription).where(
        WebhookSubscription.workspace_id == principal.workspace_id
    )
    return await paginate(session, query, WebhookSubscription.id, page, _out)


async def _owned(
    session: AsyncSession, principal: Principal, webhook_id: str
) -> WebhookSubscription:
    subscription = await session.get(WebhookSubscription, webhook_id)
    if subscription is None or subscription.workspace_id != principal.workspace_id:
        raise ApiError(404, "webhooks.not_found", f"no webhook {webhook_id}")
    return subscription


@router.get("/{webhook_id}", response_model=WebhookOut, summary="One subscription")
async def get_webhook(
    webhook_id: str,
    session: DbSession,
    principal: Principal = Depends(manage),
) -> WebhookOut:
    return _out(await _owned(session, principal, webhook_id))


@router.delete("/{webhook_id}", status_code=204, summary="Unsubscribe")
async def delete_webhook(
    webhook_id: str,
    session: DbSession,
    principal: Principal = Depends(manage),
) -> Response:
    await session.delete(await _owned(session, principal, webhook_id))
    return Response(status_code=204)
