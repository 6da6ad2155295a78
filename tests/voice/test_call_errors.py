"""A failed call explains itself: ``error.code`` and ``error.message`` on the call, in the
API and in its ``call.failed`` event (voice.failure).

Each test places a call through the API on the real stack and makes the trunk fail one
way: no trunk carries the number, nothing listens on the trunk's port, the trunk's host
takes the INVITE and never answers, the trunk refuses the number with 404.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from tests.sipp import Sipp, requires_sipp
from tests.voice.stack import CALLEE, NUMBER, Stack, open_stack
from tests.voice.voice_rig import AppServer, document

from sautikit.db import Database
from sautikit.db.models import Event, Trunk
from sautikit.pbx import CallScript, Phone

pytestmark = [
    requires_sipp,
    pytest.mark.parametrize("empty_database", ["sqlite"], indirect=True),
]

SCENARIOS = Path(__file__).parent / "scenarios"


@pytest.fixture
async def stack(database: Database, app: AppServer, tmp_path: Path) -> AsyncIterator[Stack]:
    async with open_stack(database, app, tmp_path) as opened:
        yield opened


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A UDP port that takes datagrams and never answers (a firewalled or hung trunk)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        yield sink.getsockname()[1]


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _failed_call(stack: Stack) -> dict[str, Any]:
    """Place a call, wait for its end; answer it as GET /v1/calls/{id} shows it, after
    checking its last event says the same."""
    body = {"to": CALLEE, "from": NUMBER, "action_url": stack.app.url("/answered")}
    placed = await stack.api.post("/v1/calls", json=body, headers=stack.headers)
    assert placed.status_code == 201, placed.text
    (call,) = await stack.wait_for_calls_to_end(seconds=30)
    shown = await stack.api.get(f"/v1/calls/{call.id}", headers=stack.headers)
    assert shown.status_code == 200, shown.text
    async with stack.database.sessions() as session:
        events = (
            await session.scalars(select(Event).where(Event.call_id == call.id).order_by(Event.id))
        ).all()
    assert events[-1].kind == "call.failed"
    assert events[-1].data["error"] == shown.json()["error"]
    assert events[-1].data["call_id"] == call.id
    return dict(shown.json())


async def test_a_number_no_trunk_carries_says_so(stack: Stack) -> None:
    async with stack.database.transaction() as session:
        await session.execute(update(Trunk).values(prefixes=["+2541"]))
    await stack.manager.reload_trunks()
    call = await _failed_call(stack)
    assert (call["status"], call["hangup_cause"]) == ("failed", "network_error")
    assert call["error"]["code"] == "call.no_route"
    assert CALLEE in call["error"]["message"] and "--prefix" in call["error"]["message"]


async def test_a_trunk_nothing_listens_on_fails_unreachable_not_no_answer(
    stack: Stack,
) -> None:
    await stack.route_trunk_to(_closed_port())
    call = await _failed_call(stack)
    assert (call["status"], call["hangup_cause"]) == ("failed", "network_error")
    assert call["error"]["code"] == "call.trunk_unreachable"
    # ICMP port unreachable (never rate-limited on loopback) failed it, not timer B.
    assert "could not be delivered" in call["error"]["message"]
    assert "127.0.0.1" in call["error"]["message"]


async def test_a_trunk_that_never_answers_times_out_as_unreachable(
    stack: Stack, silent_port: int
) -> None:
    await stack.route_trunk_to(silent_port)
    call = await _failed_call(stack)
    assert (call["status"], call["hangup_cause"]) == ("failed", "network_error")
    assert call["error"]["code"] == "call.trunk_unreachable"
    assert f"127.0.0.1:{silent_port}" in call["error"]["message"]
    assert "no SIP response" in call["error"]["message"]


async def test_a_trunk_that_refuses_the_number_gives_its_sip_status(stack: Stack) -> None:
    async with Sipp(scenario=SCENARIOS / "uas_not_found.xml", timeout=15) as trunk:
        await stack.route_trunk_to(trunk.port)
        call = await _failed_call(stack)
        assert (await trunk.wait()).returncode == 0
    assert (call["status"], call["hangup_cause"]) == ("failed", "network_error")
    assert call["error"]["code"] == "call.trunk_rejected"
    assert call["error"]["sip_status"] == 404
    assert "404 Not Found" in call["error"]["message"]


async def test_a_dial_the_allow_list_refuses_records_why_on_the_call(stack: Stack) -> None:
    stack.app.route("/voice", document({"dial": {"number": "+15555550100"}}, {"hangup": {}}))
    async with Phone(rtp_ports=(44500, 44549)) as phone:
        await phone.call(NUMBER, CallScript(linger=5), server=stack.sip)
    (call,) = await stack.wait_for_calls_to_end()
    assert call.error is not None
    assert call.error["code"] == "destinations.not_allowed", call.error
    assert "+15555550100" in call.error["message"]
