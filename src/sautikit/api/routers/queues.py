"""``/v1/queues``: the workspace's call queues and who waits in them (docs/verbs/queues.md).

Queues live in the database (:mod:`sautikit.calls.queues`), so any process answers for
all of them. Members are listed in the order agents take them (``position`` 1 first), not
newest first as other lists are; a queue holds at most 5000, so the list is never paged.
Removing a member marks it ``left`` (``removed``) in this request's transaction and tells
the process holding the call, whose ``enqueue`` then goes on to its ``action``.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from sautikit.api.auth import Principal, require_scopes
from sautikit.api.deps import DbSession
from sautikit.api.errors import ApiError
from sautikit.api.routing import SautikitRoute
from sautikit.calls.queues import (
    describe_member,
    describe_queue,
    find_queue,
    mark_removed,
    waiting_members,
)
from sautikit.db.models import Queue

__all__ = ["router"]

router = APIRouter(prefix="/v1/queues", route_class=SautikitRoute, tags=["queues"])


class QueueOut(BaseModel):
    """A queue and how it stands now."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "id": "0192f3c4-5d6e-7f80-9a1b-2c3d4e5f6a70",
                "name": "support",
                "size": 2,
                "max_size": 100,
                "average_wait_seconds": 45,
                "created_at": "2026-12-04T09:30:00.120Z",
            }
        }
    )

    id: str = Field(description="UUIDv7.")
    name: str = Field(description="The name `enqueue` and `dequeue` use.")
    size: int = Field(ge=0, description="Callers waiting now.")
    max_size: int = Field(ge=1, description="`enqueue` refuses callers beyond it.")
    average_wait_seconds: int = Field(
        ge=0, description="Mean wait of the callers an agent took in the last hour."
    )
    created_at: str | None = Field(description="RFC 3339, UTC.")


class QueuePage(BaseModel):
    data: list[QueueOut]
    next_cursor: str | None = Field(description="Always null: every queue is listed.")


class QueueMemberOut(BaseModel):
    """A caller waiting in a queue."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "call_id": "0192f3c4-5d6e-7f80-9a1b-2c3d4e5f6a7b",
                "position": 1,
                "wait_seconds": 32,
                "joined_at": "2026-12-04T09:30:04.010Z",
            }
        }
    )

    call_id: str
    position: int = Field(ge=1, description="1 is the next to be taken.")
    wait_seconds: int = Field(ge=0)
    joined_at: str | None = Field(description="RFC 3339, UTC.")


class QueueMemberPage(BaseModel):
    data: list[QueueMemberOut]
    next_cursor: str | None = Field(description="Always null: a queue holds at most 5000.")


read = require_scopes("calls.read")
write = require_scopes("calls.write")


async def _queue(session: DbSession, principal: Principal, name: str) -> Queue:
    queue = await find_queue(session, principal.workspace_id, name)
    if queue is None:
        raise ApiError(404, "queues.not_found", f"no queue {name!r}")
    return queue


@router.get("", summary="The workspace's queues, with how many wait in each")
async def list_queues(session: DbSession, principal: Principal = Depends(read)) -> QueuePage:
    queues = await session.scalars(
        select(Queue).where(Queue.workspace_id == principal.workspace_id).order_by(Queue.name)
    )
    found = [QueueOut(**await describe_queue(session, queue)) for queue in queues.all()]
    return QueuePage(data=found, next_cursor=None)


@router.get("/{name}", summary="One queue")
async def get_queue(
    name: str, session: DbSession, principal: Principal = Depends(read)
) -> QueueOut:
    return QueueOut(**await describe_queue(session, await _queue(session, principal, name)))


@router.get("/{name}/members", summary="The callers waiting, next to be taken first")
async def list_members(
    name: str, session: DbSession, principal: Principal = Depends(read)
) -> QueueMemberPage:
    queue = await _queue(session, principal, name)
    waiting = await waiting_members(session, queue.id)
    members = [
        QueueMemberOut(**describe_member(member, index))
        for index, member in enumerate(waiting, start=1)
    ]
    return QueueMemberPage(data=members, next_cursor=None)


@router.get("/{name}/members/{call_id}", summary="One waiting caller")
async def get_member(
    name: str, call_id: str, session: DbSession, principal: Principal = Depends(read)
) -> QueueMemberOut:
    queue = await _queue(session, principal, name)
    waiting = await waiting_members(session, queue.id)
    for index, member in enumerate(waiting, start=1):
        if member.call_id == call_id:
            return QueueMemberOut(**describe_member(member, index))
    raise ApiError(404, "queues.member_not_found", f"call {call_id} is not waiting in {name!r}")


@router.delete(
    "/{name}/members/{call_id}",
    status_code=204,
    summary="Take a caller out of the queue (its enqueue's action gets QueueResult removed)",
)
async def remove_member(
    name: str,
    call_id: str,
    request: Request,
    session: DbSession,
    principal: Principal = Depends(write),
) -> Response:
    queue = await _queue(session, principal, name)
    if await mark_removed(session, queue, call_id) is None:
        raise ApiError(404, "queues.member_not_found", f"call {call_id} is not waiting in {name!r}")
    command = {"type": "command", "call_id": call_id, "queue": "removed"}
    await request.app.state.bus.publish(session, command)
    return Response(status_code=204)
