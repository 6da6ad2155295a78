"""Two Sautikit user agents calling each other on loopback, with a tiny T1 to stay fast."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.sip.test_transaction import UdpPhone

from sautikit.sip import (
    CallEnd,
    CallError,
    CallFailed,
    CallState,
    EndReason,
    IncomingCall,
    NoCommonCodec,
    SdpSession,
    SessionDescription,
    TimerConfig,
    UserAgent,
    compute_ha1,
    negotiate_answer,
    parse_sdp,
)
from sautikit.sip.digest import DigestAuthenticator, build_authorization, parse_challenge
from sautikit.sip.message import Request, Response, parse_message
from sautikit.sip.registrar import Source
from sautikit.sip.sdp import PCMA, PCMU
from sautikit.sip.transaction import ServerTransaction, TransactionLayer
from sautikit.sip.transport import Peer, SipTransportLayer
from sautikit.sip.uri import SipUri

FAST = TimerConfig(t1=0.01, t2=0.04, t4=0.05)
WAIT = 5.0

MakeAgent = Callable[..., Awaitable[UserAgent]]
IncomingQueue = asyncio.Queue[IncomingCall]


@pytest.fixture
async def make_agent() -> AsyncIterator[MakeAgent]:
    agents: list[UserAgent] = []

    async def make(transport: SipTransportLayer | None = None, **options: Any) -> UserAgent:
        options.setdefault("timers", FAST)
        if transport is None:
            agent = await UserAgent.listen("127.0.0.1", 0, tcp=False, **options)
        else:
            await transport.start("127.0.0.1", 0, tcp=False)
            agent = UserAgent(transport, **options)
        agents.append(agent)
        return agent

    yield make
    for agent in agents:
        await agent.close()


def queue_calls(queue: IncomingQueue) -> Callable[[IncomingCall], Awaitable[None]]:
    async def handler(call: IncomingCall) -> None:
        queue.put_nowait(call)

    return handler


def target(agent: UserAgent, user: str = "bob") -> str:
    return f"sip:{user}@127.0.0.1:{agent.transport.port}"


async def next_item(queue: asyncio.Queue[Any]) -> Any:
    return await asyncio.wait_for(queue.get(), WAIT)


async def ended(call: Any) -> CallEnd:
    return await asyncio.wait_for(asyncio.shield(call.terminated), WAIT)


def offer(port: int = 4000) -> SessionDescription:
    return SdpSession("127.0.0.1").offer(port)


def answer_to(call: IncomingCall, port: int = 5000) -> SessionDescription:
    assert call.offer is not None
    return negotiate_answer(call.offer, "127.0.0.1", port)[0]


async def test_answered_call_gets_the_answer_and_caller_bye_ends_both_sides(
    make_agent: MakeAgent,
) -> None:
    incoming: IncomingQueue = asyncio.Queue()
    bob = await make_agent(on_incoming_call=queue_calls(incoming))
    alice = await make_agent()
    call = await alice.place_call(target(bob), from_uri="sip:alice@127.0.0.1", offer=offer())
    states: list[CallState] = []
    call.on_state_change = states.append

    ringing = await next_item(incoming)
    assert ringing.offer is not None and ringing.offer.media[0].port == 4000
    ringing.ring()
    answering = asyncio.create_task(ringing.answer(answer_to(ringing)))
    remote = await asyncio.wait_for(call.wait_answer(), WAIT)
    assert remote is not None and remote.media[0].port == 5000
    assert await asyncio.wait_for(answering, WAIT) is None
    assert call.media is not None and call.media.codec == "PCMU"
    assert ringing.state is CallState.ANSWERED
    assert CallState.RINGING in states and states[-1] is CallState.ANSWERED

    end = await call.hangup()
    assert end.reason is EndReason.LOCAL_HANGUP
    assert (await ended(ringing)).reason is EndReason.REMOTE_HANGUP
    assert alice.calls == [] and bob.calls == []


async def test_callee_bye_ends_the_callers_call(make_agent: MakeAgent) -> None:
    incoming: IncomingQueue = asyncio.Queue()
    bob = await make_agent(on_incoming_call=queue_calls(incoming))
    alice = await make_agent()
    call = await alice.place_call(target(bob), from_uri="sip:alice@127.0.0.1", offer=offer())
    callee = await next_item(incoming)
    await asyncio.wait_for(callee.answer(answer_to(callee)), WAIT)
    await asyncio.wait_for(call.wait_answer(), WAIT)

    assert (await callee.hangup()).reason is EndReason.LOCAL_HANGUP
    assert (await ended(call)).reason is EndReason.REMOTE_HANGUP


async def test_busy_callee_fails_the_call_with_486(make_agent: MakeAgent) -> None:
    async def busy(call: IncomingCall) -> None:
        call.reject(486)

    bob = await make_agent(on_incoming_call=busy)
    alice = await make_agent()
    call = await alice.place_call(target(bob), from_uri="sip:alice@127.0.0.1", offer=offer())
    with pytest.raises(CallFailed) as failure:
        await asyncio.wait_for(call.wait_answer(), WAIT)
    assert failure.value.status == 486
    end = await ended(call)
    assert (end.reason, end.status) == (EndReason.FAILED, 486)
    assert call.final_status == 486 and call.final_reason == "Busy Here"


async def test_cancel_before_answer_ends_both_sides_with_487(make_agent: MakeAgent) -> None:
    incoming: IncomingQueue = asyncio.Queue()
    bob = await make_agent(on_incoming_call=queue_calls(incoming))
    alice = await make_agent()
    call = await alice.place_call(target(bob), from_uri="sip:alice@127.0.0.1", offer=offer())
    callee = await next_item(incoming)
    callee.ring()
    await reached(call, CallState.RINGING)

    end = await asyncio.wait_for(call.cancel(), WAIT)
    assert (end.reason, end.status) == (EndReason.LOCAL_CANCEL, 487)
    callee_end = await ended(callee)
    assert (callee_end.reason, callee_end.status) == (EndReason.REMOTE_CANCEL, 487)
    with pytest.raises(CallError):
        await callee.answer(answer_to(callee))


async def test_ring_timeout_cancels_the_call(make_agent: MakeAgent) -> None:
    incoming: IncomingQueue = asyncio.Queue()
    bob = await make_agent(on_incoming_call=queue_calls(incoming))
    alice = await make_agent()
    call = await alice.place_call(
        target(bob), from_uri="sip:alice@127.0.0.1", offer=offer(), ring_timeout=0.2
    )
    (await next_item(incoming)).ring()
    end = await ended(call)
    assert (end.reason, end.status) == (EndReason.RING_TIMEOUT, 487)
    with pytest.raises(CallFailed) as failure:
        await call.wait_answer()
    assert failure.value.status == 487


async def test_early_media_sdp_from_183_is_exposed(make_agent: MakeAgent) -> None:
    incoming: IncomingQueue = asyncio.Queue()
    bob = await make_agent(on_incoming_call=queue_calls(incoming))
    alice = await make_agent()
    call = await alice.place_call(target(bob), from_uri="sip:alice@127.0.0.1", offer=offer())
    callee = await next_item(incoming)
    callee.progress(answer_to(callee, port=5002))
    await reached(call, CallState.EARLY_MEDIA)
    assert call.early_sdp is not None and call.early_sdp.media[0].port == 5002
    callee.reject(480)
    assert (await ended(call)).status == 480


async def test_offerless_invite_gets_our_offer_in_200_and_answer_in_ack(
    make_agent: MakeAgent,
) -> None:
    incoming: IncomingQueue = asyncio.Queue()
    bob = await make_agent(on_incoming_call=queue_calls(incoming))
    alice = await make_agent()

    def late_answer(their_offer: SessionDescription) -> SessionDescription:
        return negotiate_answer(their_offer, "127.0.0.1", 4100)[0]

    call = await alice.place_call(
        target(bob), from_uri="sip:alice@127.0.0.1", offer=None, late_answer=late_answer
    )
    callee = await next_item(incoming)
    assert callee.offer is None
    answer_in_ack = await asyncio.wait_for(callee.answer(offer(5100)), WAIT)
    assert answer_in_ack is not None and answer_in_ack.media[0].port == 4100
    remote = await asyncio.wait_for(call.wait_answer(), WAIT)
    assert remote is not None and remote.media[0].port == 5100
    await call.hangup()


async def test_offer_without_common_codec_is_refused_with_488(make_agent: MakeAgent) -> None:
    async def strict(call: IncomingCall) -> None:
        assert call.offer is not None
        await call.answer(negotiate_answer(call.offer, "127.0.0.1", 5000, supported=[PCMA])[0])

    bob = await make_agent(on_incoming_call=strict)
    alice = await make_agent()
    only_pcmu = SdpSession("127.0.0.1").offer(4000, codecs=[PCMU])
    call = await alice.place_call(target(bob), from_uri="sip:alice@127.0.0.1", offer=only_pcmu)
    with pytest.raises(CallFailed) as failure:
        await asyncio.wait_for(call.wait_answer(), WAIT)
    assert failure.value.status == 488


async def reached(call: Any, state: CallState) -> None:
    """Wait until ``call`` enters ``state`` (told by its state-change callback)."""
    seen = asyncio.Event()
    call.on_state_change = lambda new: seen.set() if new is state else None
    if call.state is not state:
        await asyncio.wait_for(seen.wait(), WAIT)


async def _answered_pair(
    make_agent: MakeAgent, **bob_options: Any
) -> tuple[UserAgent, UserAgent, Any, IncomingCall]:
    incoming: IncomingQueue = asyncio.Queue()
    bob = await make_agent(on_incoming_call=queue_calls(incoming), **bob_options)
    alice = await make_agent()
    call = await alice.place_call(target(bob), from_uri="sip:alice@127.0.0.1", offer=offer())
    callee = await next_item(incoming)
    await asyncio.wait_for(callee.answer(answer_to(callee)), WAIT)
    await asyncio.wait_for(call.wait_answer(), WAIT)
    return alice, bob, call, callee


async def test_caller_puts_callee_on_hold_and_back(make_agent: MakeAgent) -> None:
    _, _, call, callee = await _answered_pair(make_agent)
    session = SdpSession("127.0.0.1")
    hold = await asyncio.wait_for(call.reinvite(session.offer(4000, direction="sendonly")), WAIT)
    assert hold.media[0].attribute("recvonly") is not None or "a=recvonly" in str(hold)
    assert callee.remote_on_hold and callee.media is not None and not callee.media.can_send
    unhold = await asyncio.wait_for(call.reinvite(session.offer(4000)), WAIT)
    assert "a=sendrecv" in str(unhold)
    assert not callee.remote_on_hold
    assert unhold.origin.session_version == hold.origin.session_version + 1
    await call.hangup()


async def test_callee_puts_caller_on_hold_with_c_zero_and_changes_codec(
    make_agent: MakeAgent,
) -> None:
    _, _, call, callee = await _answered_pair(make_agent)
    held = SdpSession("0.0.0.0").offer(5000, direction="sendrecv")
    answer = await asyncio.wait_for(callee.reinvite(held), WAIT)
    assert "a=recvonly" in str(answer)
    assert call.remote_on_hold
    pcma_only = SdpSession("127.0.0.1").offer(5000, codecs=[PCMA])
    answer = await asyncio.wait_for(callee.reinvite(pcma_only), WAIT)
    assert "PCMA/8000" in str(answer) and "PCMU" not in str(answer)
    assert call.media is not None and call.media.codec == "PCMA"
    await callee.hangup()
    assert (await ended(call)).reason is EndReason.REMOTE_HANGUP


async def test_reinvite_with_no_common_codec_gets_488_and_the_call_stays_up(
    make_agent: MakeAgent,
) -> None:
    _, _, call, callee = await _answered_pair(make_agent)
    unusable = parse_sdp(
        str(offer())
        .replace("RTP/AVP 0 8 101", "RTP/AVP 9")
        .replace("a=rtpmap:0 PCMU/8000", "a=rtpmap:9 G722/8000")
    )
    with pytest.raises(CallFailed) as failure:
        await asyncio.wait_for(call.reinvite(unusable), WAIT)
    assert failure.value.status == 488
    assert call.state is CallState.ANSWERED and callee.state is CallState.ANSWERED
    await call.hangup()


class AckDroppingTransport(SipTransportLayer):
    """A transport that loses every ACK it is asked to send, and counts 200s to INVITE."""

    def __init__(self) -> None:
        super().__init__()
        self.invite_oks = 0

    async def send(self, message: Request | Response, address: Any, transport: Any = "udp") -> None:
        if isinstance(message, Request) and message.method == "ACK":
            return
        await super().send(message, address, transport)

    def _receive(self, data: bytes, source: Any) -> None:
        message = parse_message(data)
        if isinstance(message, Response) and message.cseq.method == "INVITE":
            self.invite_oks += message.status == 200
        super()._receive(data, source)


async def test_200_is_resent_until_the_ack_and_bye_follows_64_t1_without_one(
    make_agent: MakeAgent,
) -> None:
    incoming: IncomingQueue = asyncio.Queue()
    bob = await make_agent(on_incoming_call=queue_calls(incoming))
    lossy = AckDroppingTransport()
    alice = await make_agent(lossy)
    call = await alice.place_call(target(bob), from_uri="sip:alice@127.0.0.1", offer=offer())
    callee = await next_item(incoming)
    with pytest.raises(CallError):
        await asyncio.wait_for(callee.answer(answer_to(callee)), WAIT)
    assert (await ended(callee)).reason is EndReason.ACK_TIMEOUT
    assert (await ended(call)).reason is EndReason.REMOTE_HANGUP
    assert lossy.invite_oks > 3  # the first 200 and its retransmissions, each re-ACKed


async def test_invite_from_a_device_is_challenged_and_the_caller_answers_with_digest(
    make_agent: MakeAgent,
) -> None:
    incoming: IncomingQueue = asyncio.Queue()
    ha1 = {alg: compute_ha1("alice", "pbx.test", "s3cret", alg) for alg in ("MD5", "SHA-256")}

    def lookup(username: str, realm: str, algorithm: str) -> str | None:
        return ha1[algorithm] if (username, realm) == ("alice", "pbx.test") else None

    bob = await make_agent(
        on_incoming_call=queue_calls(incoming),
        lookup_ha1=lookup,
        realm_for=lambda request: "pbx.test",
        authenticate_invite=lambda request, source: True,
    )
    alice = await make_agent()
    call = await alice.place_call(
        target(bob), from_uri="sip:alice@pbx.test", offer=offer(), credentials=("alice", "s3cret")
    )
    callee = await next_item(incoming)
    assert callee.authenticated_user == "alice"
    assert "Proxy-Authorization" in callee.request.headers
    assert callee.request.call_id == call.call_id
    await callee.answer(answer_to(callee))
    await asyncio.wait_for(call.wait_answer(), WAIT)
    await call.hangup()

    intruder = await alice.place_call(
        target(bob), from_uri="sip:mallory@pbx.test", offer=offer(), credentials=("mallory", "x")
    )
    with pytest.raises(CallFailed) as failure:
        await asyncio.wait_for(intruder.wait_answer(), WAIT)
    # Challenged again, as a wrong password would be: the caller gives up after one try.
    assert failure.value.status == 407
    assert incoming.empty()


async def test_unknown_requests_get_405_481_and_options_200(make_agent: MakeAgent) -> None:
    bob = await make_agent()
    alice = await make_agent()
    layer = alice._layer
    results = {}
    for method, to_tag in (("OPTIONS", None), ("MESSAGE", None), ("BYE", "gone")):
        request = Request(method=method, uri=SipUri.parse(target(bob)))
        request.headers.add("From", "<sip:alice@127.0.0.1>;tag=a1")
        request.headers.add("To", f"<{target(bob)}>" + (f";tag={to_tag}" if to_tag else ""))
        request.headers.add("Call-ID", f"probe-{method}")
        request.headers.add("CSeq", f"1 {method}")
        destination = bob.transport.host, bob.transport.port
        transaction = layer.send_request(request, Peer("udp", *destination))
        results[method] = await asyncio.wait_for(transaction.final_response, WAIT)
    options = results["OPTIONS"]
    assert options.status == 200
    assert "INVITE" in (options.headers.get("Allow") or "")
    assert options.headers.get("Accept") == "application/sdp" and "Supported" in options.headers
    assert results["MESSAGE"].status == 405 and "BYE" in (
        results["MESSAGE"].headers.get("Allow") or ""
    )
    assert results["BYE"].status == 481


async def test_handler_that_raises_no_common_codec_answers_488(make_agent: MakeAgent) -> None:
    async def refuse(call: IncomingCall) -> None:
        raise NoCommonCodec("nothing we speak")

    bob = await make_agent(on_incoming_call=refuse)
    alice = await make_agent()
    call = await alice.place_call(target(bob), from_uri="sip:alice@127.0.0.1", offer=offer())
    assert (await ended(call)).status == 488


# -- registrar ---------------------------------------------------------------------------

REALM = "pbx.test"
PASSWORDS = {"alice": "s3cret", "bob": "hunter2"}


def lookup_ha1(username: str, realm: str, algorithm: str) -> str | None:
    password = PASSWORDS.get(username)
    if password is None or realm != REALM:
        return None
    return compute_ha1(username, realm, password, algorithm)


class SilentUser:
    """A transaction user for a bare client layer: it sends requests and expects none."""

    def on_request(self, transaction: ServerTransaction) -> None:
        transaction.respond(transaction.request.create_response(501))

    def on_ack(self, ack: Request, source: Peer) -> None:
        """Nothing to acknowledge."""

    def on_stray_response(self, response: Response, source: Peer) -> None:
        """Nothing is waiting for it."""


@pytest.fixture
async def client() -> AsyncIterator[TransactionLayer]:
    transport = SipTransportLayer()
    await transport.start("127.0.0.1", 0, tcp=False)
    layer = TransactionLayer(transport, SilentUser(), FAST)
    yield layer
    layer.close()
    await transport.close()


async def send(client: TransactionLayer, request: Request, agent: UserAgent) -> Response:
    transaction = client.send_request(request, Peer("udp", "127.0.0.1", agent.transport.port))
    return await asyncio.wait_for(transaction.final_response, WAIT)


def register_request(
    client: TransactionLayer,
    agent: UserAgent,
    user: str,
    *,
    cseq: int,
    expires: int | None = 300,
    contact: str | None = None,
) -> Request:
    request = Request(method="REGISTER", uri=SipUri.parse(f"sip:{REALM}"))
    request.headers.add("From", f"<sip:{user}@{REALM}>;tag=reg-{user}")
    request.headers.add("To", f"<sip:{user}@{REALM}>")
    request.headers.add("Call-ID", f"register-{user}@127.0.0.1")
    request.headers.add("CSeq", f"{cseq} REGISTER")
    request.headers.add("Contact", contact or f"<sip:{user}@127.0.0.1:{client.transport.port}>")
    if expires is not None:
        request.headers.add("Expires", str(expires))
    return request


async def register(
    client: TransactionLayer,
    agent: UserAgent,
    user: str,
    password: str,
    *,
    algorithm: str = "SHA-256",
    cseq: int = 1,
    **options: Any,
) -> Response:
    """REGISTER, answer the 401 with ``algorithm``'s challenge, return the final answer."""
    challenge_response = await send(
        client, register_request(client, agent, user, cseq=cseq, **options), agent
    )
    assert challenge_response.status == 401
    challenge = next(
        parsed
        for value in challenge_response.headers.get_all("WWW-Authenticate")
        if (parsed := parse_challenge(value)).algorithm == algorithm
    )
    request = register_request(client, agent, user, cseq=cseq + 1, **options)
    request.headers.add(
        "Authorization",
        build_authorization(
            challenge, method="REGISTER", uri=str(request.uri), username=user, password=password
        ),
    )
    return await send(client, request, agent)


