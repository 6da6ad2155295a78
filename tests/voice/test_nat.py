"""A softphone behind a masquerading home router (tests/netns.py), against a server
bound to every interface and advertising its public address, as an operator runs it.

The phone's Contact and SDP name its LAN address, which the server cannot reach: the
calls work only if the server answers to where packets really come from (rport and the
registration's source, RFC 3581) and latches RTP onto the phone's NATed address.

Both phones — baresip and SIPp — register, take a call and place one; the platform records
those calls (a ``dial`` with ``record-from-answer``), and the recordings must hold audio
from both sides: baresip's tone and what it heard, SIPp's speech and then, with
``-rtp_echo``, the far end's tone sent back — which crossed the router both ways."""

from __future__ import annotations

import asyncio
import wave
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select
from tests.baresip import Baresip, requires_baresip
from tests.media.media_rig import dominant_frequency, rms
from tests.netns import NatRig, nat_rig, requires_netns
from tests.sipp import SCENARIOS as SIP_SCENARIOS
from tests.sipp import Sipp, requires_sipp
from tests.voice.stack import CALLEE, NUMBER, Stack, open_stack
from tests.voice.voice_rig import AppServer, document

from sautikit.db import Database
from sautikit.db.models import Number
from sautikit.media import TextToSpeech, tone
from sautikit.media.audio import encode_wav
from sautikit.pbx import InboundLeg, Pbx
from sautikit.sip import SipUri, TimerConfig

pytestmark = [
    requires_netns,
    requires_baresip,
    requires_sipp,
    pytest.mark.parametrize("empty_database", ["sqlite"], indirect=True),
]

_CARRIER_RTP = (37600, 37699)
SCENARIOS = Path(__file__).parent / "scenarios"
PBX_SCENARIOS = Path(__file__).parent.parent / "pbx" / "scenarios"


@pytest.fixture
def rig() -> AsyncIterator[NatRig]:
    with nat_rig() as made:
        yield made


@pytest.fixture
async def stack(
    database: Database, app: AppServer, tmp_path: Path, rig: NatRig
) -> AsyncIterator[Stack]:
    async with open_stack(
        database, app, tmp_path, sip_host="0.0.0.0", sip_advertised_host=rig.server_ip
    ) as opened:
        yield opened


def carrier_pbx(
    tmp_path: Path, on_inbound: Callable[[InboundLeg], Awaitable[None]] | None = None
) -> Pbx:
    """The carrier on loopback, outside the NAT: it calls the phone or takes its call."""
    return Pbx(
        sip_port=0,
        rtp_ports=_CARRIER_RTP,
        tts=TextToSpeech(tmp_path / "tts"),
        on_inbound=on_inbound,
        timers=TimerConfig(t1=0.1),
    )


def phone(
    rig: NatRig, stack: Stack, tmp_path: Path, *, seconds: float, transport: str = "udp"
) -> Baresip:
    voice = tmp_path / "alice-voice.wav"
    voice.write_bytes(encode_wav(tone(1000, seconds)))
    return Baresip(
        tmp_path / "alice",
        "alice",
        voice,
        (10000, 10099),
        register=(rig.server_ip, stack.pbx.port, "s3cret"),
        address=rig.phone_ip,
        wrap=rig.command,
        transport=transport,
    )


async def registered(stack: Stack) -> None:
    for _ in range(100):
        if stack.pbx.agent.lookup("sip:alice@any"):
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the phone behind NAT did not register")


