"""Session timers (RFC 4028) against SIPp: agreed, refreshed both ways, and a dead call ended.

Intervals are 2 s here (RFC 4028 asks for at least 90 in production; the floor is a
setting). Nothing asserts how long anything took: only what was sent and how calls ended.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from tests.linphone import Linphone, requires_linphone
from tests.sip.conftest import MakeAgent, StartSipp
from tests.sipp import SCENARIOS, requires_sipp

from sautikit.sip import EndReason, IncomingCall, Request, SdpSession, SipUri, negotiate_answer
from sautikit.sip.session_timer import (
    SessionExpires,
    SessionTimerConfig,
    expiry_delay,
    negotiate_as_uas,
    too_small,
)

pytestmark = [pytest.mark.sipp, requires_sipp]

WAIT = 15.0
SHORT = SessionTimerConfig(expires=2, min_se=2)


def _invite(*headers: tuple[str, str]) -> Request:
    request = Request(method="INVITE", uri=SipUri.parse("sip:a@127.0.0.1"))
    for name, value in (
        ("Via", "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1"),
        ("From", "<sip:b@127.0.0.1>;tag=1"),
        ("To", "<sip:a@127.0.0.1>"),
        ("Call-ID", "c1"),
        ("CSeq", "1 INVITE"),
        *headers,
    ):
        request.headers.add(name, value)
    return request


def test_session_expires_reads_the_interval_and_refresher() -> None:
    assert SessionExpires.parse("1800;refresher=UAC") == SessionExpires(1800, "uac")
    assert SessionExpires.parse(" 90 ; foo=bar") == SessionExpires(90, None)
    assert str(SessionExpires(600, "uas")) == "600;refresher=uas"
    with pytest.raises(ValueError):
        SessionExpires.parse("soon")


def test_uas_negotiation_follows_rfc_4028_section_9() -> None:
    config = SessionTimerConfig(expires=1800, min_se=90)
    # The caller named it all: taken as asked.
    asked = _invite(("Supported", "timer"), ("Session-Expires", "600;refresher=uas"))
    assert negotiate_as_uas(asked, config) == SessionExpires(600, "uas")
    # It supports timers but left the refresher to us: it refreshes.
    assert negotiate_as_uas(
        _invite(("Supported", "100rel, timer"), ("Session-Expires", "600")), config
    ) == SessionExpires(600, "uac")
    # It knows nothing of timers: we ask for ours and refresh ourselves.
    assert negotiate_as_uas(_invite(), config) == SessionExpires(1800, "uas")
    # A Min-SE above our interval raises it.
    assert negotiate_as_uas(_invite(("k", "timer"), ("Min-SE", "2400")), config) == SessionExpires(
        2400, "uac"
    )


def test_an_interval_below_our_min_se_is_refused_422_with_it() -> None:
    config = SessionTimerConfig(expires=1800, min_se=90)
    refusal = too_small(_invite(("Session-Expires", "30")), config)
    assert refusal is not None and refusal.status == 422
    assert refusal.headers.get("Min-SE") == "90"
    assert too_small(_invite(("Session-Expires", "90")), config) is None
    assert too_small(_invite(), config) is None


def test_the_refreshed_side_gives_up_a_little_before_the_interval() -> None:
    assert expiry_delay(1800) == 1768
    assert expiry_delay(90) == 60


def _answering(calls: asyncio.Queue[IncomingCall]):  # type: ignore[no-untyped-def]
    async def handler(call: IncomingCall) -> None:
        calls.put_nowait(call)
        assert call.offer is not None
        await call.answer(negotiate_answer(call.offer, "127.0.0.1", 40010)[0])

    return handler


async def test_a_caller_that_stops_refreshing_gets_bye_when_the_session_expires(
    make_agent: MakeAgent, start_sipp: StartSipp
) -> None:
    calls: asyncio.Queue[IncomingCall] = asyncio.Queue()
    agent = await make_agent(on_incoming_call=_answering(calls), session_timers=SHORT)
    sipp = await start_sipp(
        scenario=SCENARIOS / "uac_session_timer_dead.xml",
        remote=("127.0.0.1", agent.transport.port),
        timeout=WAIT,
    )
    result = await sipp.wait()
    assert result.returncode == 0, result.explain()
    call = calls.get_nowait()
    end = await asyncio.wait_for(asyncio.shield(call.terminated), WAIT)
    assert end.reason is EndReason.SESSION_EXPIRED
    assert call.session_timer is not None and call.session_timer.refreshes_sent == 0


@pytest.mark.parametrize(
    ("allow", "method"),
    [("INVITE, ACK, BYE, CANCEL, UPDATE", "UPDATE"), ("INVITE, ACK, BYE, CANCEL", "INVITE")],
)
async def test_we_refresh_the_session_of_a_caller_without_timers(
    make_agent: MakeAgent, start_sipp: StartSipp, allow: str, method: str
) -> None:
    calls: asyncio.Queue[IncomingCall] = asyncio.Queue()
    agent = await make_agent(on_incoming_call=_answering(calls), session_timers=SHORT)
    sipp = await start_sipp(
        scenario=SCENARIOS / "uac_session_timer_refreshed.xml",
        remote=("127.0.0.1", agent.transport.port),
        keys={"allow": allow},
        timeout=WAIT,
    )
    result = await sipp.wait()
    assert result.returncode == 0, result.explain()
    call = calls.get_nowait()
    end = await asyncio.wait_for(asyncio.shield(call.terminated), WAIT)
    assert end.reason is EndReason.REMOTE_HANGUP
    assert call.remote_allows_update is (method == "UPDATE")
    assert call.session_timer is not None and call.session_timer.refreshes_sent >= 1


async def test_a_caller_asking_for_too_short_an_interval_gets_422(
    make_agent: MakeAgent, start_sipp: StartSipp
) -> None:
    calls: asyncio.Queue[IncomingCall] = asyncio.Queue()
    agent = await make_agent(on_incoming_call=_answering(calls), session_timers=SHORT)
    sipp = await start_sipp(
        scenario=SCENARIOS / "uac_session_too_small.xml",
        remote=("127.0.0.1", agent.transport.port),
        timeout=WAIT,
    )
    result = await sipp.wait()
    assert result.returncode == 0, result.explain()
    assert calls.empty()  # refused before any call logic saw it


async def test_our_call_offers_timers_and_refreshes_with_update_when_asked_to(
    make_agent: MakeAgent, start_sipp: StartSipp
) -> None:
    agent = await make_agent(session_timers=SHORT)
    sipp = await start_sipp(scenario=SCENARIOS / "uas_session_timer.xml", timeout=WAIT)
    call = await agent.place_call(
        f"sip:carrier@127.0.0.1:{sipp.port}",
        from_uri="sip:alice@127.0.0.1",
        offer=SdpSession("127.0.0.1").offer(40012),
    )
    await asyncio.wait_for(call.wait_answer(), WAIT)
    timer = call.session_timer
    assert timer is not None and timer.seconds == 2 and timer.we_refresh
    for _ in range(100):
        if timer.refreshes_sent and not timer.stopped and timer.we_refresh:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)  # the UPDATE's answer
    assert (await call.hangup()).reason is EndReason.LOCAL_HANGUP
    result = await sipp.wait()
    assert result.returncode == 0, result.explain()
    assert timer.refreshes_sent >= 1


@requires_linphone
async def test_linphone_answers_our_session_refreshes_and_the_call_stays_up(
    make_agent: MakeAgent, tmp_path: Path
) -> None:
    """linphone-cli 5.1 calls us with its defaults: we refresh every second (a 2 s
    interval) with UPDATE, which it allows; the call stays up through the refreshes
    until linphone hangs up."""
    calls: asyncio.Queue[IncomingCall] = asyncio.Queue()
    agent = await make_agent(on_incoming_call=_answering(calls), session_timers=SHORT)
    phone = Linphone(tmp_path / "linphone")
    await phone.start()
    try:
        await phone.command(f"call sip:100@127.0.0.1:{agent.transport.port}")
        call = await asyncio.wait_for(calls.get(), WAIT)
        timer = None
        for _ in range(200):
            timer = call.session_timer
            if timer is not None and timer.refreshes_sent >= 2:
                break
            await asyncio.sleep(0.05)
        assert timer is not None and timer.refreshes_sent >= 2, phone.seen[-2000:]
        assert not call.ended and timer.we_refresh
        await phone.command("terminate")
        end = await asyncio.wait_for(asyncio.shield(call.terminated), WAIT)
    finally:
        await phone.stop()
    assert end.reason is EndReason.REMOTE_HANGUP


async def test_a_far_end_that_refuses_refreshes_is_alive_and_keeps_its_call(
    make_agent: MakeAgent, start_sipp: StartSipp
) -> None:
    """Some carriers answer a refresh re-INVITE 501: an answer all the same, so the call
    is not cut when the interval runs out; it lasts until the caller hangs up."""
    calls: asyncio.Queue[IncomingCall] = asyncio.Queue()
    agent = await make_agent(on_incoming_call=_answering(calls), session_timers=SHORT)
    sipp = await start_sipp(
        scenario=SCENARIOS / "uac_session_refresh_refused.xml",
        remote=("127.0.0.1", agent.transport.port),
        timeout=WAIT,
    )
    result = await sipp.wait()
    assert result.returncode == 0, result.explain()
    call = calls.get_nowait()
    end = await asyncio.wait_for(asyncio.shield(call.terminated), WAIT)
    assert end.reason is EndReason.REMOTE_HANGUP
    assert call.session_timer is not None and call.session_timer.refreshes_sent >= 3