async def test_register_is_challenged_with_md5_by_default(
    make_agent: MakeAgent, client: TransactionLayer
) -> None:
    agent = await make_agent(lookup_ha1=lookup_ha1, realm_for=lambda r: REALM)
    first = await send(client, register_request(client, agent, "alice", cseq=1), agent)
    algorithms = [parse_challenge(v).algorithm for v in first.headers.get_all("WWW-Authenticate")]
    assert first.status == 401 and algorithms == ["MD5"]
    assert (await register(client, agent, "alice", "s3cret", algorithm="MD5")).status == 200


async def test_register_is_challenged_with_sha256_then_md5_and_binds_the_contact(
    make_agent: MakeAgent, client: TransactionLayer
) -> None:
    now = [1000.0]
    agent = await make_agent(
        lookup_ha1=lookup_ha1,
        realm_for=lambda r: REALM,
        clock=lambda: now[0],
        digest_algorithms=("SHA-256", "MD5"),
    )
    first = await send(client, register_request(client, agent, "alice", cseq=1), agent)
    assert first.status == 401
    algorithms = [parse_challenge(v).algorithm for v in first.headers.get_all("WWW-Authenticate")]
    assert algorithms == ["SHA-256", "MD5"]

    ok = await register(client, agent, "alice", "s3cret", cseq=2)
    assert ok.status == 200
    contact = f"sip:alice@127.0.0.1:{client.transport.port}"
    assert ok.headers.get_all("Contact") == [f"<{contact}>;expires=300"]
    assert ok.headers.get("Expires") == "300"
    assert [b.contact for b in agent.lookup(f"sip:alice@{REALM}")] == [contact]
    assert agent.lookup(f"sip:alice@{REALM}")[0].source == Source(
        "127.0.0.1", client.transport.port, "udp"
    )

    now[0] += 301
    assert agent.lookup(f"sip:alice@{REALM}") == []


