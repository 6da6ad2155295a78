"""``/v1/queues``: queues and their waiting members, read from the database, confined to the
key's workspace (the live side is tests/voice/test_queue_calls.py)."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import select
from tests.support import KeyFactory

from sautikit.calls.queues import Queues
from sautikit.db import Database
from sautikit.db.models import Call, Event, Queue, QueueMember
from sautikit.db.types import utcnow


async def _queue_with_callers(
    database: Database, workspace_id: str, statuses: list[str]
) -> list[str]:
    """A queue ``support`` whose members' calls have ``statuses``; answers their call ids,
    oldest member first."""
    call_ids = []
    async with database.transaction() as session:
        queue = Queue(workspace_id=workspace_id, name="support", max_size=10)
        session.add(queue)
        await session.flush()
        for index, status in enumerate(statuses):
            call = Call(
                workspace_id=workspace_id,
                direction="inbound",
                from_number=f"+25471100000{index}",
                to_number="+254700000001",
                status=status,
            )
            session.add(call)
            await session.flush()
            session.add(
                QueueMember(
                    queue_id=queue.id,
                    workspace_id=workspace_id,
                    call_id=call.id,
                    node="elsewhere",
                    status="waiting",
                    joined_at=utcnow() - timedelta(seconds=30 - index),
                )
            )
            await session.flush()
            call_ids.append(call.id)
    return call_ids


async def test_members_are_listed_in_the_order_agents_take_them(
    client: httpx.AsyncClient, make_key: KeyFactory, database: Database
) -> None:
    workspace_id, headers = await make_key()
    first, ended, second = await _queue_with_callers(
        database, workspace_id, ["answered", "completed", "answered"]
    )
    listed = (await client.get("/v1/queues", headers=headers)).json()["data"]
    assert [(q["name"], q["size"], q["max_size"]) for q in listed] == [("support", 2, 10)]
    members = (await client.get("/v1/queues/support/members", headers=headers)).json()
    assert [(m["call_id"], m["position"]) for m in members["data"]] == [(first, 1), (second, 2)]
    assert members["data"][0]["wait_seconds"] >= 29
    assert ended not in str(members)
    one = await client.get(f"/v1/queues/support/members/{second}", headers=headers)
    assert one.json()["position"] == 2


async def test_removing_a_member_leaves_it_with_removed(
    client: httpx.AsyncClient, make_key: KeyFactory, database: Database
) -> None:
    workspace_id, headers = await make_key()
    first, second = await _queue_with_callers(database, workspace_id, ["answered", "answered"])
    removed = await client.delete(f"/v1/queues/support/members/{first}", headers=headers)
    assert removed.status_code == 204, removed.text
    members = (await client.get("/v1/queues/support/members", headers=headers)).json()["data"]
    assert [(m["call_id"], m["position"]) for m in members] == [(second, 1)]
    async with database.sessions() as session:
        member = await session.scalar(select(QueueMember).where(QueueMember.call_id == first))
        event = await session.scalar(select(Event).where(Event.call_id == first))
    assert member is not None and (member.status, member.result) == ("left", "removed")
    assert event is not None and event.kind == "queue.left"
    assert event.data["result"] == "removed" and event.data["queue"] == "support"


async def test_another_workspaces_queue_answers_404(
    client: httpx.AsyncClient, make_key: KeyFactory, database: Database
) -> None:
    workspace_id, alice = await make_key()
    (waiting,) = await _queue_with_callers(database, workspace_id, ["answered"])
    _, bob = await make_key()
    assert (await client.get("/v1/queues", headers=bob)).json()["data"] == []
    for method, path in [
        ("GET", "/v1/queues/support"),
        ("GET", "/v1/queues/support/members"),
        ("DELETE", f"/v1/queues/support/members/{waiting}"),
    ]:
        answer = await client.request(method, path, headers=bob)
        assert answer.status_code == 404, path
        assert answer.json()["error"]["code"] == "queues.not_found"
    still = (await client.get("/v1/queues/support/members", headers=alice)).json()["data"]
    assert [member["call_id"] for member in still] == [waiting]


async def test_reading_needs_calls_read_and_removing_calls_write(
    client: httpx.AsyncClient, make_key: KeyFactory, database: Database
) -> None:
    workspace_id, reader = await make_key(["calls.read"])
    (waiting,) = await _queue_with_callers(database, workspace_id, ["answered"])
    _, nobody = await make_key(["numbers.read"], workspace_id=workspace_id)
    refused = await client.get("/v1/queues", headers=nobody)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "api_key.scope_denied"
    denied = await client.delete(f"/v1/queues/support/members/{waiting}", headers=reader)
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "api_key.scope_denied"


async def test_a_dead_node_s_members_leave_with_error_on_recovery(
    client: httpx.AsyncClient, make_key: KeyFactory, database: Database
) -> None:
    workspace_id, headers = await make_key()
    stranded, _ = await _queue_with_callers(database, workspace_id, ["answered", "answered"])
    async with database.transaction() as session:
        member = await session.scalar(select(QueueMember).where(QueueMember.call_id == stranded))
        assert member is not None
        member.node = "dead-node"
    assert await Queues(database, node="survivor").recover_node("dead-node") == 1
    members = (await client.get("/v1/queues/support/members", headers=headers)).json()["data"]
    assert stranded not in [m["call_id"] for m in members] and len(members) == 1
    async with database.sessions() as session:
        event = await session.scalar(select(Event).where(Event.call_id == stranded))
    assert event is not None and (event.kind, event.data["result"]) == ("queue.left", "error")
