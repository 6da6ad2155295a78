"""RFC 3263 server location against a DNS server on loopback, and failover between targets.

The DNS server is a few lines here (dnspython builds the answers): no query leaves the
machine. The failover test has two SIPp carriers behind one SRV name; the first answers
503, so the call is answered by the second.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
from dns.rdtypes.IN.SRV import SRV
from tests.sip.conftest import MakeAgent, StartSipp
from tests.sipp import SCENARIOS, requires_sipp

from sautikit.sip import Peer, SdpSession
from sautikit.sip.dns import SipResolver, SipTarget, order_srv

Records = dict[tuple[str, str], list[str]]


class _Zone(asyncio.DatagramProtocol):
    """Answers each query from ``records`` ((name., TYPE) -> rdata texts); NXDOMAIN for
    names it has nothing for, an empty answer for a known name's other types."""

    def __init__(self, records: Records) -> None:
        self.records = records
        self.queries: list[tuple[str, str]] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        question = query.question[0]
        name = question.name.to_text().lower()
        kind = dns.rdatatype.to_text(question.rdtype)
        self.queries.append((name, kind))
        texts = self.records.get((name, kind))
        if texts:
            response.answer.append(dns.rrset.from_text(question.name, 60, "IN", kind, *texts))
        elif not any(known == name for known, _ in self.records):
            response.set_rcode(dns.rcode.NXDOMAIN)
        assert self.transport is not None
        self.transport.sendto(response.to_wire(), addr)


@pytest.fixture
async def zone() -> AsyncIterator[tuple[_Zone, SipResolver]]:
    server = _Zone({})
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: server, local_addr=("127.0.0.1", 0)
    )
    port = transport.get_extra_info("sockname")[1]
    yield server, SipResolver([("127.0.0.1", port)], timeout=2.0)
    transport.close()


CARRIER: Records = {
    ("carrier.test.", "NAPTR"): [
        '20 10 "s" "SIP+D2T" "" _sip._tcp.carrier.test.',
        '10 10 "s" "SIP+D2U" "" _sip._udp.carrier.test.',
        '5 10 "s" "SIPS+D2T" "" _sips._tcp.carrier.test.',
    ],
    ("_sip._udp.carrier.test.", "SRV"): [
        "20 0 5070 b.carrier.test.",
        "10 0 5080 a.carrier.test.",
    ],
    ("_sip._tcp.carrier.test.", "SRV"): ["10 0 5090 a.carrier.test."],
    ("a.carrier.test.", "A"): ["127.0.0.1"],
    ("b.carrier.test.", "A"): ["127.0.0.2"],
    ("b.carrier.test.", "AAAA"): ["::1"],
}


async def test_naptr_orders_transports_and_srv_orders_hosts(
    zone: tuple[_Zone, SipResolver],
) -> None:
    server, resolver = zone
    server.records.update(CARRIER)
    # SIPS+D2T comes first by order, but TLS is not among what this resolver supports.
    assert await resolver.resolve("carrier.test") == [
        SipTarget("127.0.0.1", 5080, "udp"),
        SipTarget("127.0.0.2", 5070, "udp"),
        SipTarget("::1", 5070, "udp"),
        SipTarget("127.0.0.1", 5090, "tcp"),
    ]


async def test_a_transport_skips_naptr_and_an_explicit_port_skips_srv(
    zone: tuple[_Zone, SipResolver],
) -> None:
    server, resolver = zone
    server.records.update(CARRIER)
    assert await resolver.resolve("carrier.test", transport="tcp") == [
        SipTarget("127.0.0.1", 5090, "tcp")
    ]
    assert ("carrier.test.", "NAPTR") not in server.queries
    server.queries.clear()
    assert await resolver.resolve("a.carrier.test", 5099, "udp") == [
        SipTarget("127.0.0.1", 5099, "udp")
    ]
    assert all(kind in ("A", "AAAA") for _, kind in server.queries)


async def test_without_naptr_or_srv_the_name_is_used_on_5060(
    zone: tuple[_Zone, SipResolver],
) -> None:
    server, resolver = zone
    server.records[("plain.test.", "A")] = ["127.0.0.9"]
    assert await resolver.resolve("plain.test") == [SipTarget("127.0.0.9", 5060, "udp")]
    assert await resolver.resolve("nothing.test") == []
    assert await resolver.resolve("127.0.0.5", None, "tcp") == [SipTarget("127.0.0.5", 5060, "tcp")]


def _srv(priority: int, weight: int, port: int) -> SRV:
    return SRV("IN", "SRV", priority, weight, port, dns.name.from_text("h.test."))


def test_srv_weights_share_one_priority_and_priorities_come_in_order() -> None:
    records = [_srv(20, 0, 1), _srv(10, 90, 2), _srv(10, 10, 3)]
    firsts = [order_srv(records, random.Random(seed))[0].port for seed in range(200)]
    assert 120 < firsts.count(2) < 200 and firsts.count(3) > 5 and 1 not in firsts
    assert all(order_srv(records, random.Random(seed))[-1].port == 1 for seed in range(20))


@pytest.mark.sipp
@requires_sipp
async def test_a_503_from_the_first_srv_target_fails_over_to_the_next(
    zone: tuple[_Zone, SipResolver], make_agent: MakeAgent, start_sipp: StartSipp
) -> None:
    refusing = await start_sipp(scenario=SCENARIOS / "uas_unavailable.xml")
    answering = await start_sipp(scenario=SCENARIOS / "uas_answer.xml")
    server, resolver = zone
    server.records.update(
        {
            ("_sip._udp.trunk.test.", "SRV"): [
                f"10 0 {refusing.port} one.trunk.test.",
                f"20 0 {answering.port} two.trunk.test.",
            ],
            ("one.trunk.test.", "A"): ["127.0.0.1"],
            ("two.trunk.test.", "A"): ["127.0.0.1"],
        }
    )
    targets = await resolver.resolve("trunk.test", transport="udp")
    peers = [Peer(target.transport, target.host, target.port) for target in targets]
    agent = await make_agent()
    call = await agent.place_call(
        "sip:+254700000001@trunk.test",
        from_uri="sip:alice@127.0.0.1",
        offer=SdpSession("127.0.0.1").offer(40030),
        destination=peers[0],
        alternates=peers[1:],
    )
    await asyncio.wait_for(call.wait_answer(), 10)
    assert call.destination == peers[1]
    await call.hangup()
    assert (await refusing.wait()).returncode == 0
    assert (await answering.wait()).returncode == 0