async def test_a_binding_is_found_by_its_user_whatever_host_the_phone_registered_to(
    make_agent: MakeAgent, client: TransactionLayer
) -> None:
    agent = await make_agent(lookup_ha1=lookup_ha1, realm_for=lambda r: REALM)
    assert (await register(client, agent, "alice", "s3cret", algorithm="MD5")).status == 200
    for host in (REALM, "203.0.113.5", "0.0.0.0", "sip.example.com"):
        assert len(agent.lookup(f"sip:alice@{host}")) == 1
    assert agent.lookup("sip:bob@203.0.113.5") == []


async def test_register_with_md5_credentials_and_zero_expiry_unbinds(
    make_agent: MakeAgent, client: TransactionLayer
) -> None:
    agent = await make_agent(lookup_ha1=lookup_ha1, realm_for=lambda r: REALM)
    assert (await register(client, agent, "bob", "hunter2", algorithm="MD5")).status == 200
    assert len(agent.lookup(f"sip:bob@{REALM}")) == 1
    gone = await register(client, agent, "bob", "hunter2", algorithm="MD5", cseq=3, expires=0)
    assert gone.status == 200 and "Contact" not in gone.headers
    assert agent.lookup(f"sip:bob@{REALM}") == []


async def test_register_refusals_423_for_brief_expiry_401_for_strangers_403_for_wrong_aor(
    make_agent: MakeAgent, client: TransactionLayer
) -> None:
    agent = await make_agent(lookup_ha1=lookup_ha1, realm_for=lambda r: REALM)
    brief = await register(client, agent, "alice", "s3cret", algorithm="MD5", expires=10)
    assert brief.status == 423 and brief.headers.get("Min-Expires") == "60"
    # An unknown user and a known one with a wrong password get the same answer.
    stranger = await register(client, agent, "mallory", "guess", algorithm="MD5", cseq=5)
    wrong = await register(client, agent, "alice", "guess", algorithm="MD5", cseq=7)
    assert stranger.status == wrong.status == 401
    assert [parse_challenge(v).algorithm for v in stranger.headers.get_all("WWW-Authenticate")] == [
        parse_challenge(v).algorithm for v in wrong.headers.get_all("WWW-Authenticate")
    ]

    # bob's valid credentials on alice's address-of-record
    request = register_request(client, agent, "alice", cseq=9)
    challenge = parse_challenge(
        (await send(client, request, agent)).headers.get_all("WWW-Authenticate")[0]
    )
    request = register_request(client, agent, "alice", cseq=10)
    request.headers.add(
        "Authorization",
        build_authorization(
            challenge, method="REGISTER", uri=str(request.uri), username="bob", password="hunter2"
        ),
    )
    assert (await send(client, request, agent)).status == 403
    assert agent.lookup(f"sip:alice@{REALM}") == []


