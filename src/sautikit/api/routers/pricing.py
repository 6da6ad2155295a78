"""``GET /v1/public/pricing``: the headline rates, read from the operator's rate deck.

The deck and its defaults come from ``billing.rating``, the module that prices calls, so
the page shows exactly what a call is charged.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from sautikit.api.deps import DbSession, api_context
from sautikit.api.routing import SautikitRoute
from sautikit.billing.rating import ON_NET, RateLine, published_rates

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
    on_net: list[DestinationRate] = Field(
        description="Calls to numbers held on this platform: they never reach a carrier."
    )
    transcription_per_minute_minor: int


@router.get("/pricing", response_model=Pricing, summary="Headline rates; no API key needed")
async def pricing(request: Request, session: DbSession) -> Pricing:
    settings = api_context(request).settings
    outbound = await published_rates(session, "outbound", settings=settings)
    inbound = await published_rates(session, "inbound", settings=settings)
    on_net = await published_rates(session, ON_NET, settings=settings)
    return Pricing(
        number_rental_monthly_minor=settings.default_number_rental_minor,
        inbound_per_minute_minor=min(line.rate_per_minute_minor for line in inbound),
        outbound=_lines(outbound),
        on_net=_lines(on_net),
        transcription_per_minute_minor=settings.default_transcription_rate_minor,
    )


def _lines(lines: list[RateLine]) -> list[DestinationRate]:
    return [
        DestinationRate(
            prefix=line.prefix,
            destination=line.destination,
            per_minute_minor=line.rate_per_minute_minor,
        )
        for line in lines
    ]
