"""``/v1/conferences``: the live rooms this process holds (SPEC §2).

Rooms live with their media in the PBX process; with several processes, ask the one the
room's calls reached (each call's record names its ``owner``).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from sautikit.api.auth import Principal, require_scopes
from sautikit.api.errors import ApiError
from sautikit.api.routing import SautikitRoute
from sautikit.api.schemas import RequestModel
from sautikit.voice.rooms import Room, Rooms

__all__ = ["router"]

router = APIRouter(prefix="/v1/conferences", route_class=SautikitRoute, tags=["conferences"])

read = require_scopes("calls.read")
write = require_scopes("calls.write")


class ParticipantChange(RequestModel):
    muted: bool


class ParticipantOut(BaseModel):
    call_id: str = Field(description="The participant's call.")
    muted: bool


class ConferenceOut(BaseModel):
    """A live room: ``waiting`` until its start condition is met, then ``in-progress``."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "name": "standup",
                "status": "in-progress",
                "created_at": "2026-12-04T09:30:00.120Z",
                "participants": [
                    {"call_id": "0192f3c4-5d6e-7f80-9a1b-2c3d4e5f6a7b", "muted": False}
                ],
            }
        }
    )

    name: str
    status: Literal["waiting", "in-progress"]
    created_at: str = Field(description="RFC 3339, UTC.")
    participants: list[ParticipantOut]


class ConferencePage(BaseModel):
    data: list[ConferenceOut]
    next_cursor: str | None = Field(description="Always null: every live room is listed.")


def _rooms(request: Request) -> Rooms | None:
    """The process's rooms, or None where no PBX runs (an API-only process)."""
    manager = getattr(request.app.state, "calls", None)
    return None if manager is None else manager.rooms


def _room(request: Request, principal: Principal, name: str) -> Room:
    rooms = _rooms(request)
    room = None if rooms is None else rooms.find(principal.workspace_id, name)
    if room is None:
        raise ApiError(404, "conferences.not_found", f"no live conference {name!r}")
    return room


@router.get("", response_model=ConferencePage, summary="Live conference rooms")
async def list_conferences(
    request: Request, principal: Principal = Depends(read)
) -> dict[str, Any]:
    rooms = _rooms(request)
    found = [] if rooms is None else rooms.of_workspace(principal.workspace_id)
    return {"data": [room.describe() for room in found], "next_cursor": None}


@router.get("/{name}", response_model=ConferenceOut, summary="One live room and its participants")
async def get_conference(
    name: str, request: Request, principal: Principal = Depends(read)
) -> dict[str, Any]:
    return _room(request, principal, name).describe()


@router.post(
    "/{name}/participants/{call_id}",
    response_model=ConferenceOut,
    summary="Mute or unmute a participant",
)
async def change_participant(
    name: str,
    call_id: str,
    body: ParticipantChange,
    request: Request,
    principal: Principal = Depends(write),
) -> dict[str, Any]:
    room = _room(request, principal, name)
    if not room.mute(call_id, body.muted):
        raise ApiError(404, "conferences.participant_not_found", f"{call_id} is not in {name!r}")
    return room.describe()


@router.delete("/{name}/participants/{call_id}", status_code=204, summary="Remove a participant")
async def remove_participant(
    name: str, call_id: str, request: Request, principal: Principal = Depends(write)
) -> Response:
    if not _room(request, principal, name).remove(call_id):
        raise ApiError(404, "conferences.participant_not_found", f"{call_id} is not in {name!r}")
    return Response(status_code=204)
