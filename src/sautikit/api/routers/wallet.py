"""``/v1/wallet``: the workspace's prepaid KES balance and its ledger (SPEC §6).

Reading a wallet never charges and never answers 402: a workspace that has not been
topped up simply has a balance of 0.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from sautikit.api.auth import Principal, require_scopes
from sautikit.api.deps import DbSession
from sautikit.api.errors import ApiError
from sautikit.api.pagination import PageParams, page_params, paginate
from sautikit.api.routing import SautikitRoute
from sautikit.billing import ledger
from sautikit.db.models import Wallet, WalletEntry, Workspace

__all__ = ["WalletBalance", "WalletEntryOut", "entry_out", "router", "wallet_balance"]

router = APIRouter(prefix="/v1/wallet", route_class=SautikitRoute, tags=["wallet"])

read = require_scopes("wallet.read")


class WalletBalance(BaseModel):
    balance_minor: int = Field(description="The sum of every ledger entry.")
    available_minor: int = Field(description="The balance less what live calls hold.")
    currency: str
    low_balance_threshold_minor: int = Field(
        description="wallet.low_balance fires when the balance falls below this."
    )


class WalletEntryOut(BaseModel):
    id: str
    entry_type: str = Field(description="top_up, call, transcription or number_rental.")
    amount_minor: int = Field(description="Positive for a credit, negative for a debit.")
    balance_after_minor: int
    currency: str
    call_id: str | None
    number_id: str | None
    reference: str | None
    idempotency_key: str
    created_at: datetime


class WalletEntryPage(BaseModel):
    data: list[WalletEntryOut]
    next_cursor: str | None


def entry_out(entry: WalletEntry) -> WalletEntryOut:
    return WalletEntryOut(
        id=entry.id,
        entry_type=entry.entry_type,
        amount_minor=entry.amount_minor,
        balance_after_minor=entry.balance_after_minor,
        currency=entry.currency,
        call_id=entry.call_id,
        number_id=entry.number_id,
        reference=entry.reference,
        idempotency_key=entry.idempotency_key,
        created_at=entry.created_at,
    )


async def wallet_balance(session: AsyncSession, workspace: Workspace) -> WalletBalance:
    wallet = await session.get(Wallet, workspace.id)
    return WalletBalance(
        balance_minor=await ledger.balance(session, workspace.id),
        available_minor=await ledger.available(session, workspace.id),
        currency=wallet.currency if wallet is not None else "KES",
        low_balance_threshold_minor=workspace.low_balance_threshold_minor,
    )


@router.get("/balance", response_model=WalletBalance, summary="The wallet's balance")
async def get_balance(session: DbSession, principal: Principal = Depends(read)) -> WalletBalance:
    workspace = await session.get(Workspace, principal.workspace_id)
    assert workspace is not None  # keys are deleted with their workspace
    return await wallet_balance(session, workspace)


@router.get(
    "/transactions", response_model=WalletEntryPage, summary="The ledger, newest entry first"
)
async def list_transactions(
    session: DbSession,
    entry_type: str | None = Query(
        None,
        description="Only entries of this type.",
        json_schema_extra={"enum": sorted(ledger.ENTRY_TYPES)},
    ),
    page: PageParams = Depends(page_params),
    principal: Principal = Depends(read),
) -> dict[str, Any]:
    query = select(WalletEntry).where(WalletEntry.workspace_id == principal.workspace_id)
    if entry_type is not None:
        if entry_type not in ledger.ENTRY_TYPES:
            raise ApiError(
                400,
                "validation.invalid_field",
                f"entry_type: one of {', '.join(sorted(ledger.ENTRY_TYPES))}",
                field="entry_type",
            )
        query = query.where(WalletEntry.entry_type == entry_type)
    return await paginate(session, query, WalletEntry.id, page, entry_out)