async def test_register_without_a_user_database_is_not_allowed(
    make_agent: MakeAgent, client: TransactionLayer
) -> None:
    agent = await make_agent()
    response = await send(client, register_request(client, agent, "alice", cseq=1), agent)
    assert response.status == 405 and "REGISTER" not in (response.headers.get("Allow") or "")


# -- on the wire, against a hand-driven phone --------------------------------------------


@pytest.fixture
async def phone() -> AsyncIterator[UdpPhone]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(UdpPhone, local_addr=("127.0.0.1", 0))
    yield protocol
    transport.close()


def phone_invite(phone: UdpPhone, agent: UserAgent, sdp: bytes) -> Request:
    port = phone.peer.port
    request = Request(method="INVITE", uri=SipUri.parse(target(agent)))
    request.headers.add("Via", f"SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-phone-1;rport")
    request.headers.add("Record-Route", f"<sip:127.0.0.1:{port};lr>")
    request.headers.add("From", f"<sip:phone@127.0.0.1:{port}>;tag=phone-tag")
    request.headers.add("To", f"<{target(agent)}>")
    request.headers.add("Call-ID", "phone-call-1")
    request.headers.add("CSeq", "5 INVITE")
    request.headers.add("Contact", f"<sip:phone@127.0.0.2:{port}>")
    request.headers.add("Content-Type", "application/sdp")
    request.body = sdp
    return request


