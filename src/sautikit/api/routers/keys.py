"""``/v1/keys``: a workspace manages its own API keys (SPEC §1), with ``keys.manage``.

A key is shown whole once, in the answer that creates it; afterwards only its ``prefix``.
A key can only make keys with scopes it holds itself, so ``keys.manage`` never widens
what a workspace's holder of it may do. Revoking (``DELETE``) takes effect on the next
request, also for the key that asks.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from sautikit import accounts
from sautikit.api.auth import Principal, require_scopes
from sautikit.api.deps import DbSession
from sautikit.api.errors import ApiError
from sautikit.api.pagination import PageParams, page_params, paginate
from sautikit.api.routing import SautikitRoute
from sautikit.api.schemas import RequestModel
from sautikit.db.models import ApiKey

__all__ = ["ApiKeyCreated", "ApiKeyIn", "ApiKeyOut", "key_out", "router"]

router = APIRouter(prefix="/v1/keys", route_class=SautikitRoute, tags=["keys"])

manage = require_scopes("keys.manage")


_SCOPE_ITEMS: dict[str, Any] = {"type": "string", "enum": sorted(accounts.SCOPES)}


class ApiKeyIn(RequestModel):
    name: str = Field("", max_length=200, description="What the key is for.")
    scopes: list[str] = Field(
        min_length=1,
        max_length=len(accounts.SCOPES),
        description="Dotted scopes: " + ", ".join(f"`{s}`" for s in sorted(accounts.SCOPES)),
        examples=[["calls.read", "calls.write"]],
        json_schema_extra={"items": _SCOPE_ITEMS},
    )

    @field_validator("scopes")
    @classmethod
    def _known(cls, scopes: list[str]) -> list[str]:
        unknown = sorted(set(scopes) - accounts.SCOPES)
        if unknown:
            raise ValueError(f"unknown scope(s): {', '.join(unknown)}")
        return sorted(set(scopes))


class ApiKeyOut(BaseModel):
    id: str
    name: str
    prefix: str = Field(description="The key's first characters, to tell keys apart.")
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    secret: str = Field(description="The whole key (`sk_live_…`), shown only in this answer.")


class ApiKeyPage(BaseModel):
    data: list[ApiKeyOut]
    next_cursor: str | None


def key_out(key: ApiKey) -> ApiKeyOut:
    return ApiKeyOut(
        id=key.id,
        name=key.name,
        prefix=key.prefix,
        scopes=list(key.scopes),
        created_at=key.created_at,
        revoked_at=key.revoked_at,
    )


async def _owned(session: AsyncSession, principal: Principal, key_id: str) -> ApiKey:
    key = await session.get(ApiKey, key_id)
    if key is None or key.workspace_id != principal.workspace_id:
        raise ApiError(404, "api_keys.not_found", f"no API key {key_id}")
    return key


@router.post(
    "",
    status_code=201,
    response_model=ApiKeyCreated,
    summary="Make an API key (shown whole only in this answer)",
)
async def create_key(
    body: ApiKeyIn, session: DbSession, principal: Principal = Depends(manage)
) -> ApiKeyCreated:
    beyond = sorted(set(body.scopes) - principal.scopes)
    if beyond:
        raise ApiError(
            403,
            "api_key.scope_denied",
            f"a key can only grant scopes it holds; this one lacks {', '.join(beyond)}",
            field="scopes",
        )
    created = await accounts.create_api_key(
        session, principal.workspace_id, body.scopes, name=body.name
    )
    return ApiKeyCreated(**key_out(created.record).model_dump(), secret=created.secret)


@router.get("", response_model=ApiKeyPage, summary="The workspace's API keys, newest first")
async def list_keys(
    session: DbSession,
    page: PageParams = Depends(page_params),
    principal: Principal = Depends(manage),
) -> dict[str, Any]:
    query = select(ApiKey).where(ApiKey.workspace_id == principal.workspace_id)
    return await paginate(session, query, ApiKey.id, page, key_out)


@router.get("/{key_id}", response_model=ApiKeyOut, summary="One API key (never its secret)")
async def get_key(
    key_id: str, session: DbSession, principal: Principal = Depends(manage)
) -> ApiKeyOut:
    return key_out(await _owned(session, principal, key_id))


@router.delete("/{key_id}", status_code=204, summary="Revoke an API key")
async def revoke_key(
    key_id: str, session: DbSession, principal: Principal = Depends(manage)
) -> Response:
    key = await _owned(session, principal, key_id)
    await accounts.revoke_api_key(session, key.id)
    return Response(status_code=204)
