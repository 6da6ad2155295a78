"""Phones registered through a proxy in front (RFC 3327 Path): the Path is stored with the
registration, in the database, and calls to the phone go back through the proxy.

SIPp plays the proxy twice over: once forwarding alice's REGISTER with its Path header
added, once answering the INVITE that must reach it (not alice's Contact, not the
REGISTER's source) with the Path as its Route."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.sipp import Sipp, free_port, requires_sipp
from tests.voice.stack import NUMBER, Stack, open_stack
from tests.voice.voice_rig import AppServer

from sautikit.db import Database

pytestmark = requires_sipp

SCENARIOS = Path(__file__).parent / "scenarios"


@pytest.fixture
async def stack(database: Database, app: AppServer, tmp_path: Path) -> AsyncIterator[Stack]:
    async with open_stack(database, app, tmp_path) as opened:
        yield opened


async def test_a_phone_behind_a_proxy_is_called_back_through_it(stack: Stack) -> None:
    await stack.add_device("alice", "s3cret")
    await stack.set_routing(voice_url=None)  # the number rings its devices
    async with Sipp(scenario=SCENARIOS / "proxy_answers_for_its_phone.xml", timeout=30) as proxy:
        registered = await Sipp(
            scenario=SCENARIOS / "register_through_proxy.xml",
            remote=stack.sip,
            service="alice",
            keys={"proxy_port": str(proxy.port), "contact_port": str(free_port())},
        ).run()
        assert registered.returncode == 0, registered.explain()
        (binding,) = stack.pbx.agent.lookup("sip:alice@any")
        assert binding.path == (f"<sip:edge@127.0.0.1:{proxy.port};lr>",)
        # Kept in the database: a restarted process, or another one, calls through it too.
        (stored,) = await stack.manager.devices.registrations.load()
        assert stored.path == binding.path and stored.contact == binding.contact

        caller = await Sipp(
            scenario=SCENARIOS / "caller_talks_then_hangs_up.xml",
            remote=stack.sip,
            service=NUMBER,
            timeout=30,
        ).run()
        answered = await proxy.wait()
    assert caller.returncode == 0, caller.explain()
    assert answered.returncode == 0, answered.explain()
    (call,) = await stack.wait_for_calls_to_end()
    assert call.status == "completed" and call.hangup_cause == "caller_hangup"