def in_dialog(phone: UdpPhone, invite: Request, ok: Response, method: str, cseq: int) -> Request:
    request = Request(method=method, uri=ok.contacts[0].uri)
    request.headers.add(
        "Via", f"SIP/2.0/UDP 127.0.0.1:{phone.peer.port};branch=z9hG4bK-phone-{method}{cseq}"
    )
    for name in ("From", "Call-ID"):
        request.headers.add(name, invite.headers.get(name) or "")
    request.headers.add("To", ok.headers.get("To") or "")
    request.headers.add("CSeq", f"{cseq} {method}")
    return request


async def final(phone: UdpPhone, request: Request) -> Response:
    """The phone's next final response to ``request`` (others, e.g. resends, are skipped)."""
    while True:
        message = await next_item(phone.received)
        if (
            isinstance(message, Response)
            and message.status >= 200
            and message.top_via.branch == request.top_via.branch
            and message.cseq == request.cseq
        ):
            return message


async def next_request(phone: UdpPhone, method: str) -> Request:
    """The next ``method`` request the phone receives (resends of others are skipped)."""
    while True:
        message = await next_item(phone.received)
        if isinstance(message, Request) and message.method == method:
            return message


async def test_record_route_is_echoed_and_our_bye_follows_the_route_set(
    make_agent: MakeAgent, phone: UdpPhone
) -> None:
    incoming: IncomingQueue = asyncio.Queue()
    agent = await make_agent(on_incoming_call=queue_calls(incoming))
    invite = phone_invite(phone, agent, offer().encode())
    phone.send(invite, agent.transport.port)
    call = await next_item(incoming)
    answering = asyncio.create_task(call.answer(answer_to(call)))
    ok = await final(phone, invite)
    assert ok.status == 200 and ok.headers.get_all("Record-Route") == [
        f"<sip:127.0.0.1:{phone.peer.port};lr>"
    ]
    assert ok.to.tag and ok.contacts[0].uri.port == agent.transport.port
    phone.send(in_dialog(phone, invite, ok, "ACK", 5), agent.transport.port)
    await asyncio.wait_for(answering, WAIT)

    # Out of order (§12.2.2): a lower CSeq than the INVITE's gets 500, a higher one 200.
    for cseq, status in ((4, 500), (6, 200)):
        options = in_dialog(phone, invite, ok, "OPTIONS", cseq)
        phone.send(options, agent.transport.port)
        assert (await final(phone, options)).status == status

    hanging_up = asyncio.create_task(call.hangup())
    bye = await next_request(phone, "BYE")
    # The route set's only hop is the phone's own address (its Record-Route): the BYE
    # reached us there, carrying the Route and the phone's Contact as Request-URI.
    assert bye.headers.get_all("Route") == [f"<sip:127.0.0.1:{phone.peer.port};lr>"]
    assert str(bye.uri) == f"sip:phone@127.0.0.2:{phone.peer.port}"
    assert bye.cseq.method == "BYE" and bye.to.tag == "phone-tag"
    phone.send(bye.create_response(200), agent.transport.port)
    assert (await asyncio.wait_for(hanging_up, WAIT)).reason is EndReason.LOCAL_HANGUP


