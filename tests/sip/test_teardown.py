"""Ending a dead process's calls from their stored snapshots, against the real SIPp.

Each test places or takes a call with one user agent, stores its snapshot as JSON, closes
that agent without a word on the wire (what a crash does), starts a new agent on the same
port, and ends the call from the JSON alone. SIPp, on the far side, must see the BYE,
CANCEL or final answer its scenario waits for and finish without error.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from tests.sipp import SCENARIOS, Sipp, requires_sipp

from sautikit.sip import CallState, IncomingCall, SdpSession, UserAgent, negotiate_answer
from sautikit.sip.teardown import DialogSnapshot, Teardown

pytestmark = [pytest.mark.sipp, requires_sipp]

WAIT = 10.0


@pytest.fixture
async def agents() -> AsyncIterator[list[UserAgent]]:
    made: list[UserAgent] = []
    yield made
    for agent in made:
        await agent.close()


async def listen(agents: list[UserAgent], port: int = 0, **options: Any) -> UserAgent:
    agent = await UserAgent.listen("127.0.0.1", port, tcp=False, **options)
    agents.append(agent)
    return agent


async def restarted(agents: list[UserAgent], dead: UserAgent) -> UserAgent:
    """The next process on the dead one's port: nothing of its calls survives but JSON."""
    port = dead.transport.port
    await dead.close()
    for _ in range(50):  # the closed socket is released on a later turn of the loop
        try:
            return await listen(agents, port)
        except OSError:
            await asyncio.sleep(0.02)
    return await listen(agents, port)


def stored(call: Any) -> DialogSnapshot:
    """The snapshot as a database round trip leaves it."""
    return DialogSnapshot.from_json(json.loads(json.dumps(DialogSnapshot.of_call(call).to_json())))


async def wait_for(predicate: Callable[[], bool]) -> None:
    for _ in range(int(WAIT / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the call never got there")


async def test_answered_call_we_placed_gets_bye_after_a_restart(
    agents: list[UserAgent], tmp_path: Path
) -> None:
    async with Sipp(scenario=SCENARIOS / "uas_answer.xml", workdir=tmp_path) as callee:
        agent = await listen(agents)
        sdp = SdpSession("127.0.0.1")
        call = await agent.place_call(
            f"sip:+254720000001@127.0.0.1:{callee.port}",
            from_uri="sip:+254700000001@127.0.0.1",
            offer=sdp.offer(40000),
        )
        await asyncio.wait_for(call.wait_answer(), WAIT)
        snapshot = stored(call)
        assert snapshot.answered

        fresh = await restarted(agents, agent)
        assert await Teardown(fresh).end(snapshot) == "bye"
        result = await callee.wait()
    assert result.returncode == 0, result.explain()
    assert result.successful_calls == 1


async def test_ringing_call_we_placed_is_cancelled_and_its_487_acked(
    agents: list[UserAgent], tmp_path: Path
) -> None:
    async with Sipp(scenario=SCENARIOS / "uas_no_answer.xml", workdir=tmp_path) as callee:
        agent = await listen(agents)
        call = await agent.place_call(
            f"sip:+254720000001@127.0.0.1:{callee.port}",
            from_uri="sip:+254700000001@127.0.0.1",
            offer=SdpSession("127.0.0.1").offer(40000),
        )
        await wait_for(lambda: call.state is CallState.RINGING)
        snapshot = stored(call)
        assert not snapshot.answered

        fresh = await restarted(agents, agent)
        assert await Teardown(fresh).end(snapshot) == "cancel"
        result = await callee.wait()
    # The scenario ends with the ACK of its 487: without it SIPp would time out.
    assert result.returncode == 0, result.explain()
    assert result.successful_calls == 1


async def test_answered_call_we_took_gets_bye_after_a_restart(
    agents: list[UserAgent], tmp_path: Path
) -> None:
    calls: asyncio.Queue[IncomingCall] = asyncio.Queue()

    async def answer(call: IncomingCall) -> None:
        call.ring()
        assert call.offer is not None
        await call.answer(negotiate_answer(call.offer, "127.0.0.1", 40000)[0])
        calls.put_nowait(call)

    agent = await listen(agents, on_incoming_call=answer)
    async with Sipp(
        scenario=SCENARIOS / "uac_answered_waits_for_bye.xml",
        remote=("127.0.0.1", agent.transport.port),
        service="+254700000001",
        workdir=tmp_path,
    ) as caller:
        call = await asyncio.wait_for(calls.get(), WAIT)
        snapshot = stored(call)
        assert snapshot.answered and snapshot.role == "uas"

        fresh = await restarted(agents, agent)
        assert await Teardown(fresh).end(snapshot) == "bye"
        result = await caller.wait()
    assert result.returncode == 0, result.explain()
    assert result.successful_calls == 1


async def test_ringing_call_we_took_gets_a_final_480_after_a_restart(
    agents: list[UserAgent], tmp_path: Path
) -> None:
    calls: asyncio.Queue[IncomingCall] = asyncio.Queue()

    async def ring(call: IncomingCall) -> None:
        call.ring()
        calls.put_nowait(call)

    agent = await listen(agents, on_incoming_call=ring)
    async with Sipp(
        scenario=SCENARIOS / "uac_ringing_gets_480.xml",
        remote=("127.0.0.1", agent.transport.port),
        service="+254700000001",
        workdir=tmp_path,
    ) as caller:
        call = await asyncio.wait_for(calls.get(), WAIT)
        snapshot = stored(call)
        assert not snapshot.answered and snapshot.role == "uas"

        fresh = await restarted(agents, agent)
        assert await Teardown(fresh).end(snapshot) == "rejected"
        result = await caller.wait()
    assert result.returncode == 0, result.explain()
    assert result.successful_calls == 1


def test_a_snapshot_that_is_not_one_is_refused() -> None:
    with pytest.raises(ValueError):
        DialogSnapshot.from_json({"version": 2, "role": "uac"})
    with pytest.raises(ValueError):
        DialogSnapshot.from_json(
            {"version": 1, "role": "uac", "invite": "SIP/2.0 200 OK\r\n\r\n", "peer": []}
        )
