"""Trunk health: OPTIONS pings find a carrier that answers up and one that does not down,
and calls are routed past the down one to another trunk carrying the number.

The live carrier is SIPp answering OPTIONS; the dead one a UDP port nobody listens on.
"""

from __future__ import annotations

import pytest
from tests.sipp import SCENARIOS, Sipp, free_port, requires_sipp

from sautikit.calls.routing import Trunks
from sautikit.db.models import Trunk
from sautikit.pbx.trunk_health import Health, TrunkAddress, TrunkHealth
from sautikit.sip import TimerConfig, UserAgent
from sautikit.sip.dns import SipResolver

pytestmark = [pytest.mark.sipp, requires_sipp]


def _trunk(name: str, port: int, prefix: str) -> Trunk:
    return Trunk(
        name=name,
        host="127.0.0.1",
        port=port,
        transport="udp",
        prefixes=[prefix],
        inbound_addresses=[],
        dial_prefix="",
    )


async def test_a_silent_trunk_is_marked_down_and_calls_go_to_the_live_one() -> None:
    agent = await UserAgent.listen("127.0.0.1", 0, timers=TimerConfig(t1=0.05))
    live = Sipp(scenario=SCENARIOS / "uas_options.xml", timeout=10)
    await live.start()
    dead_port = free_port()
    changes: list[tuple[str, Health]] = []

    async def record(name: str, health: Health) -> None:
        changes.append((name, health))

    try:
        health = TrunkHealth(lambda: agent, SipResolver(), timeout=1.0, on_change=record)
        trunks = Trunks(b"k" * 32)
        trunks.health = health
        # The dead trunk has the longer prefix: it wins while nobody knows it is dead.
        trunks._trunks = [_trunk("live", live.port, "+254"), _trunk("dead", dead_port, "+2547")]
        assert trunks.route("+254700000001").trunk == "dead"
        await health.check(trunks.addresses())
        assert sorted(changes) == [("dead", "down"), ("live", "up")]
        assert health.health("live") == "up" and health.is_down("dead")
        route = trunks.route("+254700000001")
        assert route.trunk == "live"
        peers = await trunks.peers(route)
        assert [(peer.host, peer.port) for peer in peers] == [("127.0.0.1", live.port)]
        assert (await live.wait()).returncode == 0
        # Every trunk for the number down: the best one is still tried (pings may lag).
        trunks._trunks = [_trunk("dead", dead_port, "+2547")]
        assert trunks.route("+254700000001").trunk == "dead"
    finally:
        await live.stop()
        await agent.close()


def test_trunk_addresses_are_the_outbound_trunks() -> None:
    trunks = Trunks(b"k" * 32)
    inbound_only = _trunk("in", 5060, "+1")
    inbound_only.prefixes = []
    trunks._trunks = [_trunk("out", 5070, "+254"), inbound_only]
    assert trunks.addresses() == [TrunkAddress("out", "127.0.0.1", 5070, "udp")]
