"""Two Sautikit user agents calling each other on loopback, with a tiny T1 to stay fast."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

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
from sautikit.sip.message import Request, Response, parse_message
from sautikit.sip.sdp import PCMA, PCMU
from sautikit.sip.transport import Peer, SipTransportLayer
from sautikit.sip.uri import SipUri

FAST = TimerConfig(t1=0.01, t2=0.04, t4=0.05, trying_after=0.05)
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
    assert failure.value.status == 403
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
