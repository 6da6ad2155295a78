"""Sautikit's user agent against the real SIPp, as caller and as callee, on loopback.

Each test checks what a user of either side would notice: the SIP answers SIPp received
(its exit status, statistics and error log) and the call states our side reports.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from tests.sip.conftest import MakeAgent, StartSipp
from tests.sipp import SCENARIOS, requires_sipp

from sautikit.sip import (
    CallEnd,
    CallFailed,
    CallState,
    EndReason,
    IncomingCall,
    SdpSession,
    compute_ha1,
    negotiate_answer,
)

pytestmark = [pytest.mark.sipp, requires_sipp]

WAIT = 10.0


def answering(calls: asyncio.Queue[IncomingCall]) -> Callable[[IncomingCall], Awaitable[None]]:
    """A handler that rings, answers with RFC 3264 negotiation, and queues the call."""

    async def handler(call: IncomingCall) -> None:
        calls.put_nowait(call)
        call.ring()
        assert call.offer is not None
        await call.answer(negotiate_answer(call.offer, "127.0.0.1", 40000)[0])

    return handler


async def ended(call: Any) -> CallEnd:
    return await asyncio.wait_for(asyncio.shield(call.terminated), WAIT)


@pytest.mark.parametrize("transport", ["u1", "t1"])
async def test_sipp_builtin_uac_call_is_answered_and_hung_up(
    make_agent: MakeAgent, start_sipp: StartSipp, transport: str
) -> None:
    calls: asyncio.Queue[IncomingCall] = asyncio.Queue()
    agent = await make_agent(on_incoming_call=answering(calls))
    sipp = await start_sipp(
        scenario="uac",
        remote=("127.0.0.1", agent.transport.port),
        transport=transport,
    )
    result = await sipp.wait()
    assert result.returncode == 0, result.explain()
    assert result.successful_calls == 1 and result.failed_calls == 0
    call = calls.get_nowait()
    assert call.offer is not None and call.offer.media[0].formats == ["0"]
    assert (await ended(call)).reason is EndReason.REMOTE_HANGUP


async def test_sipp_offer_of_pcmu_pcma_and_dtmf_is_answered_with_pcmu_and_event_101(
    make_agent: MakeAgent, start_sipp: StartSipp
) -> None:
    calls: asyncio.Queue[IncomingCall] = asyncio.Queue()
    agent = await make_agent(on_incoming_call=answering(calls))
    sipp = await start_sipp(
        scenario=SCENARIOS / "uac_offer_g711_dtmf.xml",
        remote=("127.0.0.1", agent.transport.port),
    )
    result = await sipp.wait()
    assert result.returncode == 0, result.explain()
    call = calls.get_nowait()
    assert call.state is CallState.TERMINATED
    assert (await ended(call)).reason is EndReason.REMOTE_HANGUP


async def test_sipp_cancel_before_answer_gets_200_and_487(
    make_agent: MakeAgent, start_sipp: StartSipp
) -> None:
    calls: asyncio.Queue[IncomingCall] = asyncio.Queue()

    async def ring_forever(call: IncomingCall) -> None:
        calls.put_nowait(call)
        call.ring()

    agent = await make_agent(on_incoming_call=ring_forever)
    sipp = await start_sipp(
        scenario=SCENARIOS / "uac_cancel.xml",
        remote=("127.0.0.1", agent.transport.port),
    )
    result = await sipp.wait()
    assert result.returncode == 0, result.explain()
    end = await ended(calls.get_nowait())
    assert (end.reason, end.status) == (EndReason.REMOTE_CANCEL, 487)


async def test_sipp_hold_reinvite_is_answered_recvonly_and_unhold_sendrecv(
    make_agent: MakeAgent, start_sipp: StartSipp
) -> None:
    calls: asyncio.Queue[IncomingCall] = asyncio.Queue()
    holds: list[bool] = []
    agent = await make_agent(on_incoming_call=answering(calls))
    sipp = await start_sipp(
        scenario=SCENARIOS / "uac_reinvite_hold.xml", remote=("127.0.0.1", agent.transport.port)
    )
    call = await asyncio.wait_for(calls.get(), WAIT)
    default_answer = call.on_reinvite

    async def watch_hold(offer: Any) -> Any:
        answer = await default_answer(offer)
        assert call.media is not None
        holds.append(call.media.on_hold)
        return answer

    call.on_reinvite = watch_hold
    result = await sipp.wait()
    assert result.returncode == 0, result.explain()
    assert holds == [True, False]
    assert (await ended(call)).reason is EndReason.REMOTE_HANGUP


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_sipp_callee_answers_our_call_and_gets_our_bye(
    make_agent: MakeAgent, start_sipp: StartSipp, transport: str
) -> None:
    agent = await make_agent()
    sipp = await start_sipp(scenario=SCENARIOS / "uas_answer.xml", transport=transport[0] + "1")
    offer = SdpSession("127.0.0.1").offer(40002)
    call = await agent.place_call(
        f"sip:bob@127.0.0.1:{sipp.port};transport={transport}",
        from_uri="sip:alice@127.0.0.1",
        offer=offer,
    )
    answer = await asyncio.wait_for(call.wait_answer(), WAIT)
    assert answer is not None and call.media is not None and call.media.codec == "PCMU"
    assert 180 in call.provisional and call.state is CallState.ANSWERED
    assert (await call.hangup()).reason is EndReason.LOCAL_HANGUP
    result = await sipp.wait()
    assert result.returncode == 0, result.explain()
    assert result.successful_calls == 1


async def test_sipp_busy_callee_fails_our_call_with_486(
    make_agent: MakeAgent, start_sipp: StartSipp
) -> None:
    agent = await make_agent()
    sipp = await start_sipp(scenario=SCENARIOS / "uas_busy.xml")
    offer = SdpSession("127.0.0.1").offer(40004)
    call = await agent.place_call(
        f"sip:bob@127.0.0.1:{sipp.port}", from_uri="sip:alice@127.0.0.1", offer=offer
    )
    with pytest.raises(CallFailed) as failure:
        await asyncio.wait_for(call.wait_answer(), WAIT)
    assert (failure.value.status, failure.value.phrase) == (486, "Busy Here")
    result = await sipp.wait()
    assert result.returncode == 0, result.explain()  # SIPp got our ACK for the 486


async def test_sipp_callee_that_never_answers_is_cancelled_on_ring_timeout(
    make_agent: MakeAgent, start_sipp: StartSipp
) -> None:
    agent = await make_agent()
    sipp = await start_sipp(scenario=SCENARIOS / "uas_no_answer.xml")
    offer = SdpSession("127.0.0.1").offer(40006)
    call = await agent.place_call(
        f"sip:bob@127.0.0.1:{sipp.port}",
        from_uri="sip:alice@127.0.0.1",
        offer=offer,
        ring_timeout=0.5,
    )
    end = await ended(call)
    assert (end.reason, end.status) == (EndReason.RING_TIMEOUT, 487)
    result = await sipp.wait()
    assert result.returncode == 0, result.explain()  # CANCEL, then the ACK for 487


async def test_sipp_register_with_digest_is_challenged_then_bound(
    make_agent: MakeAgent, start_sipp: StartSipp
) -> None:
    def lookup(username: str, realm: str, algorithm: str) -> str | None:
        if (username, realm) != ("alice", "pbx.test"):
            return None
        return compute_ha1(username, realm, "s3cret", algorithm)

    # SIPp 3.6.1 reads only the first challenge and speaks only MD5 ("createAuthHeader:
    # authentication must use MD5"): the default challenge (MD5 alone) suits it.
    agent = await make_agent(lookup_ha1=lookup, realm_for=lambda request: "pbx.test")
    sipp = await start_sipp(
        scenario=SCENARIOS / "uac_register_auth.xml",
        remote=("127.0.0.1", agent.transport.port),
        service="alice",
    )
    result = await sipp.wait()
    assert result.returncode == 0, result.explain()
    [binding] = agent.lookup("sip:alice@127.0.0.1")
    assert binding.contact == f"sip:alice@127.0.0.1:{sipp.port}"
    assert 0 < binding.expires_in(binding.registered_at) <= 300


async def test_sipp_record_route_is_echoed_and_our_bye_is_routed_through_it(
    make_agent: MakeAgent, start_sipp: StartSipp
) -> None:
    calls: asyncio.Queue[IncomingCall] = asyncio.Queue()

    async def answer_then_hang_up(call: IncomingCall) -> None:
        calls.put_nowait(call)
        assert call.offer is not None
        await call.answer(negotiate_answer(call.offer, "127.0.0.1", 40008)[0])
        await call.hangup()

    agent = await make_agent(on_incoming_call=answer_then_hang_up)
    sipp = await start_sipp(
        scenario=SCENARIOS / "uac_record_route.xml",
        remote=("127.0.0.1", agent.transport.port),
    )
    result = await sipp.wait()
    assert result.returncode == 0, result.explain()
    assert (await ended(calls.get_nowait())).reason is EndReason.LOCAL_HANGUP


async def test_sipp_device_invite_is_challenged_407_and_let_in_with_digest(
    make_agent: MakeAgent, start_sipp: StartSipp
) -> None:
    calls: asyncio.Queue[IncomingCall] = asyncio.Queue()

    def lookup(username: str, realm: str, algorithm: str) -> str | None:
        if (username, realm) != ("alice", "pbx.test"):
            return None
        return compute_ha1(username, realm, "s3cret", algorithm)

    agent = await make_agent(
        on_incoming_call=answering(calls),
        lookup_ha1=lookup,
        realm_for=lambda request: "pbx.test",
        authenticate_invite=lambda request, source: True,
    )
    sipp = await start_sipp(
        scenario=SCENARIOS / "uac_invite_auth.xml",
        remote=("127.0.0.1", agent.transport.port),
    )
    result = await sipp.wait()
    assert result.returncode == 0, result.explain()
    call = calls.get_nowait()
    assert call.authenticated_user == "alice"
    assert (await ended(call)).reason is EndReason.REMOTE_HANGUP
    assert calls.empty()  # the challenged first INVITE never reached the call logic


async def test_sipp_early_media_183_is_exposed_before_the_answer(
    make_agent: MakeAgent, start_sipp: StartSipp
) -> None:
    agent = await make_agent()
    sipp = await start_sipp(scenario=SCENARIOS / "uas_early_media.xml")
    states: list[CallState] = []
    call = await agent.place_call(
        f"sip:+254700000002@127.0.0.1:{sipp.port}",
        from_uri="sip:alice@127.0.0.1",
        offer=SdpSession("127.0.0.1").offer(40010),
    )
    call.on_state_change = states.append
    await asyncio.wait_for(call.wait_answer(), WAIT)
    assert states[-2:] == [CallState.EARLY_MEDIA, CallState.ANSWERED]
    assert call.early_sdp is not None and call.early_sdp.media[0].formats == ["8"]
    assert call.media is not None and call.media.codec == "PCMA"
    await call.hangup()
    result = await sipp.wait()
    assert result.returncode == 0, result.explain()
