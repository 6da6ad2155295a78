"""``/v1/queues``: the workspace's call queues and who waits in them (docs/verbs/queues.md).

Queues live in the database (:mod:`sautikit.calls.queues`), so any process answers for
all of them. Members are listed in the order agents take them (``position`` 1 first), not
newest first as other lists are; a queue holds at most 5000, so the list is never paged.
Removing a member marks it ``left`` (``removed``) in this request's transaction and tells
the process holding the call, whose ``enqueue`` then goes on to its ``action``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
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

read = require_scopes("calls.read")
write = require_scopes("calls.write")


async def _queue(session: DbSession, principal: Principal, name: str) -> Queue:
    queue = await find_queue(session, principal.workspace_id, name)
    if queue is None:
        raise ApiError(404, "queues.not_found", f"no queue {name!r}")
    return queue


@router.get("", summary="The workspace's queues, with how many wait in each")
async def list_queues(session: DbSession, principal: Principal = Depends(read)) -> dict[str, Any]:
    queues = await session.scalars(
        select(Queue).where(Queue.workspace_id == principal.workspace_id).order_by(Queue.name)
    )
    found = [await describe_queue(session, queue) for queue in queues.all()]
    return {"data": found, "next_cursor": None}


@router.get("/{name}", summary="One queue")
async def get_queue(
    name: str, session: DbSession, principal: Principal = Depends(read)
) -> dict[str, Any]:
    return await describe_queue(session, await _queue(session, principal, name))


@router.get("/{name}/members", summary="The callers waiting, next to be taken first")
async def list_members(
    name: str, session: DbSession, principal: Principal = Depends(read)
) -> dict[str, Any]:
    queue = await _queue(session, principal, name)
    waiting = await waiting_members(session, queue.id)
    members = [describe_member(member, index) for index, member in enumerate(waiting, start=1)]
    return {"data": members, "next_cursor": None}


@router.get("/{name}/members/{call_id}", summary="One waiting caller")
async def get_member(
    name: str, call_id: str, session: DbSession, principal: Principal = Depends(read)
) -> dict[str, Any]:
    queue = await _queue(session, principal, name)
    waiting = await waiting_members(session, queue.id)
    for index, member in enumerate(waiting, start=1):
        if member.call_id == call_id:
            return describe_member(member, index)
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
