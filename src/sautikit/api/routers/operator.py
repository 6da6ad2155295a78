"""``/v1/operator``: what the operator does over HTTP rather than the command line.

Workspaces (create, list, read), their API keys (make one with any scopes, list, revoke)
and wallet credits, so setting up a tenant needs no shell on the server.

Guarded by the operator token (``api.operator_auth``), not by API keys, so these routes
run their own transaction instead of ``SautikitRoute``'s, whose Idempotency-Key record
belongs to an API key's workspace. A credit is made idempotent by the ledger itself: the
Idempotency-Key becomes the entry's key, so a retry finds the entry and adds nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from sautikit import accounts
from sautikit.api.deps import api_context
from sautikit.api.errors import ApiError
from sautikit.api.operator_auth import require_operator
from sautikit.api.pagination import PageParams, page_params, paginate
from sautikit.api.routers.keys import ApiKeyCreated, ApiKeyIn, ApiKeyOut, key_out
from sautikit.api.routers.wallet import WalletBalance, WalletEntryOut, entry_out, wallet_balance
from sautikit.api.routing import IDEMPOTENCY_HEADER
from sautikit.api.schemas import RequestModel
from sautikit.billing import ledger
from sautikit.db.models import ApiKey, Trunk, Workspace
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


class WorkspaceIn(RequestModel):
    name: str = Field(min_length=1, max_length=200, examples=["Acme Deliveries"])


class OperatorWorkspaceOut(BaseModel):
    id: str
    name: str
    created_at: datetime


class OperatorWorkspacePage(BaseModel):
    data: list[OperatorWorkspaceOut]
    next_cursor: str | None


class OperatorKeyPage(BaseModel):
    data: list[ApiKeyOut]
    next_cursor: str | None


class TrunkOut(BaseModel):
    name: str
    host: str
    port: int = Field(description="0: the host's SRV records name the ports (RFC 3263).")
    transport: str
    prefixes: list[str]
    inbound_addresses: list[str]
    health: str = Field(
        description="What the OPTIONS pings last found: `up`, `down` (skipped for calls "
        "while another trunk carries the number) or `unknown` (not pinged yet, or pings off)."
    )
    health_changed_at: datetime | None


class TrunkList(BaseModel):
    data: list[TrunkOut]


def _workspace_out(workspace: Workspace) -> OperatorWorkspaceOut:
    return OperatorWorkspaceOut(
        id=workspace.id, name=workspace.name, created_at=workspace.created_at
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


@router.post(
    "/workspaces",
    status_code=201,
    response_model=OperatorWorkspaceOut,
    summary="Create a workspace (a tenant)",
)
async def create_workspace(body: WorkspaceIn, request: Request) -> OperatorWorkspaceOut:
    async with api_context(request).database.transaction() as session:
        return _workspace_out(await accounts.create_workspace(session, body.name))


@router.get(
    "/workspaces", response_model=OperatorWorkspacePage, summary="Every workspace, newest first"
)
async def list_workspaces(
    request: Request, page: PageParams = Depends(page_params)
) -> dict[str, Any]:
    async with api_context(request).database.transaction() as session:
        return await paginate(session, select(Workspace), Workspace.id, page, _workspace_out)


@router.get(
    "/workspaces/{workspace_id}", response_model=OperatorWorkspaceOut, summary="One workspace"
)
async def get_workspace(workspace_id: str, request: Request) -> OperatorWorkspaceOut:
    async with api_context(request).database.transaction() as session:
        return _workspace_out(await _workspace(session, workspace_id))


@router.post(
    "/workspaces/{workspace_id}/keys",
    status_code=201,
    response_model=ApiKeyCreated,
    summary="Make an API key for a workspace (shown whole only in this answer)",
)
async def create_workspace_key(
    workspace_id: str, body: ApiKeyIn, request: Request
) -> ApiKeyCreated:
    async with api_context(request).database.transaction() as session:
        await _workspace(session, workspace_id)
        created = await accounts.create_api_key(session, workspace_id, body.scopes, body.name)
        return ApiKeyCreated(**key_out(created.record).model_dump(), secret=created.secret)


@router.get(
    "/workspaces/{workspace_id}/keys",
    response_model=OperatorKeyPage,
    summary="A workspace's API keys, newest first",
)
async def list_workspace_keys(
    workspace_id: str, request: Request, page: PageParams = Depends(page_params)
) -> dict[str, Any]:
    async with api_context(request).database.transaction() as session:
        await _workspace(session, workspace_id)
        query = select(ApiKey).where(ApiKey.workspace_id == workspace_id)
        return await paginate(session, query, ApiKey.id, page, key_out)


@router.delete("/keys/{key_id}", status_code=204, summary="Revoke any API key")
async def revoke_key(key_id: str, request: Request) -> Response:
    async with api_context(request).database.transaction() as session:
        try:
            await accounts.revoke_api_key(session, key_id)
        except LookupError:
            raise ApiError(404, "api_keys.not_found", f"no API key {key_id}") from None
    return Response(status_code=204)


@router.get("/trunks", response_model=TrunkList, summary="The carrier trunks and their health")
async def list_trunks(request: Request) -> TrunkList:
    async with api_context(request).database.transaction() as session:
        trunks = (await session.scalars(select(Trunk).order_by(Trunk.name))).all()
        return TrunkList(
            data=[
                TrunkOut(
                    name=trunk.name,
                    host=trunk.host,
                    port=trunk.port,
                    transport=trunk.transport,
                    prefixes=list(trunk.prefixes),
                    inbound_addresses=list(trunk.inbound_addresses),
                    health=trunk.health,
                    health_changed_at=trunk.health_changed_at,
                )
                for trunk in trunks
            ]
        )
