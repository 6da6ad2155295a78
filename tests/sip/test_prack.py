"""Reliable provisional responses and PRACK (RFC 3262) against SIPp, both roles.

As caller: a carrier's reliable 183 with early media is PRACKed with its RSeq, the early
media description reaches the call, and the call is answered. As callee: a caller that
requires 100rel gets our early media reliably, PRACKs it, and is answered.
"""

from __future__ import annotations

import asyncio

import pytest
from tests.sip.conftest import MakeAgent, StartSipp
from tests.sipp import SCENARIOS, requires_sipp

from sautikit.sip import (
    CallState,
    EndReason,
    IncomingCall,
    Request,
    Response,
    SdpSession,
    negotiate_answer,
)
from sautikit.sip.prack import PrackState, RAck, rseq_of

pytestmark = [pytest.mark.sipp, requires_sipp]

WAIT = 10.0


def _provisional(rseq: str | None, require: str = "100rel") -> Response:
    response = Response(status=183, reason="Session Progress")
    response.headers.add("Require", require)
    if rseq is not None:
        response.headers.add("RSeq", rseq)
    return response


def test_only_new_reliable_provisionals_in_order_are_pracked() -> None:
    invite = Request(method="INVITE")
    invite.headers.add("CSeq", "7 INVITE")
    state = PrackState()
    assert rseq_of(_provisional("5", require="timer")) is None
    assert state.rack_for(_provisional(None), invite) is None
    assert state.rack_for(_provisional("5"), invite) == RAck(5, 7, "INVITE")
    assert state.rack_for(_provisional("5"), invite) is None  # a retransmission
    assert state.rack_for(_provisional("7"), invite) is None  # one is missing: out of order
    assert state.rack_for(_provisional("6"), invite) == RAck(6, 7, "INVITE")
    assert str(RAck.parse("6 7 invite")) == "6 7 INVITE"
    with pytest.raises(ValueError):
        RAck.parse("6 INVITE")


async def test_a_carriers_reliable_early_media_is_pracked_and_the_call_answered(
    make_agent: MakeAgent, start_sipp: StartSipp
) -> None:
    agent = await make_agent()
    sipp = await start_sipp(scenario=SCENARIOS / "uas_reliable_early_media.xml")
    states: list[CallState] = []
    call = await agent.place_call(
        f"sip:+254700000001@127.0.0.1:{sipp.port}",
        from_uri="sip:alice@127.0.0.1",
        offer=SdpSession("127.0.0.1").offer(40020),
    )
    call.on_state_change = states.append
    await asyncio.wait_for(call.wait_answer(), WAIT)
    assert CallState.EARLY_MEDIA in states and call.early_sdp is not None
    assert call.provisional[-1] == 183
    assert (await call.hangup()).reason is EndReason.LOCAL_HANGUP
    result = await sipp.wait()
    assert result.returncode == 0, result.explain()


async def test_a_caller_requiring_100rel_gets_reliable_early_media_and_pracks_it(
    make_agent: MakeAgent, start_sipp: StartSipp
) -> None:
    calls: asyncio.Queue[IncomingCall] = asyncio.Queue()

    async def early_then_answer(call: IncomingCall) -> None:
        calls.put_nowait(call)
        assert call.offer is not None
        answer = negotiate_answer(call.offer, "127.0.0.1", 40022)[0]
        call.progress(answer)
        for _ in range(200):  # answer once the PRACK came, as the scenario expects
            if not call.reliable.pending:
                break
            await asyncio.sleep(0.02)
        await call.answer(answer)

    agent = await make_agent(on_incoming_call=early_then_answer)
    sipp = await start_sipp(
        scenario=SCENARIOS / "uac_prack.xml", remote=("127.0.0.1", agent.transport.port)
    )
    result = await sipp.wait()
    assert result.returncode == 0, result.explain()
    call = calls.get_nowait()
    assert call.reliable.required and call.reliable.pracks == 1
    end = await asyncio.wait_for(asyncio.shield(call.terminated), WAIT)
    assert end.reason is EndReason.REMOTE_HANGUP