async def test_stray_cancel_bye_and_broken_requests_never_break_the_agent(
    make_agent: MakeAgent, phone: UdpPhone
) -> None:
    incoming: IncomingQueue = asyncio.Queue()
    agent = await make_agent(on_incoming_call=queue_calls(incoming))
    port = agent.transport.port
    invite = phone_invite(phone, agent, b"v=0\r\nthis is not SDP\r\n")
    phone.send(invite, port)
    assert (await final(phone, invite)).status == 400

    cancel = phone_invite(phone, agent, b"")
    cancel.method = "CANCEL"
    cancel.headers.set("CSeq", "5 CANCEL")
    cancel.headers.set("Via", f"SIP/2.0/UDP 127.0.0.1:{phone.peer.port};branch=z9hG4bK-none")
    phone.send(cancel, port)
    assert (await final(phone, cancel)).status == 481

    broken_from = phone_invite(phone, agent, offer().encode())
    broken_from.headers.set("From", "<sip:phone@127.0.0.1>;tag=x")
    broken_from.headers.set("Contact", "<not-a-uri>")
    broken_from.headers.set("Via", f"SIP/2.0/UDP 127.0.0.1:{phone.peer.port};branch=z9hG4bK-b")
    phone.send(broken_from, port)
    assert (await final(phone, broken_from)).status == 400
    assert incoming.empty()

    options = phone_invite(phone, agent, b"")
    options.method = "OPTIONS"
    options.headers.set("CSeq", "1 OPTIONS")
    options.headers.set("Via", f"SIP/2.0/UDP 127.0.0.1:{phone.peer.port};branch=z9hG4bK-o")
    phone.send(options, port)
    assert (await final(phone, options)).status == 200


