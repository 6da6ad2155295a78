"""``/v1/operator``: what the operator does over HTTP rather than the command line.

Guarded by the operator token (``api.operator_auth``), not by API keys, so these routes
run their own transaction instead of ``SautikitRoute``'s, whose Idempotency-Key record
belongs to an API key's workspace. A credit is made idempotent by the ledger itself: the
Idempotency-Key becomes the entry's key, so a retry finds the entry and adds nothing.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse
from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncSession

from sautikit.api.deps import api_context
from sautikit.api.errors import ApiError
from sautikit.api.operator_auth import require_operator
from sautikit.api.routers.wallet import WalletBalance, WalletEntryOut, entry_out, wallet_balance
from sautikit.api.routing import IDEMPOTENCY_HEADER
from sautikit.api.schemas import RequestModel
from sautikit.billing import ledger
from sautikit.db.models import Workspace
from sautikit.ids import new_id

router = APIRouter(
    prefix="/v1/operator", tags=["operator"], dependencies=[Depends(require_operator)]
)

_KEY_PREFIX = "operator:"
_MAX_KEY_LENGTH = 255 - len(_KEY_PREFIX)


class CreditIn(RequestModel):
    amount_minor: int = Field(gt=0, le=10**12, description="Minor units; 100 = KES 1.00.")
    reference: str = Field(
        min_length=1, max_length=255, description="Where the money came from, e.g. a receipt."
    )


async def _workspace(session: AsyncSession, workspace_id: str) -> Workspace:
    workspace = await session.get(Workspace, workspace_id)
    if workspace is None:
        raise ApiError(404, "workspaces.not_found", f"no workspace {workspace_id}")
    return workspace


def _ledger_key(header: str | None) -> str:
    if header is None:
        return _KEY_PREFIX + new_id()
    if not header or len(header) > _MAX_KEY_LENGTH or not header.isprintable():
        raise ApiError(
            400,
            "validation.invalid_field",
            f"{IDEMPOTENCY_HEADER} must be 1–{_MAX_KEY_LENGTH} printable characters",
            field=IDEMPOTENCY_HEADER,
        )
    return _KEY_PREFIX + header


@router.post(
    "/workspaces/{workspace_id}/credit",
    status_code=201,
    response_model=WalletEntryOut,
    summary="Credit a workspace's wallet (a payment received)",
)
async def credit_workspace(
    workspace_id: str,
    body: CreditIn,
    request: Request,
    idempotency_key: str | None = Header(None, alias=IDEMPOTENCY_HEADER),
) -> JSONResponse:
    key = _ledger_key(idempotency_key)
    async with api_context(request).database.transaction() as session:
        await _workspace(session, workspace_id)
        earlier = await ledger.find_entry(session, workspace_id, key)
        # A key already used answers its entry; a concurrent twin is serialised by the ledger.
        entry = await ledger.top_up(
            session,
            workspace_id,
            body.amount_minor,
            idempotency_key=key,
            reference=body.reference,
        )
        if (entry.amount_minor, entry.reference) != (body.amount_minor, body.reference):
            raise ApiError(
                409,
                "idempotency.conflict",
                f"this {IDEMPOTENCY_HEADER} was used with a different credit; use a new key",
            )
        answer = entry_out(entry)
    return JSONResponse(
        answer.model_dump(mode="json"),
        status_code=201,
        headers={"Idempotent-Replayed": "true"} if earlier is not None else None,
    )


@router.get(
    "/workspaces/{workspace_id}/wallet",
    response_model=WalletBalance,
    summary="A workspace's wallet balance",
)
async def workspace_wallet(workspace_id: str, request: Request) -> WalletBalance:
    async with api_context(request).database.transaction() as session:
        return await wallet_balance(session, await _workspace(session, workspace_id))
