"""Blind transfer end to end: an agent's phone REFERs its caller to another number, and
the API's ``{"transfer": …}`` does the same for a call it names.

SIPp plays the caller, the agent (answers the app's ``dial``, then REFERs: it must get
202 and NOTIFYs ``100 Trying`` then ``200 OK``) and the transfer target (answers, then
gets our BYE when the caller hangs up). Two trunks carry the agent's and the target's
numbers to their SIPp.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import delete
from tests.linphone import Linphone, requires_linphone
from tests.sipp import SCENARIOS as SIP_SCENARIOS
from tests.sipp import Sipp, free_port, requires_sipp
from tests.voice.stack import NUMBER, Stack, open_stack
from tests.voice.voice_rig import AppServer, document

from sautikit.db import Database
from sautikit.db.models import Trunk

pytestmark = [requires_sipp, pytest.mark.parametrize("empty_database", ["sqlite"], indirect=True)]

SCENARIOS = Path(__file__).parent / "scenarios"
AGENT = "+254720000009"
TARGET = "+254730000009"


@pytest.fixture
async def stack(database: Database, app: AppServer, tmp_path: Path) -> AsyncIterator[Stack]:
    async with open_stack(database, app, tmp_path) as opened:
        yield opened


async def _trunks(stack: Stack, agent_port: int, target_port: int) -> None:
    async with stack.database.transaction() as session:
        await session.execute(delete(Trunk))
        for name, port, prefix in (
            ("agents", agent_port, "+25472"),
            ("far", target_port, "+25473"),
        ):
            session.add(
                Trunk(
                    name=name,
                    host="127.0.0.1",
                    port=port,
                    prefixes=[prefix],
                    inbound_addresses=["127.0.0.1"],
                )
            )
    await stack.manager.reload_trunks()


async def test_an_agent_phone_blind_transfers_its_caller_with_refer(stack: Stack) -> None:
    stack.app.route("/voice", document({"dial": {"number": AGENT}}))
    agent = Sipp(scenario=SCENARIOS / "agent_transfers.xml", keys={"transfer_to": TARGET})
    target = Sipp(scenario=SIP_SCENARIOS / "uas_answer.xml", timeout=30)
    async with agent, target:
        await _trunks(stack, agent.port, target.port)
        caller = Sipp(
            scenario=SCENARIOS / "caller_talks_then_hangs_up.xml",
            remote=stack.sip,
            service=NUMBER,
            timeout=30,
        )
        caller_result = await caller.run()
        agent_result = await agent.wait()
        target_result = await target.wait()
    assert caller_result.returncode == 0, caller_result.explain()
    assert agent_result.returncode == 0, agent_result.explain()
    assert target_result.returncode == 0, target_result.explain()
    calls = await stack.wait_for_calls_to_end(count=3)
    parent = next(call for call in calls if call.parent_call_id is None)
    children = {call.to_number: call for call in calls if call.parent_call_id == parent.id}
    assert set(children) == {AGENT, TARGET}
    assert children[AGENT].status == "completed" and children[TARGET].status == "completed"
    assert children[TARGET].duration_seconds is not None and children[TARGET].duration_seconds >= 1
    assert parent.status == "completed"


async def test_the_api_transfers_a_bridged_callee_s_caller(stack: Stack) -> None:
    stack.app.route("/voice", document({"dial": {"number": AGENT}}))
    agent = Sipp(scenario=SIP_SCENARIOS / "uas_answer.xml", timeout=30)
    target = Sipp(scenario=SIP_SCENARIOS / "uas_answer.xml", timeout=30)
    async with agent, target:
        await _trunks(stack, agent.port, target.port)
        caller = Sipp(
            scenario=SCENARIOS / "caller_talks_then_hangs_up.xml",
            remote=stack.sip,
            service=NUMBER,
            timeout=30,
        )
        await caller.start()
        try:
            child_id = None
            for _ in range(100):
                child_id = next(
                    (
                        call_id
                        for call_id, live in stack.manager.live.items()
                        if live.to == AGENT and live.answered
                    ),
                    None,
                )
                if child_id is not None:
                    break
                await asyncio.sleep(0.05)
            assert child_id is not None
            changed = await stack.api.post(
                f"/v1/calls/{child_id}", json={"transfer": TARGET}, headers=stack.headers
            )
            assert changed.status_code == 200, changed.text
            caller_result = await caller.wait()
        finally:
            await caller.stop()
        agent_result = await agent.wait()
        target_result = await target.wait()
    assert caller_result.returncode == 0, caller_result.explain()
    assert agent_result.returncode == 0, agent_result.explain()  # got our BYE
    assert target_result.returncode == 0, target_result.explain()
    calls = await stack.wait_for_calls_to_end(count=3)
    assert {call.to_number for call in calls if call.parent_call_id} == {AGENT, TARGET}


async def test_a_bad_transfer_target_is_refused_400(stack: Stack) -> None:
    response = await stack.api.post(
        "/v1/calls/nope", json={"transfer": "not a number"}, headers=stack.headers
    )
    assert response.status_code == 400, response.text
    assert "transfer" in response.text


@requires_linphone
async def test_linphone_blind_transfers_the_caller_it_answered(
    stack: Stack, tmp_path: Path
) -> None:
    """linphone-cli 5.1 as the agent: auto-answers the app's dial, then ``transfer``
    (its blind transfer: REFER) to the target, and hangs up once our NOTIFY says 200."""
    stack.app.route("/voice", document({"dial": {"number": AGENT}}))
    port = free_port()
    phone = Linphone(tmp_path / "agent", f"[sip]\nsip_port={port}\nsip_tcp_port=-1\n")
    await phone.start()
    target = Sipp(scenario=SIP_SCENARIOS / "uas_answer.xml", timeout=30)
    try:
        await phone.command("autoanswer enable")
        await phone.expect("[Aa]uto.?answer")
        async with target:
            await _trunks(stack, port, target.port)
            caller = Sipp(
                scenario=SCENARIOS / "caller_talks_then_hangs_up.xml",
                remote=stack.sip,
                service=NUMBER,
                timeout=30,
            )
            await caller.start()
            try:
                await phone.expect(r"[Cc]all \d+.*(connected|answered|Connected)", within=15)
                await asyncio.sleep(0.5)  # an agent says a word before transferring
                await phone.command(f"transfer 1 sip:{TARGET}@127.0.0.1:{stack.pbx.port}")
                await phone.expect(r"(ended|terminated|transferred|Transfer)", within=15)
                caller_result = await caller.wait()
            finally:
                await caller.stop()
            target_result = await target.wait()
    finally:
        output = await phone.stop()
    assert caller_result.returncode == 0, caller_result.explain()
    assert target_result.returncode == 0, target_result.explain() + output[-2000:]
    calls = await stack.wait_for_calls_to_end(count=3)
    children = {call.to_number: call for call in calls if call.parent_call_id}
    assert set(children) == {AGENT, TARGET}
    assert children[TARGET].status == "completed"
