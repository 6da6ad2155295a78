"""SIP over WebSocket (RFC 7118) on loopback, driven by a real WebSocket client (the
``websockets`` package), with the bytes JsSIP 3.13 sends."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from tests.sip.test_useragent import FAST, REALM, lookup_ha1
from tests.tls_certs import Certificates, make_certificates
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

from sautikit.config import ConfigError, load_settings
from sautikit.sip import CallFailed, UserAgent
from sautikit.sip.digest import build_authorization, parse_challenge
from sautikit.sip.message import Request, Response, parse_message
from sautikit.sip.tls import client_context, server_context
from sautikit.sip.transport import Peer, SipTransportError, SipTransportLayer
from sautikit.sip.websocket import HANDSHAKE_TIMEOUT, SIP_SUBPROTOCOL, WebSocketListeners

Received = asyncio.Queue[tuple[Request | Response, Peer]]

#: A REGISTER as JsSIP 3.13 writes it: a made-up ``.invalid`` host in Via and Contact, no
#: port, no rport, and the outbound/ICE parameters on the Contact.
JSSIP_REGISTER = (
    "REGISTER sip:127.0.0.1 SIP/2.0\r\n"
    "Via: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bK5367712{cseq}\r\n"
    "Max-Forwards: 69\r\n"
    "To: <sip:{user}@127.0.0.1>\r\n"
    "From: <sip:{user}@127.0.0.1>;tag=ig3rmp1ti6\r\n"
    "Call-ID: fi8bi2oblhgvkoqkdg0lpl\r\n"
    "CSeq: {cseq} REGISTER\r\n"
    "{authorization}Contact: <sip:0ltdt0sa@df7jal23ls0d.invalid;transport=ws>;+sip.ice;reg-id=1"
    ';+sip.instance="<urn:uuid:2f2b3cc3-6c66-4d1c-9d3b-d4fd53d2d1d5>";expires=600\r\n'
    "Expires: 600\r\n"
    "Allow: INVITE,ACK,CANCEL,BYE,UPDATE,MESSAGE,OPTIONS,REFER,INFO,NOTIFY\r\n"
    "Supported: path,gruu,outbound\r\n"
    "User-Agent: JsSIP 3.13.8\r\n"
    "Content-Length: 0\r\n\r\n"
)


def jssip_register(user: str, cseq: int, authorization: str = "") -> str:
    line = f"Authorization: {authorization}\r\n" if authorization else ""
    return JSSIP_REGISTER.format(user=user, cseq=cseq, authorization=line)


async def next_item(queue: asyncio.Queue[Any]) -> Any:
    return await asyncio.wait_for(queue.get(), 5)


async def next_message(client: ClientConnection) -> Request | Response:
    frame = await asyncio.wait_for(client.recv(), 5)
    return parse_message(frame.encode() if isinstance(frame, str) else frame)


def browser(transport: SipTransportLayer) -> connect:
    """A WebSocket client offering the ``sip`` subprotocol, as JsSIP's does."""
    return connect(f"ws://127.0.0.1:{transport.ws_port}", subprotocols=[SIP_SUBPROTOCOL])


@pytest.fixture
async def layer() -> AsyncIterator[tuple[SipTransportLayer, Received]]:
    received: Received = asyncio.Queue()
    layer = SipTransportLayer(lambda message, peer: received.put_nowait((message, peer)))
    await layer.start("127.0.0.1", 0, websocket=WebSocketListeners(ws_port=0))
    yield layer, received
    await layer.close()


def ok(request: Request) -> Response:
    response = Response(status=200, reason="OK")
    for name in ("Via", "From", "To", "Call-ID", "CSeq"):
        response.headers.add(name, request.headers.get(name) or "")
    response.headers.add("Content-Length", "0")
    return response


