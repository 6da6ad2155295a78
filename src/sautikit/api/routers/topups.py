"""``/v1/topups``: M-Pesa top-ups (issue 18), and the callbacks Safaricom posts.

``POST /v1/topups`` answers 201 with a ``pending`` top-up at once and sends the STK push
right after its row is committed; the phone rings for the PIN within seconds. The
top-up becomes ``confirmed`` (one ledger credit, then ``wallet.top_up``) or ``failed``
when M-Pesa's callback comes, or when the STK query settles a push whose callback did not.

The callback routes carry a token derived from the deployment's secret in their path; a
wrong token answers 404 like any unknown path. They answer Daraja's own shape,
``{"ResultCode": 0, "ResultDesc": "Accepted"}``, also for a duplicate, so that Safaricom
stops retrying; a refused callback answers 400 with ``ResultCode: 1`` and its reason.
"""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import select
from starlette.background import BackgroundTask

from sautikit.api.auth import Principal, require_scopes
from sautikit.api.deps import DbSession, api_context
from sautikit.api.errors import ApiError, ErrorEnvelope
from sautikit.api.pagination import PageParams, page_params, paginate
from sautikit.api.routing import SautikitRoute
from sautikit.api.schemas import RequestModel
from sautikit.billing.mpesa.topups import (
    CallbackAnswer,
    InvalidTopUp,
    TopUpService,
    account_reference,
    apply_c2b_confirmation,
    apply_stk_callback,
    callback_token,
    create_stk_topup,
    source_allowed,
    validate_c2b,
)
from sautikit.config import Settings
from sautikit.db.models import TopUp, Workspace

__all__ = ["TopUpOut", "router", "topup_out", "topup_service"]

router = APIRouter(prefix="/v1/topups", route_class=SautikitRoute, tags=["wallet"])

read = require_scopes("wallet.read")
write = require_scopes("wallet.write")


class TopUpIn(RequestModel):
    provider: Literal["mpesa"] = Field(description="Only M-Pesa, by STK push.")
    amount_minor: int = Field(description="Whole shillings in minor units: 100 = KES 1.")
    currency: Literal["KES"]
    phone_e164: str = Field(description="The M-Pesa phone to prompt, e.g. +254712345678.")


class TopUpOut(BaseModel):
    id: str
    provider: str
    method: str = Field(description="`stk_push`, or `paybill` for a payment to the Paybill.")
    status: Literal["pending", "confirmed", "failed"]
    amount_minor: int
    currency: str
    phone_e164: str | None
    account_reference: str | None
    checkout_request_id: str | None = Field(description="Daraja's id of the STK push.")
    provider_reference: str | None = Field(description="The M-Pesa receipt number.")
    failure_reason: str | None
    created_at: datetime
    settled_at: datetime | None


class TopUpPage(BaseModel):
    data: list[TopUpOut]
    next_cursor: str | None


class PaybillOut(BaseModel):
    shortcode: str = Field(description="The Paybill business number.")
    account_reference: str = Field(description="The account number that credits this wallet.")


def topup_out(topup: TopUp) -> TopUpOut:
    return TopUpOut(
        id=topup.id,
        provider=topup.provider,
        method=topup.method,
        status=topup.status,  # type: ignore[arg-type]  # the column holds one of the three
        amount_minor=topup.amount_minor,
        currency=topup.currency,
        phone_e164=topup.phone_e164,
        account_reference=topup.account_reference,
        checkout_request_id=topup.checkout_request_id,
        provider_reference=topup.provider_reference,
        failure_reason=topup.failure_reason,
        created_at=topup.created_at,
        settled_at=topup.settled_at,
    )


def topup_service(request: Request) -> TopUpService:
    """The deployment's M-Pesa service; 503 while the operator has not configured Daraja."""
    service: TopUpService | None = getattr(request.app.state, "topups", None)
    if service is None:
        raise ApiError(
            503,
            "topups.not_configured",
            "M-Pesa top-ups are not set up on this deployment (SAUTIKIT_DARAJA_* settings)",
        )
    return service


_NOT_CONFIGURED: dict[int | str, dict[str, Any]] = {
    503: {
        "model": ErrorEnvelope,
        "description": "`topups.not_configured`: this deployment has no M-Pesa set up",
    }
}


