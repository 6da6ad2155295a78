"""A softphone behind a masquerading home router (tests/netns.py), against a server
bound to every interface and advertising its public address, as an operator runs it.

The phone's Contact and SDP name its LAN address, which the server cannot reach: the
calls work only if the server answers to where packets really come from (rport and the
registration's source, RFC 3581) and latches RTP onto the phone's NATed address."""

from __future__ import annotations

import asyncio
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from tests.baresip import Baresip, requires_baresip
from tests.media.media_rig import dominant_frequency
from tests.netns import NatRig, nat_rig, requires_netns
from tests.sipp import SCENARIOS as SIP_SCENARIOS
from tests.sipp import Sipp, requires_sipp
from tests.voice.stack import CALLEE, NUMBER, Stack, open_stack
from tests.voice.voice_rig import AppServer

from sautikit.db import Database
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


def phone(rig: NatRig, stack: Stack, tmp_path: Path, *, seconds: float) -> Baresip:
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


async def test_a_phone_behind_nat_registers_and_takes_a_call_with_audio_both_ways(
    stack: Stack, rig: NatRig, tmp_path: Path
) -> None:
    await stack.add_device("alice", "s3cret")
    await stack.set_routing(voice_url=None)  # the number rings its devices
    alice = phone(rig, stack, tmp_path, seconds=14)
    await alice.start(seconds=14)
    await registered(stack)
    (binding,) = stack.pbx.agent.lookup("sip:alice@any")
    assert SipUri.parse(binding.contact).host == rig.phone_ip  # what the phone said
    assert binding.source is not None and binding.source.host == rig.router_ip  # where it is

    async with Pbx(
        sip_port=0, rtp_ports=_CARRIER_RTP, tts=TextToSpeech(tmp_path / "tts"),
        timers=TimerConfig(t1=0.1),
    ) as carrier:  # fmt: skip
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

    async with Pbx(
        sip_port=0, rtp_ports=_CARRIER_RTP, tts=TextToSpeech(tmp_path / "tts"),
        on_inbound=callee, timers=TimerConfig(t1=0.1),
    ) as carrier:  # fmt: skip
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


async def test_sipp_behind_nat_registers_through_the_router(stack: Stack, rig: NatRig) -> None:
    await stack.add_device("alice", "s3cret")
    sipp = Sipp(
        scenario=SIP_SCENARIOS / "uac_register_auth.xml",
        remote=(rig.server_ip, stack.pbx.port),
        service="alice",
        port=5070,
        local=rig.phone_ip,
        wrap=rig.command,
    )
    result = await sipp.run()
    assert result.returncode == 0, result.explain()
    (binding,) = stack.pbx.agent.lookup("sip:alice@any")
    assert binding.source is not None and binding.source.host == rig.router_ip
