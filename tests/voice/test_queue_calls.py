"""Queues with real calls: SIPp callers wait in a queue while SIPp agents take them, in the
order they joined, with the app served over HTTP on loopback (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from tests.sipp import Sipp, requires_sipp
from tests.voice.stack import NUMBER, Stack, open_stack
from tests.voice.voice_rig import AppServer, Hit, Reply, document

from sautikit.db import Database
from sautikit.db.models import Event
from sautikit.media.g711 import ulaw_encode
from sautikit.media.player import tone

pytestmark = requires_sipp

SCENARIOS = Path(__file__).parent / "scenarios"
AGENT = "+254799000001"


@pytest.fixture
async def stack(database: Database, app: AppServer, tmp_path: Path) -> AsyncIterator[Stack]:
    async with open_stack(database, app, tmp_path) as opened:
        yield opened


def _party(
    stack: Stack, tmp_path: Path, kind: str, number: str, talk_ms: int = 0, *, audio: bool = True
) -> Sipp:
    """A SIPp caller (waits until hung up) or agent (talks ``talk_ms``, hangs up), each
    sending a tone as RTP the whole time (unless not ``audio``: SIPp binds its media ports
    only when it streams, so parties started together could pick the same ones)."""
    tone_file = tmp_path / "tone.ul"
    if not tone_file.exists():
        tone_file.write_bytes(ulaw_encode(tone(440.0, 1.0)))
    text = (SCENARIOS / f"queue_{kind}.xml").read_text()
    scenario = tmp_path / f"{kind}-{number}.xml"
    text = text.replace("FROM", number).replace("TALK", str(talk_ms))
    if not audio:
        text = "".join(line for line in text.splitlines(True) if "rtp_stream" not in line)
    scenario.write_text(text.replace("AUDIO", str(tone_file)))
    return Sipp(scenario=scenario, remote=stack.sip, service=NUMBER, timeout=60)


def _route_voice(stack: Stack, enqueue: dict[str, Any]) -> None:
    """Agents (From AGENT…) take from the queue; everyone else joins it."""
    agent_doc = document(
        {"dequeue": {"name": "support", "timeout": 10, "action": stack.app.url("/agent-done")}}
    )
    caller_doc = document({"enqueue": {"name": "support", **enqueue}})

    def voice(hit: Hit) -> Reply:
        return agent_doc if hit.fields["From"].startswith("+2547990") else caller_doc

    stack.app.route("/voice", voice)


async def _members(stack: Stack, name: str = "support") -> list[dict[str, Any]]:
    listed = await stack.api.get(f"/v1/queues/{name}/members", headers=stack.headers)
    assert listed.status_code == 200, listed.text
    return list(listed.json()["data"])


async def _wait_members(stack: Stack, count: int) -> list[dict[str, Any]]:
    for _ in range(200):
        listed = await stack.api.get("/v1/queues/support/members", headers=stack.headers)
        members = listed.json()["data"] if listed.status_code == 200 else []
        if len(members) == count:
            return members
        await asyncio.sleep(0.1)
    raise AssertionError(f"expected {count} waiting, got {await _members(stack)}")


async def _call_of(stack: Stack, number: str) -> str:
    calls = [call for call in await stack.calls() if call.from_number == number]
    assert len(calls) == 1, calls
    return calls[0].id


async def _queue_events(stack: Stack, call_id: str) -> list[tuple[str, dict[str, Any]]]:
    async with stack.database.sessions() as session:
        found = await session.execute(
            select(Event.kind, Event.data)
            .where(Event.call_id == call_id, Event.kind.like("queue.%"))
            .order_by(Event.sequence)
        )
        return [(kind, data) for kind, data in found.all()]


async def test_agents_take_waiting_callers_first_come_first_served(
    stack: Stack, tmp_path: Path
) -> None:
    _route_voice(stack, {"action": stack.app.url("/caller-done")})
    stack.app.route("/caller-done", document({"hangup": {}}))
    stack.app.route("/agent-done", document({"hangup": {}}))
    numbers = [f"+25471100000{index}" for index in range(1, 4)]
    callers = []
    for count, number in enumerate(numbers, start=1):  # one by one: the join order is known
        callers.append(_party(stack, tmp_path, "caller", number))
        await callers[-1].start()
        await _wait_members(stack, count)
    try:
        members = await _members(stack)
        waiting = [await _call_of(stack, number) for number in numbers]
        assert [member["call_id"] for member in members] == waiting
        assert [member["position"] for member in members] == [1, 2, 3]
        assert all(member["wait_seconds"] >= 0 for member in members)
        (queue,) = (await stack.api.get("/v1/queues", headers=stack.headers)).json()["data"]
        assert (queue["name"], queue["size"], queue["max_size"]) == ("support", 3, 100)

        # Two agents in turn: each takes the caller who has waited longest.
        for index, agent_number in enumerate([AGENT, "+254799000002"]):
            agent = _party(stack, tmp_path, "agent", agent_number, talk_ms=1500)
            result = await agent.run()
            assert result.returncode == 0, result.explain()
            (done,) = (await stack.app.wait_for_hits("/agent-done", index + 1))[index:]
            assert done.fields["DequeueResult"] == "bridged"
            assert done.fields["DequeuedCallId"] == waiting[index]
            assert int(done.fields["QueueCallDuration"]) >= 1
            assert await callers[index].wait() is not None
        assert [member["call_id"] for member in await _members(stack)] == waiting[2:]
        assert (await _members(stack))[0]["position"] == 1

        # The third is taken out through the API: its enqueue's action hears why.
        removed = await stack.api.delete(
            f"/v1/queues/support/members/{waiting[2]}", headers=stack.headers
        )
        assert removed.status_code == 204, removed.text
        assert await _members(stack) == []
        again = await stack.api.delete(
            f"/v1/queues/support/members/{waiting[2]}", headers=stack.headers
        )
        assert again.status_code == 404
        assert again.json()["error"]["code"] == "queues.member_not_found"
        results = await stack.app.wait_for_hits("/caller-done", 3)
    finally:
        for caller in callers:
            await caller.stop()
    by_call = {hit.fields["CallId"]: hit.fields for hit in results}
    agent_call = await _call_of(stack, AGENT)
    assert by_call[waiting[0]]["QueueResult"] == "bridged"
    assert by_call[waiting[0]]["DequeuingCallId"] == agent_call
    assert by_call[waiting[1]]["QueueResult"] == "bridged"
    assert by_call[waiting[2]]["QueueResult"] == "removed"
    assert all(int(fields["QueueTime"]) >= 0 for fields in by_call.values())
    await stack.wait_for_calls_to_end(5)
    joined, left = await _queue_events(stack, waiting[0])
    assert joined[0] == "queue.joined" and joined[1]["position"] == 1
    assert left[0] == "queue.left" and left[1]["result"] == "bridged"
    assert left[1]["agent_call_id"] == agent_call
    kinds = [kind for kind, _ in await _queue_events(stack, waiting[2])]
    assert kinds == ["queue.joined", "queue.left"]


async def test_two_agents_at_once_never_take_the_same_caller(stack: Stack, tmp_path: Path) -> None:
    _route_voice(stack, {"action": stack.app.url("/caller-done")})
    stack.app.route("/caller-done", document({"hangup": {}}))
    stack.app.route("/agent-done", document({"hangup": {}}))
    callers = [
        _party(stack, tmp_path, "caller", f"+25471100000{index}", audio=False) for index in (1, 2)
    ]
    for count, caller in enumerate(callers, start=1):
        await caller.start()
        await _wait_members(stack, count)
    agents = [
        _party(stack, tmp_path, "agent", number, talk_ms=1000, audio=False)
        for number in (AGENT, "+254799000002")
    ]
    try:
        for agent in agents:  # started one after the other: each picks its own free ports
            await agent.start()
        results = await asyncio.gather(*(agent.wait() for agent in agents))
        assert all(result.returncode == 0 for result in results), [r.explain() for r in results]
        done = await stack.app.wait_for_hits("/agent-done", 2)
    finally:
        for party in [*agents, *callers]:
            await party.stop()
    taken = sorted(hit.fields["DequeuedCallId"] for hit in done)
    waiting = sorted(
        [await _call_of(stack, "+254711000001"), await _call_of(stack, "+254711000002")]
    )
    assert taken == waiting


async def test_a_live_redirect_takes_a_waiting_caller_out_of_the_queue(
    stack: Stack, tmp_path: Path
) -> None:
    _route_voice(stack, {"action": stack.app.url("/caller-done")})
    stack.app.route("/caller-done", document({"say": {"text": "not heard"}}))
    stack.app.route("/elsewhere", document({"hangup": {}}))
    async with _party(stack, tmp_path, "caller", "+254711000001") as caller:
        await _wait_members(stack, 1)
        call_id = await _call_of(stack, "+254711000001")
        redirected = await stack.api.post(
            f"/v1/calls/{call_id}",
            json={"action_url": stack.app.url("/elsewhere")},
            headers=stack.headers,
        )
        assert redirected.status_code == 200, redirected.text
        await stack.app.wait_for_hits("/elsewhere", 1)
        await caller.wait()
    (told,) = await stack.app.wait_for_hits("/caller-done", 1)
    assert told.fields["QueueResult"] == "redirected"
    assert await _members(stack) == []
    kinds = [(kind, data.get("result")) for kind, data in await _queue_events(stack, call_id)]
    assert kinds == [("queue.joined", None), ("queue.left", "redirected")]


async def test_a_full_queue_turns_callers_away_and_the_wait_url_loops(
    stack: Stack, tmp_path: Path
) -> None:
    waits: list[Hit] = []

    def wait(hit: Hit) -> Reply:
        waits.append(hit)
        if len(waits) < 3:
            return document({"pause": {"length": 1}})
        return document({"leave": {}})

    stack.app.route("/wait", wait)
    stack.app.route("/caller-done", document({"say": {"text": "Goodbye."}}, {"hangup": {}}))
    _route_voice(
        stack,
        {"maxSize": 1, "waitUrl": stack.app.url("/wait"), "action": stack.app.url("/caller-done")},
    )
    first = _party(stack, tmp_path, "caller", "+254711000001")
    second = _party(stack, tmp_path, "caller", "+254711000002")
    async with first:
        await _wait_members(stack, 1)
        async with second:
            (turned_away,) = await stack.app.wait_for_hits("/caller-done", 1)
            assert turned_away.fields["QueueResult"] == "queue-full"
            assert turned_away.fields["From"] == "+254711000002"
            await second.wait()
        results = await stack.app.wait_for_hits("/caller-done", 2)
        await first.wait()
    assert results[1].fields["QueueResult"] == "leave"
    assert [hit.fields["QueuePosition"] for hit in waits[:3]] == ["1", "1", "1"]
    assert waits[0].fields["MaxQueueSize"] == "1"
    assert waits[0].fields["CurrentQueueSize"] == "1"


async def test_an_agent_on_an_empty_queue_hears_queue_empty(stack: Stack, tmp_path: Path) -> None:
    stack.app.route(
        "/voice",
        document(
            {"dial": {"number": "queue:support", "timeout": 1, "action": stack.app.url("/d")}}
        ),
    )
    stack.app.route("/d", document({"hangup": {}}))
    agent = _party(stack, tmp_path, "caller", AGENT)
    async with agent:
        (done,) = await stack.app.wait_for_hits("/d", 1)
        await agent.wait()
    assert done.fields["DequeueResult"] == "queue-empty"
    assert done.fields["DialCallStatus"] == "no_answer"
    missing = await stack.api.get("/v1/queues/nobody/members", headers=stack.headers)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "queues.not_found"