async def test_a_browser_request_arrives_as_ws_and_is_answered_on_its_connection(
    layer: tuple[SipTransportLayer, Received],
) -> None:
    transport, received = layer
    assert transport.ws_port and transport.ws_port != transport.port
    async with connect(
        f"ws://127.0.0.1:{transport.ws_port}", subprotocols=[SIP_SUBPROTOCOL]
    ) as client:
        assert client.subprotocol == "sip"
        await client.send(jssip_register("alice", 1))
        message, peer = await next_item(received)
        assert isinstance(message, Request) and message.method == "REGISTER"
        local_port = client.local_address[1]
        assert peer == Peer("ws", "127.0.0.1", local_port)
        assert message.top_via.params["received"] == "127.0.0.1"  # §18.2.1: not its sent-by
        await transport.send_response(ok(message), peer)
        answer = await next_message(client)
        assert isinstance(answer, Response) and answer.status == 200
        # A request to the browser rides the browser's own connection, with our WS Via.
        options = Request(method="OPTIONS", uri=message.contacts[0].uri)
        options.headers.add("Via", str(transport.make_via("ws", "z9hG4bKws1")))
        for name, value in [
            ("From", "<sip:pbx@127.0.0.1>;tag=p1"),
            ("To", "<sip:alice@127.0.0.1>"),
            ("Call-ID", "ws-options"),
            ("CSeq", "1 OPTIONS"),
            ("Max-Forwards", "70"),
        ]:
            options.headers.add(name, value)
        await transport.send(options, (peer.host, peer.port), "ws")
        back = await next_message(client)
        assert isinstance(back, Request) and back.method == "OPTIONS"
        assert back.top_via.transport == "WS" and back.top_via.port == transport.ws_port
    # Once the browser has gone, nothing reaches it: the server never dials a WebSocket.
    await asyncio.sleep(0.1)
    with pytest.raises(SipTransportError, match="RFC 7118"):
        await transport.send(options, (peer.host, peer.port), "ws")


async def test_a_fragmented_message_is_reassembled(
    layer: tuple[SipTransportLayer, Received],
) -> None:
    transport, received = layer
    async with connect(
        f"ws://127.0.0.1:{transport.ws_port}", subprotocols=[SIP_SUBPROTOCOL]
    ) as client:
        text = jssip_register("alice", 1)
        await client.send([text[:50], text[50:300], text[300:]])
        message, _ = await next_item(received)
        assert isinstance(message, Request) and message.call_id == "fi8bi2oblhgvkoqkdg0lpl"


@pytest.mark.parametrize("subprotocols", [None, ["chat"]])
async def test_a_handshake_without_the_sip_subprotocol_is_refused(
    layer: tuple[SipTransportLayer, Received], subprotocols: list[str] | None
) -> None:
    transport, _ = layer
    with pytest.raises(InvalidStatus) as refused:
        async with connect(
            f"ws://127.0.0.1:{transport.ws_port}",
            subprotocols=[Subprotocol(name) for name in subprotocols] if subprotocols else None,
        ):
            pass
    assert refused.value.response.status_code == 400


async def test_a_message_past_the_sip_size_limit_closes_the_connection(
    layer: tuple[SipTransportLayer, Received],
) -> None:
    transport, received = layer
    async with connect(
        f"ws://127.0.0.1:{transport.ws_port}", subprotocols=[SIP_SUBPROTOCOL], max_size=None
    ) as client:
        await client.send(jssip_register("alice", 1) + "x" * 70_000)
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(client.recv(), 5)
        assert client.close_code == 1009
    assert received.empty()


