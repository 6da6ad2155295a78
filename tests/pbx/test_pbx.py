"""Two PBXes on loopback: a call set up, talked over, keyed and hung up, end to end."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from tests.media.media_rig import dominant_frequency, read_wav_channels, rms

from sautikit.media import DigitsEnd, tone
from sautikit.pbx import InboundLeg
from sautikit.sip import CallFailed, EndReason


async def test_answer_play_collect_and_record(make_pbx, tmp_path: Path) -> None:
    collected: asyncio.Future = asyncio.get_running_loop().create_future()

    async def app(leg: InboundLeg) -> None:
        leg.ring()
        await leg.answer()
        recording = leg.channel.start_recording(tmp_path / "server.wav", channels=2)
        await leg.channel.play(tone(440, 0.6))
        collected.set_result(await leg.channel.collect_digits(finish_on_key="#", timeout=5))
        await leg.wait_ended()
        recording.stop()
        await recording.finished()

    server = await make_pbx(app)
    phone = await make_pbx()
    leg = await phone.dial(
        f"sip:+254700000001@127.0.0.1:{server.port}", from_uri="sip:+254711000000@127.0.0.1"
    )
    await leg.wait_answer()
    heard = leg.channel.start_recording(tmp_path / "phone.wav")
    speaking = asyncio.create_task(leg.channel.play(tone(1000, 1.2)))
    await asyncio.sleep(0.8)
    leg.channel.send_dtmf("42#")
    result = await asyncio.wait_for(collected, 10)
    await speaking
    heard.stop()
    await heard.finished()
    end = await leg.hangup()

    assert (result.digits, result.finished_by) == ("42", DigitsEnd.KEY)
    assert end.reason is EndReason.LOCAL_HANGUP
    _, (phone_heard,) = read_wav_channels(tmp_path / "phone.wav")
    assert abs(dominant_frequency(phone_heard[: 8000 // 2]) - 440) < 20
    await asyncio.sleep(0.1)
    _, (caller, prompt) = read_wav_channels(tmp_path / "server.wav")
    assert abs(dominant_frequency(caller[4000:8000]) - 1000) < 20  # left: the caller
    assert abs(dominant_frequency(prompt[:4000]) - 440) < 20  # right: what the caller heard
    assert rms(caller) > 100


async def test_busy_and_unanswered(make_pbx) -> None:
    async def busy(leg: InboundLeg) -> None:
        leg.reject(486)

    async def never(leg: InboundLeg) -> None:
        leg.ring()

    busy_pbx = await make_pbx(busy)
    silent_pbx = await make_pbx(never)
    phone = await make_pbx()

    leg = await phone.dial(f"sip:1@127.0.0.1:{busy_pbx.port}", from_uri="sip:p@127.0.0.1")
    with pytest.raises(CallFailed) as failed:
        await leg.wait_answer()
    assert failed.value.status == 486
    assert leg.channel.closed

    leg = await phone.dial(
        f"sip:1@127.0.0.1:{silent_pbx.port}", from_uri="sip:p@127.0.0.1", ring_timeout=0.5
    )
    with pytest.raises(CallFailed) as failed:
        await leg.wait_answer()
    assert failed.value.status == 487
    assert (await leg.wait_ended()).reason is EndReason.RING_TIMEOUT


async def test_hold_stops_media_and_unhold_resumes(make_pbx) -> None:
    legs: asyncio.Queue[InboundLeg] = asyncio.Queue()

    async def app(leg: InboundLeg) -> None:
        await leg.answer()
        await legs.put(leg)

    server = await make_pbx(app)
    phone = await make_pbx()
    caller = await phone.dial(f"sip:1@127.0.0.1:{server.port}", from_uri="sip:p@127.0.0.1")
    await caller.wait_answer()
    callee = await asyncio.wait_for(legs.get(), 5)

    await caller.hold()
    assert callee.media is not None and callee.media.on_hold
    assert not callee.channel.sending
    await caller.unhold()
    assert callee.channel.sending and callee.media is not None and not callee.media.on_hold
    await caller.hangup()
    assert (await asyncio.wait_for(callee.wait_ended(), 5)).reason is EndReason.REMOTE_HANGUP
    assert callee.channel.closed