def frequency_heard(path: Path) -> float:
    with wave.open(str(path)) as heard:
        audio = np.frombuffer(heard.readframes(heard.getnframes()), "<i2").astype(np.float64)
    loud = np.flatnonzero(np.abs(audio) > 300)
    assert loud.size > 4000, "nothing was heard"
    return dominant_frequency(audio[loud[0] : loud[0] + 4000])


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_a_phone_behind_nat_registers_and_takes_a_call_with_audio_both_ways(
    stack: Stack, rig: NatRig, tmp_path: Path, transport: str
) -> None:
    """Over TCP the call reaches the phone through the connection its REGISTER opened
    (the only way in through the router)."""
    await stack.add_device("alice", "s3cret")
    await stack.set_routing(voice_url=None)  # the number rings its devices
    alice = phone(rig, stack, tmp_path, seconds=14, transport=transport)
    await alice.start(seconds=14)
    await registered(stack)
    (binding,) = stack.pbx.agent.lookup("sip:alice@any")
    assert SipUri.parse(binding.contact).host == rig.phone_ip  # what the phone said
    assert binding.source is not None and binding.source.host == rig.router_ip  # where it is
    assert binding.source.transport == transport

    async with carrier_pbx(tmp_path) as carrier:
        leg = await carrier.dial(
            f"sip:{NUMBER}@127.0.0.1:{stack.pbx.port}", from_uri="sip:+254711000000@127.0.0.1"
        )
        await asyncio.wait_for(leg.wait_answer(), 20)
        heard = leg.channel.start_recording(tmp_path / "carrier-heard.wav")
        await leg.channel.play(tone(440, 4.0))
        heard.stop()
        await heard.finished()
        await leg.hangup()
    await alice.wait()
    (call,) = await stack.wait_for_calls_to_end()
    assert call.status == "completed"
    # The caller heard the phone (phone → NAT → server → caller) and the phone heard the
    # caller (caller → server → NAT → phone).
    assert abs(frequency_heard(tmp_path / "carrier-heard.wav") - 1000) < 30
    assert abs(frequency_heard(alice.heard()) - 440) < 30


async def test_a_phone_behind_nat_places_a_call_with_audio_both_ways(
    stack: Stack, rig: NatRig, tmp_path: Path
) -> None:
    await stack.add_device("alice", "s3cret")
    answered: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def callee(leg: InboundLeg) -> None:
        await leg.answer()
        heard = leg.channel.start_recording(tmp_path / "callee-heard.wav")
        await leg.channel.play(tone(440, 4.0))
        heard.stop()
        await heard.finished()
        answered.set_result(None)
        await leg.hangup()

    async with carrier_pbx(tmp_path, callee) as carrier:
        await stack.route_trunk_to(carrier.port, trusted=())  # the phone must authenticate
        alice = phone(rig, stack, tmp_path, seconds=14)
        await alice.start(seconds=14, dial=f"sip:{CALLEE}@{rig.server_ip}:{stack.pbx.port}")
        await asyncio.wait_for(answered, 30)
        await alice.wait()
    (call,) = await stack.wait_for_calls_to_end()
    assert (call.direction, call.from_number, call.to_number) == ("outbound", NUMBER, CALLEE)
    assert call.status == "completed"
    assert abs(frequency_heard(tmp_path / "callee-heard.wav") - 1000) < 30
    assert abs(frequency_heard(alice.heard()) - 440) < 30


#: SIPp's -t modes the NAT tests run in, and the transport the server sees each as.
SIPP_TRANSPORTS = pytest.mark.parametrize(
    ("sipp_transport", "transport"), [("u1", "udp"), ("t1", "tcp")], ids=["udp", "tcp"]
)


@SIPP_TRANSPORTS
async def test_sipp_behind_nat_registers_through_the_router(
    stack: Stack, rig: NatRig, sipp_transport: str, transport: str
) -> None:
    await stack.add_device("alice", "s3cret")
    sipp = Sipp(
        scenario=SIP_SCENARIOS / "uac_register_auth.xml",
        remote=(rig.server_ip, stack.pbx.port),
        service="alice",
        port=5070,
        local=rig.phone_ip,
        wrap=rig.command,
        transport=sipp_transport,
    )
    result = await sipp.run()
    assert result.returncode == 0, result.explain()
    (binding,) = stack.pbx.agent.lookup("sip:alice@any")
    assert binding.source is not None and binding.source.host == rig.router_ip
    # Stored as nathelper's fix_nated_register does: the Contact as the phone sent it
    # (its LAN address), the received address beside it; the API shows both.
    async with stack.database.sessions() as session:
        number_id = await session.scalar(select(Number.id).where(Number.e164 == NUMBER))
    listed = await stack.api.get(f"/v1/numbers/{number_id}/sip-credentials", headers=stack.headers)
    assert listed.status_code == 200, listed.text
    ((registration,),) = [c["registrations"] for c in listed.json()["data"]]
    assert SipUri.parse(registration["contact"]).host == rig.phone_ip
    assert registration["received"] == {
        "transport": transport,
        "host": rig.router_ip,
        "port": binding.source.port,
    }
    assert registration["behind_nat"] is True and registration["path"] == []