class ErrorLog(logging.Handler):
    """Collects ERROR records: a callback that raised inside the stack logs one."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


HEADER_VALUES = st.text(
    alphabet=st.characters(blacklist_characters="\r\n\x00", codec="utf-8"), max_size=60
) | st.sampled_from(["", "<>", "<sip:>", ";tag=", "*", "1", "-1", "99999999999", "Digest"])


async def answer_anything(call: IncomingCall) -> None:
    await call.answer(answer_to(call) if call.offer is not None else offer())


@settings(max_examples=60, deadline=None)
@given(
    method=st.sampled_from(["INVITE", "BYE", "CANCEL", "ACK", "OPTIONS", "REGISTER"]),
    header=st.sampled_from(
        [
            "From",
            "To",
            "Contact",
            "CSeq",
            "Record-Route",
            "Expires",
            "Content-Type",
            "Authorization",
            "Proxy-Authorization",
            "Call-ID",
        ]
    ),
    value=HEADER_VALUES,
    body=st.binary(max_size=80),
)
async def test_hostile_requests_never_raise_inside_the_agent(
    method: str, header: str, value: str, body: bytes
) -> None:
    errors = ErrorLog()
    logging.getLogger("sautikit.sip").addHandler(errors)
    loop = asyncio.get_running_loop()
    endpoint, phone = await loop.create_datagram_endpoint(UdpPhone, local_addr=("127.0.0.1", 0))
    agent = await UserAgent.listen(
        "127.0.0.1",
        0,
        tcp=False,
        timers=FAST,
        lookup_ha1=lookup_ha1,
        on_incoming_call=answer_anything,
    )
    try:
        request = phone_invite(phone, agent, body)
        request.method = method
        request.headers.set("CSeq", f"5 {method}")
        request.headers.set(header, value)
        phone.send(request, agent.transport.port)
        probe = phone_invite(phone, agent, b"")
        probe.method = "OPTIONS"
        probe.headers.set("CSeq", "1 OPTIONS")
        probe.headers.set("Call-ID", "probe")
        probe.headers.set("Via", f"SIP/2.0/UDP 127.0.0.1:{phone.peer.port};branch=z9hG4bK-p")
        phone.send(probe, agent.transport.port)
        assert (await final(phone, probe)).status == 200
        await asyncio.sleep(0.02)  # let an answer in progress finish or fail
    finally:
        await agent.close()
        endpoint.close()
        logging.getLogger("sautikit.sip").removeHandler(errors)
    assert errors.records == []


async def test_crossing_reinvites_get_491_and_the_call_stays_up(make_agent: MakeAgent) -> None:
    _, _, call, callee = await _answered_pair(make_agent)
    hold = SdpSession("127.0.0.1").offer(4000, direction="sendonly")
    results = await asyncio.wait_for(
        asyncio.gather(call.reinvite(hold), callee.reinvite(hold), return_exceptions=True), WAIT
    )
    statuses = [r.status for r in results if isinstance(r, CallFailed)]
    assert statuses and set(statuses) == {491}
    assert call.state is CallState.ANSWERED and callee.state is CallState.ANSWERED
    retry = await asyncio.wait_for(call.reinvite(hold), WAIT)
    assert "a=recvonly" in str(retry)
    await call.hangup()


async def test_bye_to_a_caller_behind_nat_goes_to_its_source_not_its_contact(
    make_agent: MakeAgent, phone: UdpPhone
) -> None:
    incoming: IncomingQueue = asyncio.Queue()
    agent = await make_agent(on_incoming_call=queue_calls(incoming))
    invite = phone_invite(phone, agent, offer().encode())
    invite.headers.remove("Record-Route")
    invite.headers.set("Contact", "<sip:phone@127.0.0.1:9>")  # a private address, unreachable
    phone.send(invite, agent.transport.port)
    call = await next_item(incoming)
    answering = asyncio.create_task(call.answer(answer_to(call)))
    ok = await final(phone, invite)
    phone.send(in_dialog(phone, invite, ok, "ACK", 5), agent.transport.port)
    await asyncio.wait_for(answering, WAIT)
    hanging_up = asyncio.create_task(call.hangup())
    bye = await next_request(phone, "BYE")
    assert str(bye.uri) == "sip:phone@127.0.0.1:9"
    phone.send(bye.create_response(200), agent.transport.port)
    assert (await asyncio.wait_for(hanging_up, WAIT)).reason is EndReason.LOCAL_HANGUP


async def test_our_call_to_a_named_destination_keeps_sending_there(
    make_agent: MakeAgent, phone: UdpPhone
) -> None:
    agent = await make_agent()
    call = await agent.place_call(
        "sip:phone@127.0.0.1:9",
        from_uri="sip:alice@127.0.0.1",
        offer=offer(),
        destination=("127.0.0.1", phone.peer.port, "udp"),
    )
    invite = await next_request(phone, "INVITE")
    ok = invite.create_response(200, to_tag="phone-tag")
    ok.headers.add("Contact", "<sip:phone@127.0.0.1:9>")
    ok.headers.add("Content-Type", "application/sdp")
    ok.body = negotiate_answer(parse_sdp(invite.body), "127.0.0.1", 6000)[0].encode()
    phone.send(ok, agent.transport.port)
    assert await asyncio.wait_for(call.wait_answer(), WAIT) is not None
    assert (await next_request(phone, "ACK")).cseq.method == "ACK"
    hanging_up = asyncio.create_task(call.hangup())
    bye = await next_request(phone, "BYE")
    assert bye.to.tag == "phone-tag"
    phone.send(bye.create_response(200), agent.transport.port)
    assert (await asyncio.wait_for(hanging_up, WAIT)).reason is EndReason.LOCAL_HANGUP


async def test_a_carriers_401_is_answered_once_with_the_next_cseq_and_same_call_id(
    make_agent: MakeAgent, phone: UdpPhone
) -> None:
    carrier = DigestAuthenticator("carrier.test", b"carrier-secret")
    agent = await make_agent()
    call = await agent.place_call(
        f"sip:+254700000001@127.0.0.1:{phone.peer.port}",
        from_uri="sip:trunk@127.0.0.1",
        offer=offer(),
        credentials=("trunk", "pa55"),
    )
    first = await next_request(phone, "INVITE")
    challenge = first.create_response(401, to_tag="c1")
    for value in carrier.challenge():
        challenge.headers.add("WWW-Authenticate", value)
    phone.send(challenge, agent.transport.port)
    await next_request(phone, "ACK")  # the transaction acknowledges the 401

    second = await next_request(phone, "INVITE")
    assert second.call_id == first.call_id and second.cseq.number == first.cseq.number + 1
    assert second.top_via.branch != first.top_via.branch
    ha1 = {alg: compute_ha1("trunk", "carrier.test", "pa55", alg) for alg in ("MD5", "SHA-256")}
    verdict = carrier.verify(
        second.headers.get("Authorization") or "",
        "INVITE",
        lambda user, realm, algorithm: ha1[algorithm] if user == "trunk" else None,
    )
    assert verdict.ok

    # The carrier refuses again: the call fails instead of looping on challenges.
    again = second.create_response(401, to_tag="c2")
    again.headers.add("WWW-Authenticate", carrier.challenge()[0])
    phone.send(again, agent.transport.port)
    with pytest.raises(CallFailed) as failure:
        await asyncio.wait_for(call.wait_answer(), WAIT)
    assert failure.value.status == 401


async def test_closing_the_agent_ends_its_calls(make_agent: MakeAgent) -> None:
    _, bob, call, callee = await _answered_pair(make_agent)
    await bob.close()
    assert (await ended(callee)).reason is EndReason.SHUTDOWN
    assert call.state is CallState.ANSWERED  # no BYE is sent on shutdown


async def test_offerless_reinvite_gets_our_current_sdp_and_takes_the_answer_from_the_ack(
    make_agent: MakeAgent, phone: UdpPhone
) -> None:
    incoming: IncomingQueue = asyncio.Queue()
    agent = await make_agent(on_incoming_call=queue_calls(incoming))
    invite = phone_invite(phone, agent, offer(4000).encode())
    phone.send(invite, agent.transport.port)
    call = await next_item(incoming)
    answering = asyncio.create_task(call.answer(answer_to(call, port=5000)))
    ok = await final(phone, invite)
    phone.send(in_dialog(phone, invite, ok, "ACK", 5), agent.transport.port)
    await asyncio.wait_for(answering, WAIT)

    reinvite = in_dialog(phone, invite, ok, "INVITE", 6)
    phone.send(reinvite, agent.transport.port)
    reoffer = await final(phone, reinvite)
    assert reoffer.status == 200
    our_offer = parse_sdp(reoffer.body)
    assert our_offer.media[0].port == 5000
    ack = in_dialog(phone, invite, ok, "ACK", 6)
    ack.headers.add("Content-Type", "application/sdp")
    ack.body = negotiate_answer(our_offer, "127.0.0.1", 4400)[0].encode()
    phone.send(ack, agent.transport.port)
    probe = in_dialog(phone, invite, ok, "OPTIONS", 7)
    phone.send(probe, agent.transport.port)
    assert (await final(phone, probe)).status == 200
    assert call.remote_sdp is not None and call.remote_sdp.media[0].port == 4400
    assert call.state is CallState.ANSWERED


async def test_a_carrier_challenging_our_bye_gets_it_again_with_credentials(
    make_agent: MakeAgent, phone: UdpPhone
) -> None:
    carrier = DigestAuthenticator("carrier.test", b"carrier-secret")
    agent = await make_agent()
    call = await agent.place_call(
        f"sip:+254700000001@127.0.0.1:{phone.peer.port}",
        from_uri="sip:trunk@127.0.0.1",
        offer=offer(),
        credentials=("trunk", "pa55"),
    )
    invite = await next_request(phone, "INVITE")
    ok = invite.create_response(200, to_tag="carrier-tag")
    ok.headers.add("Contact", f"<sip:gw@127.0.0.1:{phone.peer.port}>")
    ok.headers.add("Content-Type", "application/sdp")
    ok.body = negotiate_answer(parse_sdp(invite.body), "127.0.0.1", 6000)[0].encode()
    phone.send(ok, agent.transport.port)
    await asyncio.wait_for(call.wait_answer(), WAIT)

    hanging_up = asyncio.create_task(call.hangup())
    bye = await next_request(phone, "BYE")
    challenge = bye.create_response(407)
    challenge.headers.add("Proxy-Authenticate", carrier.challenge(["MD5"])[0])
    phone.send(challenge, agent.transport.port)
    second = await next_request(phone, "BYE")
    assert second.cseq.number == bye.cseq.number + 1 and second.call_id == bye.call_id
    ha1 = compute_ha1("trunk", "carrier.test", "pa55", "MD5")
    verdict = carrier.verify(second.headers.get("Proxy-Authorization") or "", "BYE", lambda *_: ha1)
    assert verdict.ok
    phone.send(second.create_response(200), agent.transport.port)
    assert (await asyncio.wait_for(hanging_up, WAIT)).reason is EndReason.LOCAL_HANGUP


async def test_the_first_answer_to_an_invite_is_100_trying_before_the_handler_runs(
    make_agent: MakeAgent, phone: UdpPhone
) -> None:
    release = asyncio.Event()

    async def slow(call: IncomingCall) -> None:
        await release.wait()
        call.reject(486)

    agent = await make_agent(on_incoming_call=slow)
    invite = phone_invite(phone, agent, offer().encode())
    phone.send(invite, agent.transport.port)
    trying = await next_item(phone.received)
    assert isinstance(trying, Response) and trying.status == 100 and trying.to.tag is None
    release.set()
    assert (await final(phone, invite)).status == 486


async def test_a_refusal_carries_retry_after_and_a_retransmitted_invite_gets_it_again(
    make_agent: MakeAgent, phone: UdpPhone
) -> None:
    calls: list[IncomingCall] = []

    async def overloaded(call: IncomingCall) -> None:
        calls.append(call)
        call.reject(503, headers=[("Retry-After", "7")])

    agent = await make_agent(on_incoming_call=overloaded)
    invite = phone_invite(phone, agent, offer().encode())
    phone.send(invite, agent.transport.port)
    refused = await final(phone, invite)
    assert refused.status == 503 and refused.headers.get("Retry-After") == "7"
    phone.send(invite, agent.transport.port)  # the same bytes again: the 503 was "lost"
    again = await final(phone, invite)
    assert again.status == 503 and again.to.tag == refused.to.tag
    assert again.headers.get("Retry-After") == "7"
    assert len(calls) == 1


async def test_a_retransmitted_invite_after_the_200_gets_the_200_and_is_not_a_new_call(
    make_agent: MakeAgent, phone: UdpPhone
) -> None:
    incoming: IncomingQueue = asyncio.Queue()
    agent = await make_agent(on_incoming_call=queue_calls(incoming))
    port = agent.transport.port
    invite = phone_invite(phone, agent, offer().encode())
    phone.send(invite, port)
    call = await next_item(incoming)
    answering = asyncio.create_task(call.answer(answer_to(call)))
    ok = await final(phone, invite)
    assert ok.status == 200
    phone.send(invite, port)
    assert (await final(phone, invite)).to.tag == ok.to.tag
    # The same INVITE by another path (a new branch) is a merged copy: 482, no call.
    copy = phone_invite(phone, agent, offer().encode())
    copy.headers.set("Via", f"SIP/2.0/UDP 127.0.0.1:{phone.peer.port};branch=z9hG4bK-other")
    phone.send(copy, port)
    assert (await final(phone, copy)).status == 482
    ack = Request(method="ACK", uri=SipUri.parse(f"sip:sautikit@127.0.0.1:{port}"))
    ack.headers.add("Via", f"SIP/2.0/UDP 127.0.0.1:{phone.peer.port};branch=z9hG4bK-ack")
    for name in ("From", "Call-ID"):
        ack.headers.add(name, invite.headers.get(name) or "")
    ack.headers.add("To", str(ok.to))
    ack.headers.add("CSeq", "5 ACK")
    phone.send(ack, port)
    await asyncio.wait_for(answering, WAIT)
    assert call.state is CallState.ANSWERED
    assert incoming.empty() and len(agent.calls) == 1
