"""``GET /v1/public/pricing``: the headline rates, read from the operator's rate deck."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlalchemy import select

from sautikit.api.deps import DbSession, api_context
from sautikit.api.routing import SautikitRoute
from sautikit.db.models import Rate

router = APIRouter(prefix="/v1/public", route_class=SautikitRoute, tags=["pricing"])


class DestinationRate(BaseModel):
    prefix: str
    destination: str
    per_minute_minor: int


class Pricing(BaseModel):
    currency: str = "KES"
    billing_increment_seconds: int = 1
    number_rental_monthly_minor: int
    inbound_per_minute_minor: int
    outbound: list[DestinationRate]
    transcription_per_minute_minor: int


@router.get("/pricing", response_model=Pricing, summary="Headline rates; no API key needed")
async def pricing(request: Request, session: DbSession) -> Pricing:
    settings = api_context(request).settings
    deck = (
        await session.scalars(select(Rate).where(Rate.workspace_id.is_(None)).order_by(Rate.prefix))
    ).all()
    outbound = [
        DestinationRate(
            prefix=rate.prefix,
            destination=rate.destination,
            per_minute_minor=rate.rate_per_minute_minor,
        )
        for rate in deck
        if rate.direction == "outbound"
    ] or [
        DestinationRate(
            prefix="+254",
            destination="Kenya",
            per_minute_minor=settings.default_outbound_rate_minor,
        )
    ]
    inbound = [rate for rate in deck if rate.direction == "inbound"]
    return Pricing(
        number_rental_monthly_minor=settings.default_number_rental_minor,
        inbound_per_minute_minor=(
            min(rate.rate_per_minute_minor for rate in inbound)
            if inbound
            else settings.default_inbound_rate_minor
        ),
        outbound=outbound,
        transcription_per_minute_minor=settings.default_transcription_rate_minor,
    )
