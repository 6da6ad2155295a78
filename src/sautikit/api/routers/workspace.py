"""``GET /v1/workspace``: which workspace the key belongs to; any valid key may ask."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from sautikit.api.auth import Principal, authenticate
from sautikit.api.deps import DbSession
from sautikit.api.routing import SautikitRoute
from sautikit.db.models import Workspace
from sautikit.events.delivery import workspace_signing_secret

router = APIRouter(prefix="/v1", route_class=SautikitRoute, tags=["workspace"])


class WorkspaceOut(BaseModel):
    id: str
    name: str
    created_at: datetime
    scopes: list[str]
    signing_secret: str | None = Field(
        None,
        description=(
            "The secret that signs this workspace's voice callbacks and events_url "
            "deliveries (verify with sautikit.webhooks.verify); shown to keys with "
            "webhooks.manage."
        ),
    )


@router.get("/workspace", response_model=WorkspaceOut, summary="The calling key's workspace")
async def get_workspace(
    session: DbSession, principal: Principal = Depends(authenticate)
) -> WorkspaceOut:
    workspace = await session.get(Workspace, principal.workspace_id)
    assert workspace is not None  # keys are deleted with their workspace
    secret = None
    if "webhooks.manage" in principal.scopes:
        secret = await workspace_signing_secret(session, workspace.id)
    return WorkspaceOut(
        id=workspace.id,
        name=workspace.name,
        created_at=workspace.created_at,
        scopes=sorted(principal.scopes),
        signing_secret=secret,
    )