async def test_binary_garbage_is_dropped_and_a_broken_frame_closes_the_connection(
    layer: tuple[SipTransportLayer, Received],
) -> None:
    transport, received = layer
    async with connect(
        f"ws://127.0.0.1:{transport.ws_port}", subprotocols=[SIP_SUBPROTOCOL]
    ) as client:
        await client.send(b"\x00\xff\xfe garbage \x80\x81")  # a binary message, not SIP
        await client.send(jssip_register("alice", 1))  # the connection still works
        message, _ = await next_item(received)
        assert isinstance(message, Request) and message.method == "REGISTER"
    # Bytes that are not WebSocket frames at all (unmasked, reserved bits): closed.
    reader, writer = await asyncio.open_connection("127.0.0.1", transport.ws_port)
    try:
        writer.write(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            b"Sec-WebSocket-Protocol: sip\r\n\r\n"
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 101")
        writer.write(b"\xf1\x05hello")  # RSV bits set, no mask
        closing = await asyncio.wait_for(reader.read(), 5)  # a close frame (1002), then EOF
        assert closing[:1] == b"\x88" and closing[2:4] == (1002).to_bytes(2, "big")
        # Not an HTTP request: the connection is closed without an answer.
        reader2, writer2 = await asyncio.open_connection("127.0.0.1", transport.ws_port)
        writer2.write(b"\x16\x03\x01 not http at all\r\n\r\n")
        assert await asyncio.wait_for(reader2.read(), 5) == b""
        writer2.close()
    finally:
        writer.close()
    assert received.empty()


async def test_a_socket_that_never_completes_the_handshake_is_closed(
    layer: tuple[SipTransportLayer, Received],
) -> None:
    transport, _ = layer
    reader, writer = await asyncio.open_connection("127.0.0.1", transport.ws_port)
    try:
        writer.write(b"GET / HTTP/1.1\r\n")  # and then nothing
        assert await asyncio.wait_for(reader.read(), HANDSHAKE_TIMEOUT + 5) == b""
    finally:
        writer.close()


async def test_a_browser_registers_with_digest_over_ws_and_is_called_over_its_connection() -> None:
    agent = await UserAgent.listen(
        "127.0.0.1",
        0,
        websocket=WebSocketListeners(ws_port=0),
        timers=FAST,
        lookup_ha1=lookup_ha1,
        realm_for=lambda request: REALM,
    )
    try:
        url = f"ws://127.0.0.1:{agent.transport.ws_port}"
        async with connect(url, subprotocols=[SIP_SUBPROTOCOL]) as client:
            await client.send(jssip_register("alice", 1))
            challenge = await next_message(client)
            assert isinstance(challenge, Response) and challenge.status == 401
            parsed = parse_challenge(challenge.headers.get("WWW-Authenticate") or "")
            authorization = build_authorization(
                parsed, method="REGISTER", uri="sip:127.0.0.1", username="alice", password="s3cret"
            )
            await client.send(jssip_register("alice", 2, authorization))
            registered = await next_message(client)
            assert isinstance(registered, Response) and registered.status == 200
            (binding,) = agent.lookup("sip:alice@127.0.0.1")
            assert binding.source is not None and binding.source.transport == "ws"
            assert binding.contact.endswith(".invalid;transport=ws")
            destination = Peer("ws", binding.source.host, binding.source.port)
            call = await agent.place_call(
                binding.contact,
                from_uri="sip:pbx@127.0.0.1",
                offer=None,
                late_answer=lambda offer: offer,
                destination=destination,
            )
            invite = await next_message(client)
            assert isinstance(invite, Request) and invite.method == "INVITE"
            assert str(invite.uri) == binding.contact
            assert invite.top_via.transport == "WS"
            assert invite.contacts[0].uri.params.get("transport") == "ws"
            assert invite.contacts[0].uri.port == agent.transport.ws_port
            busy = ok(invite)
            busy.status, busy.reason = 486, "Busy Here"
            busy.headers.set("To", f"{invite.headers.get('To')};tag=browser1")
            await client.send(busy.encode().decode())
            ack = await next_message(client)  # §17.1.1.3: the ACK to a failure, same way
            assert isinstance(ack, Request) and ack.method == "ACK"
            with pytest.raises(CallFailed) as failed:
                await asyncio.wait_for(call.wait_answer(), 5)
            assert failed.value.status == 486
    finally:
        await agent.close()


@pytest.fixture
def certificates(tmp_path: Path) -> Certificates:
    return make_certificates(tmp_path / "certs")


async def test_wss_uses_the_sip_edge_certificate(certificates: Certificates) -> None:
    received: Received = asyncio.Queue()
    transport = SipTransportLayer(lambda message, peer: received.put_nowait((message, peer)))
    await transport.start(
        "127.0.0.1",
        0,
        tls=server_context(certificates.cert, certificates.key),
        tls_port=0,
        websocket=WebSocketListeners(ws_port=None, wss_port=0),
    )
    try:
        assert transport.wss_port and not transport.ws_port
        context: ssl.SSLContext = client_context(certificates.ca)
        url = f"wss://localhost:{transport.wss_port}"
        async with connect(url, subprotocols=[SIP_SUBPROTOCOL], ssl=context) as client:
            await client.send(jssip_register("alice", 1).replace("SIP/2.0/WS ", "SIP/2.0/WSS "))
            message, peer = await next_item(received)
            assert peer.transport == "wss" and isinstance(message, Request)
            await transport.send_response(ok(message), peer)
            assert (await next_message(client)).status == 200  # type: ignore[union-attr]
    finally:
        await transport.close()


async def test_wss_without_a_tls_certificate_is_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="WSS needs"):
        await SipTransportLayer().start("127.0.0.1", 0, websocket=WebSocketListeners(wss_port=0))
    with pytest.raises(ConfigError, match="sip_wss_port needs"):
        load_settings(data_dir=tmp_path, sip_wss_port=24443)
    with pytest.raises(ConfigError, match="sip_ws_port must differ"):
        load_settings(data_dir=tmp_path, sip_ws_port=5080)
