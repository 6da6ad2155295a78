"""SIP over UDP and TCP on loopback: rport/received, §18.2.2 response routing, framing, abuse."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest

from sautikit.sip.message import Request, Response, parse_message
from sautikit.sip.transport import Peer, SipTransportError, SipTransportLayer
from sautikit.sip.uri import SipUri

Received = asyncio.Queue[tuple[Request | Response, Peer]]


def options(via: str, call_id: str = "call-1", body: bytes = b"") -> bytes:
    request = Request(method="OPTIONS", uri=SipUri.parse("sip:pbx@127.0.0.1"), body=body)
    for name, value in [
        ("Via", via),
        ("From", "<sip:probe@127.0.0.1>;tag=f1"),
        ("To", "<sip:pbx@127.0.0.1>"),
        ("Call-ID", call_id),
        ("CSeq", "1 OPTIONS"),
        ("Max-Forwards", "70"),
    ]:
        request.headers.add(name, value)
    return request.encode()


class UdpPeer(asyncio.DatagramProtocol):
    """A bare UDP socket standing in for a phone."""

    def __init__(self) -> None:
        self.datagrams: asyncio.Queue[bytes] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.datagrams.put_nowait(data)

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    def send(self, data: bytes, port: int) -> None:
        assert self.transport is not None
        self.transport.sendto(data, ("127.0.0.1", port))


@pytest.fixture
async def layer() -> AsyncIterator[tuple[SipTransportLayer, Received]]:
    received: Received = asyncio.Queue()
    transport = SipTransportLayer(lambda message, peer: received.put_nowait((message, peer)))
    await transport.start("127.0.0.1", 0)
    yield transport, received
    await transport.close()


@pytest.fixture
async def phone() -> AsyncIterator[UdpPeer]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(UdpPeer, local_addr=("127.0.0.1", 0))
    yield protocol
    transport.close()


async def next_item(queue: asyncio.Queue[Any]) -> Any:
    return await asyncio.wait_for(queue.get(), 5)


async def test_udp_request_gets_rport_and_received_and_response_follows_rport(
    layer: tuple[SipTransportLayer, Received], phone: UdpPeer
) -> None:
    transport, received = layer
    # The phone claims a private sent-by (behind NAT); the reply must go to where it is.
    phone.send(options("SIP/2.0/UDP 10.9.9.9:5060;branch=z9hG4bKa;rport"), transport.port)
    request, peer = await next_item(received)
    assert peer == Peer("udp", "127.0.0.1", phone.port)
    via = request.top_via
    assert (via.received, via.rport) == ("127.0.0.1", phone.port)
    await transport.send_response(request.create_response(200), peer)
    response = parse_message(await next_item(phone.datagrams))
    assert isinstance(response, Response) and response.status == 200
    assert response.top_via.rport == phone.port


async def test_udp_without_rport_answers_received_at_the_sent_by_port(
    layer: tuple[SipTransportLayer, Received], phone: UdpPeer
) -> None:
    transport, received = layer
    phone.send(options(f"SIP/2.0/UDP 192.0.2.7:{phone.port};branch=z9hG4bKb"), transport.port)
    request, peer = await next_item(received)
    assert request.top_via.received == "127.0.0.1"
    assert not request.top_via.rport_requested
    await transport.send_response(request.create_response(404), peer)
    response = parse_message(await next_item(phone.datagrams))
    assert isinstance(response, Response) and response.status == 404


async def test_matching_sent_by_gets_no_received(
    layer: tuple[SipTransportLayer, Received], phone: UdpPeer
) -> None:
    transport, received = layer
    phone.send(options(f"SIP/2.0/UDP 127.0.0.1:{phone.port};branch=z9hG4bKc"), transport.port)
    request, _ = await next_item(received)
    assert "received" not in request.top_via.params


async def test_garbage_is_dropped_and_a_broken_request_is_answered_400(
    layer: tuple[SipTransportLayer, Received], phone: UdpPeer
) -> None:
    transport, received = layer
    phone.send(b"\x16\x03\x01 not sip at all", transport.port)
    phone.send(b"\r\n\r\n", transport.port)
    broken = options("SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKd;rport", body=b"12345")
    broken = broken.replace(b"Content-Length: 5", b"Content-Length: 500")
    phone.send(broken, transport.port)
    answer = parse_message(await next_item(phone.datagrams))
    assert isinstance(answer, Response)
    assert answer.status == 400
    assert "Content-Length" in answer.reason
    assert answer.top_via.rport == phone.port
    # The listener still works after all that.
    phone.send(options("SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKe", "after"), transport.port)
    request, _ = await next_item(received)
    assert request.call_id == "after"
    assert received.empty()


async def test_a_failing_handler_does_not_stop_the_listener(phone: UdpPeer) -> None:
    seen: list[str] = []

    def handler(message: Request | Response, peer: Peer) -> None:
        seen.append(message.call_id)
        raise RuntimeError("application bug")

    transport = SipTransportLayer(handler)
    await transport.start("127.0.0.1", 0, tcp=False)
    try:
        for call_id in ("one", "two"):
            phone.send(options("SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKf", call_id), transport.port)
        for _ in range(100):
            if len(seen) == 2:
                break
            await asyncio.sleep(0.01)
        assert seen == ["one", "two"]
    finally:
        await transport.close()


async def test_tcp_stream_is_framed_by_content_length_and_answered_on_the_connection(
    layer: tuple[SipTransportLayer, Received],
) -> None:
    transport, received = layer
    reader, writer = await asyncio.open_connection("127.0.0.1", transport.port)
    first = options("SIP/2.0/TCP 127.0.0.1:1;branch=z9hG4bKg;rport", "first", b"abc")
    second = options("SIP/2.0/TCP 127.0.0.1:1;branch=z9hG4bKh", "second")
    stream = b"\r\n\r\n" + first + b"\r\n" + second
    writer.write(stream[:50])
    await writer.drain()
    await asyncio.sleep(0.01)
    writer.write(stream[50:])
    await writer.drain()
    request, peer = await next_item(received)
    assert (request.call_id, request.body) == ("first", b"abc")
    assert peer.transport == "tcp"
    request_two, _ = await next_item(received)
    assert request_two.call_id == "second"
    # sent-by port 1 is useless: the response must reuse the open connection.
    await transport.send_response(request.create_response(200), peer)
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"SIP/2.0 200 OK\r\n")
    writer.close()


async def test_tcp_stream_with_oversized_content_length_is_closed(
    layer: tuple[SipTransportLayer, Received],
) -> None:
    transport, received = layer
    reader, writer = await asyncio.open_connection("127.0.0.1", transport.port)
    writer.write(b"INVITE sip:a@b SIP/2.0\r\nContent-Length: 99999999\r\n\r\n")
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
    assert received.empty()


async def test_tcp_between_two_layers_reuses_the_connection_both_ways(
    layer: tuple[SipTransportLayer, Received],
) -> None:
    server, server_received = layer
    client_received: Received = asyncio.Queue()
    client = SipTransportLayer(lambda m, p: client_received.put_nowait((m, p)))
    await client.start("127.0.0.1", 0, udp=False)
    try:
        via = client.make_via("tcp", "z9hG4bKtcp1")
        assert str(via) == f"SIP/2.0/TCP 127.0.0.1:{client.port};branch=z9hG4bKtcp1;rport"
        await client.send(parse_message(options(str(via))), ("127.0.0.1", server.port), "tcp")
        request, peer = await next_item(server_received)
        assert peer.port != client.port  # an ephemeral source port, not the listener
        await server.send_response(request.create_response(200), peer)
        response, response_peer = await next_item(client_received)
        assert response.status == 200
        assert response_peer == Peer("tcp", "127.0.0.1", server.port)
    finally:
        await client.close()


async def test_sending_to_a_closed_tcp_port_raises_transport_error() -> None:
    transport = SipTransportLayer()
    await transport.start("127.0.0.1", 0, udp=False)
    dead = SipTransportLayer()
    await dead.start("127.0.0.1", 0, udp=False)
    dead_port = dead.port
    await dead.close()
    try:
        with pytest.raises(SipTransportError):
            await transport.send(
                parse_message(options("SIP/2.0/TCP 127.0.0.1;branch=z9hG4bKx")),
                ("127.0.0.1", dead_port),
                "tcp",
            )
        with pytest.raises(SipTransportError):
            await transport.send(
                parse_message(options("SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKx")),
                ("127.0.0.1", dead_port),
                "udp",
            )
    finally:
        await transport.close()


@pytest.mark.parametrize(
    "stream",
    [
        b"INVITE sip:a@b SIP/2.0\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n",
        b"\x00\xff" * 40000,
        b"\r\n" * 1000 + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"OPTIONS sip:a@b SIP/2.0\r\nl: 3\r\n\r\nabc" * 3,
    ],
)
async def test_hostile_tcp_streams_leave_the_listener_working(
    layer: tuple[SipTransportLayer, Received], stream: bytes
) -> None:
    transport, received = layer
    _, writer = await asyncio.open_connection("127.0.0.1", transport.port)
    writer.write(stream)
    await writer.drain()
    _, healthy = await asyncio.open_connection("127.0.0.1", transport.port)
    healthy.write(options("SIP/2.0/TCP 127.0.0.1;branch=z9hG4bKok", "healthy"))
    await healthy.drain()
    request, _ = await next_item(received)
    assert request.call_id == "healthy"
    writer.close()
    healthy.close()
