"""Queues across two processes of one deployment (PostgreSQL, its NOTIFY command bus): an
agent reaching one node takes the longest-waiting caller even when another node holds
that caller's media, bridged through a relay channel in each process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.conftest import POSTGRES_URL
from tests.sipp import requires_sipp
from tests.voice.stack import Stack, open_stack
from tests.voice.test_queue_calls import AGENT, _call_of, _party, _route_voice, _wait_members
from tests.voice.voice_rig import AppServer, document

from sautikit.db import Database
from sautikit.voice.commands import PostgresBus

pytestmark = [
    requires_sipp,
    pytest.mark.parametrize("empty_database", ["postgresql"], indirect=True),
]


@pytest.fixture
async def nodes(
    database: Database, app: AppServer, tmp_path: Path
) -> AsyncIterator[tuple[Stack, Stack]]:
    async with (
        open_stack(database, app, tmp_path, node="node-a", bus=PostgresBus(POSTGRES_URL)) as a,
        open_stack(
            database,
            app,
            tmp_path,
            node="node-b",
            join=a,
            bus=PostgresBus(POSTGRES_URL),
            rtp_ports=(27500, 27599),
        ) as b,
    ):
        yield a, b


async def test_an_agent_takes_the_longest_waiting_caller_held_by_another_node(
    nodes: tuple[Stack, Stack], tmp_path: Path
) -> None:
    a, b = nodes
    _route_voice(a, {"action": a.app.url("/caller-done")})
    a.app.route("/caller-done", document({"hangup": {}}))
    a.app.route("/agent-done", document({"hangup": {}}))
    first = _party(b, tmp_path, "caller", "+254711000001")  # waits on node B
    second = _party(a, tmp_path, "caller", "+254711000002")  # waits on node A
    async with first:
        await _wait_members(a, 1)
        async with second:
            await _wait_members(a, 2)
            waiting = [await _call_of(a, "+254711000001"), await _call_of(a, "+254711000002")]
            for index, number in enumerate([AGENT, "+254799000002"]):  # both agents reach A
                result = await _party(a, tmp_path, "agent", number, talk_ms=1500).run()
                assert result.returncode == 0, result.explain()
                (done,) = (await a.app.wait_for_hits("/agent-done", index + 1))[index:]
                assert done.fields["DequeueResult"] == "bridged"
                assert done.fields["DequeuedCallId"] == waiting[index]
            await second.wait()
        await first.wait()
    results = await a.app.wait_for_hits("/caller-done", 2)
    assert {hit.fields["CallId"]: hit.fields["QueueResult"] for hit in results} == {
        call_id: "bridged" for call_id in waiting
    }
    # The first bridge crossed the nodes: each side's relay heard the other's RTP.
    assert a.manager.queues.relay_packets > 0
    assert b.manager.queues.relay_packets > 0
