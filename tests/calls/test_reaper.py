"""The reaper ends what no call owns: media channels, SIP legs, call rows.

Each test leaves behind, on the real stack (tests/voice/stack.py: SIP, RTP, the call
manager, the database), the kind of orphan a failed exit path would, and checks that a
sweep gives it back: the RTP ports return to the pool, the far end (SIPp) gets its BYE,
the row ends with ``network_error`` and its event.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from tests.sipp import SCENARIOS as SIP_SCENARIOS
from tests.sipp import Sipp, requires_sipp
from tests.voice.stack import CALLEE, NUMBER, Stack, open_stack
from tests.voice.voice_rig import AppServer, document, serve_app

from sautikit.calls.reaper import Reaper
from sautikit.db import Database
from sautikit.db.models import Call
from sautikit.db.types import utcnow

pytestmark = requires_sipp


@pytest.fixture(scope="module")
def app_server() -> Iterator[AppServer]:
    with serve_app() as server:
        yield server


@pytest.fixture
def app(app_server: AppServer) -> Iterator[AppServer]:
    app_server.reset()
    yield app_server
    app_server.reset()


@pytest.fixture
async def stack(database: Database, app: AppServer, tmp_path: Path) -> AsyncIterator[Stack]:
    async with open_stack(database, app, tmp_path) as opened:
        yield opened


async def until_live(stack: Stack, count: int) -> None:
    for _ in range(600):
        if len(stack.manager.live) == count and all(
            call.answered for call in stack.manager.live.values()
        ):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{len(stack.manager.live)} live calls, never {count}")


def reaper(stack: Stack, unowned_seconds: float = 0.0) -> Reaper:
    """A reaper on the stack's PBX that takes orphans at once (the stack runs its own on
    the production interval, too slow for a test to wait for)."""
    manager = stack.manager
    return Reaper(
        stack.pbx,
        stack.database,
        stack.settings,
        node="test-node",
        owned_legs=manager.registry.owned_legs,
        live_call_ids=lambda: list(manager.live),
        unowned_leg_seconds=unowned_seconds,
    )


async def test_a_channel_no_leg_holds_is_closed_and_its_ports_return(stack: Stack) -> None:
    media = stack.pbx.media
    before = media.stats().ports_in_use
    await media.open_channel()  # opened for a leg that never came to be
    assert media.stats().ports_in_use == before + 1
    sweeper = reaper(stack)
    await sweeper.sweep()  # seen unheld once: a leg may still be on its way
    assert media.stats().ports_in_use == before + 1
    await sweeper.sweep()
    assert media.stats().ports_in_use == before
    assert sweeper.reaped.channels == 1


async def test_a_sip_leg_no_call_owns_is_hung_up(stack: Stack) -> None:
    async with Sipp(scenario=SIP_SCENARIOS / "uas_answer.xml", timeout=20) as callee:
        leg = await stack.pbx.dial(
            f"sip:{CALLEE}@127.0.0.1:{callee.port}", from_uri=f"sip:{NUMBER}@127.0.0.1"
        )
        await leg.wait_answer()  # answered, and then its owner is lost
        sweeper = reaper(stack)
        await sweeper.sweep()
        result = await callee.wait()
    assert result.returncode == 0, result.explain()  # SIPp got the BYE
    assert leg.ended and sweeper.reaped.legs == 1
    await sweeper.sweep()
    assert leg.channel not in stack.pbx.media.channels


async def test_a_live_call_keeps_its_leg(stack: Stack) -> None:
    """What a live call owns is never the reaper's, however old."""
    stack.app.route("/voice", document({"pause": {"length": 30}}))
    async with Sipp(
        scenario=SIP_SCENARIOS / "uac_answered_waits_for_bye.xml",
        remote=stack.sip,
        service=NUMBER,
        timeout=20,
    ) as caller:
        await until_live(stack, 1)
        sweeper = reaper(stack)
        for _ in range(3):
            await sweeper.sweep()
        assert len(stack.manager.live) == 1 and sweeper.reaped.legs == 0
        (live,) = stack.manager.live.values()
        await live.hangup("normal_clearing")
        result = await caller.wait()
    assert result.returncode == 0, result.explain()


async def test_a_live_row_no_call_holds_is_ended(stack: Stack) -> None:
    answered = utcnow() - timedelta(minutes=3)
    async with stack.database.transaction() as session:
        call = Call(
            workspace_id=stack.workspace_id,
            direction="inbound",
            from_number="+254711000111",
            to_number=NUMBER,
            status="answered",
            owner="test-node",
            created_at=answered,
            started_at=answered,
            answered_at=answered,
            last_seen_at=answered + timedelta(seconds=20),
        )
        session.add(call)
    sweeper = reaper(stack, unowned_seconds=60)
    await sweeper.sweep()
    (ended,) = await stack.calls()
    assert (ended.status, ended.hangup_cause, ended.duration_seconds) == (
        "completed",
        "network_error",
        20,
    )
    assert (await stack.events(ended.id))[-1] == "call.completed"
    assert sweeper.reaped.rows == 1
