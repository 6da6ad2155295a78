"""``/v1/numbers``: the inventory, claiming, routing and releasing numbers (SPEC §2, §6).

A number another workspace holds answers 404 ``numbers.not_found``, exactly like an id
that does not exist; a number still in the inventory answers 404 ``numbers.not_owned``
(it is listed by ``/v1/numbers/available`` anyway) so the app learns to claim it first.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import AnyHttpUrl, BaseModel, Field, UrlConstraints
from sqlalchemy import String, cast, select
from sqlalchemy.ext.asyncio import AsyncSession

from sautikit.api.auth import Principal, require_scopes
from sautikit.api.deps import DbSession
from sautikit.api.errors import ApiError, ErrorEnvelope
from sautikit.api.pagination import PageParams, page_params, paginate
from sautikit.api.routing import SautikitRoute
from sautikit.api.schemas import RequestModel
from sautikit.api.urls import refuse_undeliverable_fields
from sautikit.billing.authorisation import normalise_prefix
from sautikit.billing.ledger import InsufficientFunds
from sautikit.billing.numbers import (
    AVAILABLE,
    NumberNotAvailable,
    NumberNotFound,
    claim_number,
    release_number,
)
from sautikit.db.models import Number
from sautikit.db.types import utcnow

__all__ = ["owned_number", "router"]

router = APIRouter(prefix="/v1/numbers", route_class=SautikitRoute, tags=["numbers"])

read = require_scopes("numbers.read")
write = require_scopes("numbers.write")

AppUrl = Annotated[AnyHttpUrl, UrlConstraints(max_length=2048)]


class AvailableNumber(BaseModel):
    id: str
    number: str = Field(description="E.164, e.g. +254711000001.")
    capabilities: list[str]
    monthly_price_minor: int
    currency: str = "KES"


class NumberOut(AvailableNumber):
    status: Literal["active", "suspended"] = Field(
        description="`suspended` when the monthly rental could not be paid: no calls ring."
    )
    voice_url: str | None
    voice_method: Literal["POST", "GET"]
    fallback_url: str | None
    events_url: str | None
    callback_encoding: Literal["form", "json"] | None = Field(
        description="`form` or `json` for this number's calls; null: the workspace's setting."
    )
    claimed_at: datetime | None
    paid_until: datetime | None = Field(description="The end of the paid rental period.")
    created_at: datetime


class AvailablePage(BaseModel):
    data: list[AvailableNumber]
    next_cursor: str | None


class NumberPage(BaseModel):
    data: list[NumberOut]
    next_cursor: str | None


class RoutingIn(RequestModel):
    """Only the fields sent change; ``null`` clears a URL."""

    voice_url: AppUrl | None = Field(
        None, description="Asked for the actions when a call arrives; unset rings the devices."
    )
    voice_method: Literal["POST", "GET"] = "POST"
    fallback_url: AppUrl | None = Field(None, description="Tried when voice_url fails.")
    events_url: AppUrl | None = Field(None, description="Receives this number's call events.")
    callback_encoding: Literal["form", "json"] | None = Field(
        None,
        description=(
            "How POSTs to voice_url and the actions' URLs carry the call's fields: `form` "
            "(strings) or `json` (typed); null follows the workspace's `callback_encoding`."
        ),
    )


def _available(number: Number) -> AvailableNumber:
    return AvailableNumber(
        id=number.id,
        number=number.e164,
        capabilities=number.capabilities,
        monthly_price_minor=number.monthly_price_minor,
    )


def _out(number: Number) -> NumberOut:
    return NumberOut(
        **_available(number).model_dump(),
        # Status, method and encoding columns hold only the literals the schema allows.
        status=number.status,  # type: ignore[arg-type]
        voice_url=number.voice_url,
        voice_method=number.voice_method,  # type: ignore[arg-type]
        fallback_url=number.fallback_url,
        events_url=number.events_url,
        callback_encoding=number.callback_encoding,  # type: ignore[arg-type]
        claimed_at=number.claimed_at,
        paid_until=number.paid_until,
        created_at=number.created_at,
    )


async def owned_number(
    session: AsyncSession, principal: Principal, number_id: str, *, for_change: bool = False
) -> Number:
    """The caller's number ``number_id``, or the 404 the module docstring describes.

    ``for_change`` locks the row (PostgreSQL) so that a change cannot land on a number a
    concurrent release has just handed back to the inventory.
    """
    number = await session.get(Number, number_id, with_for_update=for_change)
    if number is not None and number.workspace_id == principal.workspace_id:
        return number
    if number is not None and number.workspace_id is None and number.status == AVAILABLE:
        raise ApiError(404, "numbers.not_owned", f"number {number_id} is not yours: claim it first")
    raise ApiError(404, "numbers.not_found", f"no number {number_id}")


@router.get(
    "/available",
    response_model=AvailablePage,
    summary="Numbers in the inventory that nobody holds",
)
async def list_available(
    session: DbSession,
    prefix: str | None = Query(
        None,
        description="E.164 prefix, e.g. +25420 (a leading '+' may be left out).",
        pattern=r"^\s*\+?[1-9][0-9]{0,14}$",
    ),
    capability: Literal["voice", "sms"] | None = Query(None),
    page: PageParams = Depends(page_params),
    _principal: Principal = Depends(read),
) -> dict[str, Any]:
    query = select(Number).where(Number.workspace_id.is_(None), Number.status == AVAILABLE)
    if prefix is not None:
        # An unencoded '+' in a query string arrives as a space: accept the digits alone.
        wanted = prefix.strip()
        try:
            wanted = normalise_prefix(wanted if wanted.startswith("+") else "+" + wanted)
        except ValueError as error:
            raise ApiError(
                400, "validation.invalid_field", f"prefix: {error}", field="prefix"
            ) from None
        query = query.where(Number.e164.startswith(wanted, autoescape=True))
    if capability is not None:
        # Capabilities are a JSON list of fixed words; its text holds the quoted word.
        query = query.where(cast(Number.capabilities, String).contains(f'"{capability}"'))
    return await paginate(session, query, Number.id, page, _available)


@router.post(
    "/{number_id}/claim",
    response_model=NumberOut,
    summary="Claim a number: pays its first month from the wallet",
    responses={
        402: {"model": ErrorEnvelope, "description": "`wallet.insufficient_funds`"},
        409: {"model": ErrorEnvelope, "description": "`numbers.not_available`: already held"},
    },
)
async def claim(
    number_id: str, session: DbSession, principal: Principal = Depends(write)
) -> NumberOut:
    try:
        number = await claim_number(
            session, workspace_id=principal.workspace_id, number_id=number_id, now=utcnow()
        )
    except NumberNotFound:
        raise ApiError(404, "numbers.not_found", f"no number {number_id}") from None
    except NumberNotAvailable:
        raise ApiError(
            409, "numbers.not_available", f"number {number_id} is already held"
        ) from None
    except InsufficientFunds:
        raise ApiError(
            402,
            "wallet.insufficient_funds",
            "the wallet cannot pay this number's first month; top it up and try again",
        ) from None
    return _out(number)


@router.get("", response_model=NumberPage, summary="The workspace's numbers, newest first")
async def list_numbers(
    session: DbSession,
    status: Literal["active", "suspended"] | None = Query(None),
    page: PageParams = Depends(page_params),
    principal: Principal = Depends(read),
) -> dict[str, Any]:
    query = select(Number).where(Number.workspace_id == principal.workspace_id)
    if status is not None:
        query = query.where(Number.status == status)
    return await paginate(session, query, Number.id, page, _out)


@router.get("/{number_id}", response_model=NumberOut, summary="One of the workspace's numbers")
async def get_number(
    number_id: str, session: DbSession, principal: Principal = Depends(read)
) -> NumberOut:
    return _out(await owned_number(session, principal, number_id))


@router.patch(
    "/{number_id}/routing", response_model=NumberOut, summary="Where the number's calls go"
)
async def set_routing(
    number_id: str,
    body: RoutingIn,
    request: Request,
    session: DbSession,
    principal: Principal = Depends(write),
) -> NumberOut:
    refuse_undeliverable_fields(request, body, "voice_url", "fallback_url", "events_url")
    number = await owned_number(session, principal, number_id, for_change=True)
    for name in body.model_fields_set:
        value = getattr(body, name)
        setattr(number, name, value if value is None else str(value))
    await session.flush()
    return _out(number)


@router.delete(
    "/{number_id}",
    status_code=204,
    summary="Release: back to the inventory, routing cleared, devices revoked, rental stops",
)
async def release(
    number_id: str, session: DbSession, principal: Principal = Depends(write)
) -> Response:
    number = await owned_number(session, principal, number_id, for_change=True)
    await release_number(session, number, now=utcnow())
    return Response(status_code=204)