# --- recorded by the platform: both directions through the router reach the recording ---

#: A second number of the workspace, whose device is the phone behind NAT.
DESK = "+254700000003"


def recorded_frequencies(channels: list[np.ndarray]) -> list[float]:
    found = []
    for channel in channels:
        loud = np.flatnonzero(np.abs(channel.astype(np.float64)) > 300)
        assert loud.size > 4000, "a recording channel is silent"
        found.append(dominant_frequency(channel[loud[0] : loud[0] + 4000]))
    return found


async def test_a_call_to_a_phone_behind_nat_is_recorded_with_both_directions(
    stack: Stack, rig: NatRig, tmp_path: Path
) -> None:
    """A carrier's call to NUMBER, whose app dials DESK (on-net), which rings the phone
    behind NAT: the dial's recording holds the caller (440 Hz) and the phone (1000 Hz)."""
    await stack.add_number(DESK)  # no voice_url: it rings its devices
    await stack.add_device("alice", "s3cret", number=DESK)
    stack.app.recorded_dial(DESK)
    alice = phone(rig, stack, tmp_path, seconds=16)
    await alice.start(seconds=16)
    await registered(stack)
    async with carrier_pbx(tmp_path) as carrier:
        leg = await carrier.dial(
            f"sip:{NUMBER}@127.0.0.1:{stack.pbx.port}", from_uri="sip:+254711000000@127.0.0.1"
        )
        await asyncio.wait_for(leg.wait_answer(), 20)
        await asyncio.sleep(1.5)  # the dial rings the phone, which answers at once
        await leg.channel.play(tone(440, 4.0))
        await leg.hangup()
    await alice.wait()
    (dialled,) = await stack.app.wait_for_hits("/dialled")
    assert dialled.fields["DialCallStatus"] == "completed"
    _, channels = await stack.recording_audio(dialled.fields["RecordingSid"])
    caller, callee = recorded_frequencies(channels)
    assert abs(caller - 440) < 30 and abs(callee - 1000) < 30
    assert abs(frequency_heard(alice.heard()) - 440) < 30


async def test_a_call_from_a_phone_behind_nat_is_recorded_with_both_directions(
    stack: Stack, rig: NatRig, tmp_path: Path
) -> None:
    """The phone behind NAT (DESK's device) calls NUMBER (on-net, the device's own
    workspace), whose app dials a carrier callee: the recording holds the phone (1000 Hz)
    and the callee (440 Hz)."""
    await stack.add_number(DESK)
    await stack.add_device("alice", "s3cret", number=DESK)
    stack.app.recorded_dial(CALLEE)
    answered: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def callee(leg: InboundLeg) -> None:
        await leg.answer()
        await asyncio.sleep(1.0)
        await leg.channel.play(tone(440, 4.0))
        answered.set_result(None)
        await leg.hangup()

    async with carrier_pbx(tmp_path, callee) as carrier:
        await stack.route_trunk_to(carrier.port, trusted=())  # the phone must authenticate
        alice = phone(rig, stack, tmp_path, seconds=16)
        await alice.start(seconds=16, dial=f"sip:{NUMBER}@{rig.server_ip}:{stack.pbx.port}")
        await asyncio.wait_for(answered, 30)
        await alice.wait()
    (dialled,) = await stack.app.wait_for_hits("/dialled")
    assert dialled.fields["DialCallStatus"] == "completed"
    _, channels = await stack.recording_audio(dialled.fields["RecordingSid"])
    caller, callee_heard = recorded_frequencies(channels)
    assert abs(caller - 1000) < 30 and abs(callee_heard - 440) < 30
    assert abs(frequency_heard(alice.heard()) - 440) < 30
    calls = await stack.wait_for_calls_to_end(count=3)
    device_call = next(call for call in calls if call.on_net)
    assert (device_call.from_number, device_call.to_number) == (DESK, NUMBER)


def echoed_tail(channel: np.ndarray) -> float:
    """The dominant frequency of a recording channel's last loud two seconds: after SIPp's
    7 s of speech, only what it echoed back (``-rtp_echo``) is left there."""
    loud = np.flatnonzero(np.abs(channel.astype(np.float64)) > 300)
    assert loud.size > 16000, "the echo did not come back"
    return dominant_frequency(channel[loud[-1] - 16000 : loud[-1]])


