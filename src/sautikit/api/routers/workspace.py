"""``GET /v1/workspace``: which workspace the key belongs to; any valid key may ask."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from sautikit.api.auth import Principal, authenticate
from sautikit.api.deps import DbSession
from sautikit.api.routing import SautikitRoute
from sautikit.db.models import Workspace

router = APIRouter(prefix="/v1", route_class=SautikitRoute, tags=["workspace"])


class WorkspaceOut(BaseModel):
    id: str
    name: str
    created_at: datetime
    scopes: list[str]


@router.get("/workspace", response_model=WorkspaceOut, summary="The calling key's workspace")
async def get_workspace(
    session: DbSession, principal: Principal = Depends(authenticate)
) -> WorkspaceOut:
    workspace = await session.get(Workspace, principal.workspace_id)
    assert workspace is not None  # keys are deleted with their workspace
    return WorkspaceOut(
        id=workspace.id,
        name=workspace.name,
        created_at=workspace.created_at,
        scopes=sorted(principal.scopes),
    )