@router.post(
    "",
    status_code=201,
    response_model=TopUpOut,
    summary="Top up by M-Pesa STK push",
    responses=_NOT_CONFIGURED,
)
async def create_topup(
    body: TopUpIn,
    session: DbSession,
    request: Request,
    principal: Principal = Depends(write),
) -> JSONResponse:
    service = topup_service(request)
    try:
        topup = await create_stk_topup(
            session, principal.workspace_id, body.amount_minor, body.phone_e164
        )
    except InvalidTopUp as exc:
        raise ApiError(
            400, "validation.invalid_field", f"{exc.field}: {exc}", field=exc.field
        ) from None
    # Runs after the response, so after the commit: the push never precedes its row.
    return JSONResponse(
        topup_out(topup).model_dump(mode="json"),
        status_code=201,
        background=BackgroundTask(service.send_push, topup.id),
    )


@router.get("", response_model=TopUpPage, summary="Top-ups, newest first")
async def list_topups(
    session: DbSession,
    status: Literal["pending", "confirmed", "failed"] | None = Query(None),
    page: PageParams = Depends(page_params),
    principal: Principal = Depends(read),
) -> dict[str, Any]:
    query = select(TopUp).where(TopUp.workspace_id == principal.workspace_id)
    if status is not None:
        query = query.where(TopUp.status == status)
    return await paginate(session, query, TopUp.id, page, topup_out)


@router.get(
    "/paybill",
    response_model=PaybillOut,
    summary="How to pay by M-Pesa Paybill",
    responses=_NOT_CONFIGURED,
)
async def paybill(
    session: DbSession, request: Request, principal: Principal = Depends(read)
) -> PaybillOut:
    settings = api_context(request).settings
    if not settings.daraja_shortcode:
        raise ApiError(503, "topups.not_configured", "no Paybill is set up on this deployment")
    workspace = await session.get(Workspace, principal.workspace_id)
    assert workspace is not None  # keys are deleted with their workspace
    return PaybillOut(
        shortcode=settings.daraja_shortcode,
        account_reference=await account_reference(session, workspace),
    )


@router.get("/{topup_id}", response_model=TopUpOut, summary="One top-up")
async def get_topup(
    topup_id: str, session: DbSession, principal: Principal = Depends(read)
) -> TopUpOut:
    topup = await session.get(TopUp, topup_id)
    if topup is None or topup.workspace_id != principal.workspace_id:
        raise ApiError(404, "topups.not_found", f"no top-up {topup_id}")
    return topup_out(topup)


# -- Safaricom's callbacks ------------------------------------------------------------


def _guard_callback(request: Request, token: str) -> Settings:
    settings = api_context(request).settings
    if not settings.daraja_enabled or not hmac.compare_digest(token, callback_token(settings)):
        raise ApiError(404, "not_found", "Not Found")
    address = request.client.host if request.client else None
    if not source_allowed(settings, address):
        raise ApiError(403, "topups.source_not_allowed", "callbacks are not taken from here")
    return settings


async def _json_body(request: Request) -> object:
    try:
        return await request.json()
    except ValueError:
        return None


def _daraja_answer(answer: CallbackAnswer) -> JSONResponse:
    if answer.accepted:
        return JSONResponse({"ResultCode": 0, "ResultDesc": "Accepted"})
    return JSONResponse({"ResultCode": 1, "ResultDesc": answer.reason}, status_code=400)


@router.post("/daraja/stk/{token}", include_in_schema=False)
async def stk_callback(token: str, request: Request, session: DbSession) -> JSONResponse:
    _guard_callback(request, token)
    return _daraja_answer(await apply_stk_callback(session, await _json_body(request)))


@router.post("/daraja/c2b/validation/{token}", include_in_schema=False)
async def c2b_validation(token: str, request: Request, session: DbSession) -> JSONResponse:
    settings = _guard_callback(request, token)
    code, description = await validate_c2b(session, await _json_body(request), settings=settings)
    return JSONResponse({"ResultCode": code, "ResultDesc": description})


@router.post("/daraja/c2b/confirmation/{token}", include_in_schema=False)
async def c2b_confirmation(token: str, request: Request, session: DbSession) -> JSONResponse:
    settings = _guard_callback(request, token)
    answer = await apply_c2b_confirmation(session, await _json_body(request), settings=settings)
    return _daraja_answer(answer)
