"""SIP over TLS on loopback: listener, verification, connection reuse, Via/Contact, settings."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from tests.tls_certs import Certificates, make_certificates

from sautikit.app import sip_tls_contexts
from sautikit.config import ConfigError, load_settings
from sautikit.sip.message import Request, Response, parse_message
from sautikit.sip.tls import TlsConfigError, client_context, server_context
from sautikit.sip.transport import (
    Peer,
    SipTransportError,
    SipTransportLayer,
    default_port,
    uri_transport,
)
from sautikit.sip.uri import SipUri

Received = asyncio.Queue[tuple[Request | Response, Peer]]


def request(method: str, via: str, call_id: str = "tls-1") -> Request:
    message = Request(method=method, uri=SipUri.parse("sip:pbx@127.0.0.1;transport=tls"))
    for name, value in [
        ("Via", via),
        ("From", "<sip:probe@127.0.0.1>;tag=f1"),
        ("To", "<sip:pbx@127.0.0.1>"),
        ("Call-ID", call_id),
        ("CSeq", f"1 {method}"),
        ("Max-Forwards", "70"),
    ]:
        message.headers.add(name, value)
    return message


async def next_item(queue: asyncio.Queue[Any]) -> Any:
    return await asyncio.wait_for(queue.get(), 5)


@pytest.fixture
def certificates(tmp_path: Path) -> Certificates:
    return make_certificates(tmp_path / "certs")


@pytest.fixture
async def server(
    certificates: Certificates,
) -> AsyncIterator[tuple[SipTransportLayer, Received]]:
    received: Received = asyncio.Queue()
    layer = SipTransportLayer(lambda message, peer: received.put_nowait((message, peer)))
    await layer.start(
        "127.0.0.1",
        0,
        tls=server_context(certificates.cert, certificates.key),
        tls_port=0,
    )
    yield layer, received
    await layer.close()


async def test_a_phone_speaks_sip_over_tls_and_is_answered_on_its_connection(
    server: tuple[SipTransportLayer, Received], certificates: Certificates
) -> None:
    layer, received = server
    assert layer.tls_port and layer.tls_port != layer.port
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", layer.tls_port, ssl=client_context(certificates.ca)
    )
    try:
        local_port = writer.get_extra_info("sockname")[1]
        writer.write(b"\r\n\r\n")  # an RFC 5626 keep-alive first: skipped
        writer.write(request("OPTIONS", "SIP/2.0/TLS 10.0.0.7:5061;branch=z9hG4bK1;rport").encode())
        message, peer = await next_item(received)
        assert peer == Peer("tls", "127.0.0.1", local_port)
        assert isinstance(message, Request)
        assert message.top_via.params["rport"] == str(local_port)
        response = Response(status=200, reason="OK")
        for name in ("Via", "From", "To", "Call-ID", "CSeq"):
            response.headers.add(name, message.headers.get(name) or "")
        response.headers.add("Content-Length", "0")
        await layer.send_response(response, peer)
        answer = parse_message(await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5))
        assert isinstance(answer, Response) and answer.status == 200
        # RFC 5923 style reuse: a request to the phone rides the phone's own connection.
        via = str(layer.make_via("tls", "z9hG4bK2"))
        await layer.send(request("OPTIONS", via), (peer.host, peer.port), "tls")
        back = parse_message(await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5))
        assert isinstance(back, Request) and back.method == "OPTIONS"
        assert back.top_via.transport == "TLS" and back.top_via.port == layer.tls_port
    finally:
        writer.close()


async def test_connecting_out_over_tls_verifies_the_server_and_hears_its_answers(
    server: tuple[SipTransportLayer, Received], certificates: Certificates
) -> None:
    layer, received = server
    answers: Received = asyncio.Queue()
    client = SipTransportLayer(lambda message, peer: answers.put_nowait((message, peer)))
    await client.start("127.0.0.1", 0, tls_client=client_context(certificates.ca))
    try:
        via = client.make_via("tls", "z9hG4bKout")
        await client.send(request("OPTIONS", str(via)), ("127.0.0.1", layer.tls_port), "tls")
        message, peer = await next_item(received)
        assert peer.transport == "tls"
        response = Response(status=200, reason="OK")
        for name in ("Via", "From", "To", "Call-ID", "CSeq"):
            response.headers.add(name, message.headers.get(name) or "")
        await layer.send_response(response, peer)
        answer, source = await next_item(answers)
        assert isinstance(answer, Response) and answer.status == 200
        assert source == Peer("tls", "127.0.0.1", layer.tls_port)
        # A name works as well as an IP: the certificate names localhost too.
        await client.send(
            request("OPTIONS", str(via), "tls-2"), ("localhost", layer.tls_port), "tls"
        )
        assert (await next_item(received))[1].transport == "tls"
    finally:
        await client.close()


async def test_a_server_whose_certificate_we_do_not_trust_is_refused(
    server: tuple[SipTransportLayer, Received], tmp_path: Path
) -> None:
    layer, received = server
    stranger = make_certificates(tmp_path / "other", ca_name="Someone else")
    client = SipTransportLayer()
    await client.start("127.0.0.1", 0, tls_client=client_context(stranger.ca))
    try:
        with pytest.raises(SipTransportError, match="certificate verify failed"):
            await client.send(
                request("OPTIONS", str(client.make_via("tls", "z9hG4bKx"))),
                ("127.0.0.1", layer.tls_port),
                "tls",
            )
        assert received.empty()
    finally:
        await client.close()


def test_sips_uris_and_transport_tls_mean_tls_at_5061() -> None:
    assert uri_transport(SipUri.parse("sips:alice@example.com")) == "tls"
    assert uri_transport(SipUri.parse("sip:alice@example.com;transport=TLS")) == "tls"
    assert uri_transport(SipUri.parse("sip:alice@example.com;transport=tcp")) == "tcp"
    assert uri_transport(SipUri.parse("sip:alice@example.com;transport=sctp")) is None
    assert uri_transport(SipUri.parse("sip:alice@example.com")) is None
    assert default_port("tls") == 5061 and default_port("udp") == 5060


async def test_contact_over_tls_names_the_tls_port(
    server: tuple[SipTransportLayer, Received],
) -> None:
    from sautikit.sip.useragent import UserAgent

    layer, _ = server
    agent = UserAgent(layer)
    contact = agent.contact("tls").uri
    assert (contact.port, contact.params) == (layer.tls_port, {"transport": "tls"})
    assert agent.contact("udp").uri.port == layer.port


def test_tls_settings_need_both_a_certificate_and_a_key(certificates: Certificates) -> None:
    with pytest.raises(ConfigError, match="sip_tls_cert and sip_tls_key"):
        load_settings(sip_tls_cert=str(certificates.cert))
    settings = load_settings(sip_tls_cert=str(certificates.cert), sip_tls_key=str(certificates.key))
    assert settings.sip_tls_enabled and settings.sip_tls_port == 5061
    server_side, client_side = sip_tls_contexts(settings)
    assert isinstance(server_side, ssl.SSLContext)
    assert client_side.verify_mode == ssl.CERT_REQUIRED and client_side.check_hostname


def test_an_unreadable_certificate_is_a_clear_config_error(
    certificates: Certificates, tmp_path: Path
) -> None:
    settings = load_settings(sip_tls_cert=str(tmp_path / "missing.pem"), sip_tls_key="x.key")
    with pytest.raises(ConfigError, match=r"missing\.pem"):
        sip_tls_contexts(settings)
    with pytest.raises(TlsConfigError, match="CA file"):
        client_context(tmp_path / "nope.pem")


async def test_a_sips_call_between_two_user_agents_stays_on_tls_end_to_end(
    certificates: Certificates,
) -> None:
    """RFC 5630: an INVITE to a ``sips:`` URI goes over TLS (port from the URI), is answered
    with a ``sips:`` Contact, and the whole dialog (ACK, BYE) stays on TLS."""
    from sautikit.sip import CallState, EndReason, IncomingCall, SdpSession, UserAgent
    from sautikit.sip.registrar_service import address_of_record

    incoming: asyncio.Queue[IncomingCall] = asyncio.Queue()

    async def queue(call: IncomingCall) -> None:
        incoming.put_nowait(call)

    bob = await UserAgent.listen(
        "127.0.0.1",
        0,
        tls=server_context(certificates.cert, certificates.key),
        tls_port=0,
        on_incoming_call=queue,
    )
    alice = await UserAgent.listen("127.0.0.1", 0, tls_client=client_context(certificates.ca))
    try:
        call = await alice.place_call(
            f"sips:bob@localhost:{bob.transport.tls_port}",
            from_uri="sips:alice@127.0.0.1",
            offer=SdpSession("127.0.0.1").offer(4000),
        )
        callee = await next_item(incoming)
        assert callee.source.transport == "tls"
        assert callee.offer is not None
        answer, _ = SdpSession("127.0.0.1").answer(callee.offer, 5000)
        answering = asyncio.create_task(callee.answer(answer))
        await asyncio.wait_for(call.wait_answer(), 5)
        await asyncio.wait_for(answering, 5)
        assert callee.state is CallState.ANSWERED  # the ACK came, over TLS
        assert call.dialog is not None
        remote = call.dialog.remote_target
        assert (remote.scheme, remote.port) == ("sips", bob.transport.tls_port)
        assert call.dialog.next_hop().transport == "tls"
        assert (await call.hangup()).reason is EndReason.LOCAL_HANGUP
        assert (await asyncio.wait_for(callee.terminated, 5)).reason is EndReason.REMOTE_HANGUP
    finally:
        await alice.close()
        await bob.close()
    # A phone registering as sips:alice is the same alice as sip:alice.
    assert address_of_record(SipUri.parse("sips:alice@example.com")) == "sip:alice"


async def test_a_taken_sip_port_releases_the_tls_port_too(certificates: Certificates) -> None:
    taken = SipTransportLayer()
    await taken.start("127.0.0.1", 0)
    layer = SipTransportLayer()
    try:
        with pytest.raises(OSError):
            await layer.start(
                "127.0.0.1",
                taken.port,
                tls=server_context(certificates.cert, certificates.key),
                tls_port=0,
            )
        assert layer.tls_port == 0 and layer._tls_server is None
    finally:
        await layer.close()
        await taken.close()