def sipp_in_the_phone(rig: NatRig, scenario: Path, **options: Any) -> Sipp:
    """SIPp inside the phone's namespace, its RTP on the LAN address, echoing audio back."""
    return Sipp(
        scenario=scenario,
        port=5070,
        local=rig.phone_ip,
        wrap=rig.command,
        extra=["-mi", rig.phone_ip, "-mp", "6000", "-rtp_echo"],
        **options,
    )


async def test_sipp_behind_nat_takes_a_call_recorded_both_ways(
    stack: Stack, rig: NatRig, tmp_path: Path
) -> None:
    """SIPp registers through the router, then (a second SIPp on the same port: the NAT
    mapping stays) answers DESK's call and speaks; with -rtp_echo it returns the caller's
    tone, so the recording's phone side ends in 440 Hz only if audio crossed the router
    in both directions."""
    await stack.add_number(DESK)
    await stack.add_device("alice", "s3cret", number=DESK)
    stack.app.route(
        "/voice",
        document(
            {"dial": {"number": DESK, "record": "record-from-answer",
                      "action": stack.app.url("/dialled")}}
        ),
    )  # fmt: skip
    stack.app.route("/dialled", document({"hangup": {}}))
    register = Sipp(
        scenario=SIP_SCENARIOS / "uac_register_auth.xml",
        remote=(rig.server_ip, stack.pbx.port),
        service="alice",
        port=5070,
        local=rig.phone_ip,
        wrap=rig.command,
    )
    result = await register.run()
    assert result.returncode == 0, result.explain()
    async with sipp_in_the_phone(
        rig, PBX_SCENARIOS / "callee_answers_and_speaks.xml", timeout=30
    ) as callee:
        async with carrier_pbx(tmp_path) as carrier:
            leg = await carrier.dial(
                f"sip:{NUMBER}@127.0.0.1:{stack.pbx.port}",
                from_uri="sip:+254711000000@127.0.0.1",
            )
            await asyncio.wait_for(leg.wait_answer(), 20)
            await leg.channel.play(tone(440, 11.0))
            await leg.hangup()
        answered = await callee.wait()
    assert answered.returncode == 0, answered.explain()
    (dialled,) = await stack.app.wait_for_hits("/dialled")
    _, (caller, phone_side) = await stack.recording_audio(dialled.fields["RecordingSid"])
    assert rms(caller) > 300 and rms(phone_side) > 300
    assert abs(echoed_tail(phone_side) - 440) < 30


@SIPP_TRANSPORTS
async def test_sipp_behind_nat_places_a_call_recorded_both_ways(
    stack: Stack, rig: NatRig, tmp_path: Path, sipp_transport: str, transport: str
) -> None:
    """SIPp behind the router, DESK's device, calls NUMBER (on-net), whose app dials a
    carrier callee playing 440 Hz; SIPp speaks, then echoes: both directions recorded."""
    await stack.add_number(DESK)
    await stack.add_device("alice", "s3cret", number=DESK)
    stack.app.route(
        "/voice",
        document(
            {"dial": {"number": CALLEE, "record": "record-from-answer",
                      "action": stack.app.url("/dialled")}}
        ),
    )  # fmt: skip
    stack.app.route("/dialled", document({"hangup": {}}))

    async def callee(leg: InboundLeg) -> None:
        await leg.answer()
        await leg.channel.play(tone(440, 11.0))
        await leg.wait_ended()

    async with carrier_pbx(tmp_path, callee) as carrier:
        await stack.route_trunk_to(carrier.port, trusted=())
        device = await sipp_in_the_phone(
            rig,
            SCENARIOS / "device_talks_then_hangs_up.xml",
            remote=(rig.server_ip, stack.pbx.port),
            service=NUMBER,
            timeout=30,
            transport=sipp_transport,
        ).run()
    assert device.returncode == 0, device.explain()
    (dialled,) = await stack.app.wait_for_hits("/dialled")
    _, (phone_side, callee_side) = await stack.recording_audio(dialled.fields["RecordingSid"])
    assert rms(callee_side) > 300 and rms(phone_side) > 300
    assert abs(echoed_tail(phone_side) - 440) < 30
