"""Tests for sautikit.media.bridge: two phones on loopback hear each other through the engine."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.media.media_rig import (
    Rig,
    amplitude_at,
    open_rig,
    prompt,
    read_wav_channels,
    rms,
    voice,
)

from sautikit.media import Bridge, ChannelClosed, ChannelInUse, PlayEnd
from sautikit.media.audio import load_wav

ALICE_HZ = 440
BOB_HZ = 1100


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    async with open_rig() as rig:
        yield rig


async def test_each_phone_hears_the_other_and_not_itself(rig: Rig) -> None:
    a, alice = await rig.call(voice(ALICE_HZ))
    b, bob = await rig.call(voice(BOB_HZ))
    Bridge(a, b)
    await rig.run(50)
    heard_by_alice, heard_by_bob = alice.heard_since(10), bob.heard_since(10)
    assert amplitude_at(heard_by_alice, BOB_HZ) > 5000 > 50 * amplitude_at(heard_by_alice, ALICE_HZ)
    assert amplitude_at(heard_by_bob, ALICE_HZ) > 5000 > 50 * amplitude_at(heard_by_bob, BOB_HZ)


async def test_two_channel_recording_has_a_left_and_b_right(rig: Rig, tmp_path: Path) -> None:
    a, _ = await rig.call(voice(ALICE_HZ))
    b, _ = await rig.call(voice(BOB_HZ))
    bridge = Bridge(a, b, recording_path=tmp_path / "dial.wav")
    await rig.run(50)
    assert bridge.unbridge() == pytest.approx(1.0)
    assert bridge.recording is not None
    await bridge.recording.finished()
    _, (left, right) = read_wav_channels(tmp_path / "dial.wav")
    left, right = left[1600:], right[1600:]
    assert amplitude_at(left, ALICE_HZ) > 5000 > 50 * amplitude_at(left, BOB_HZ)
    assert amplitude_at(right, BOB_HZ) > 5000 > 50 * amplitude_at(right, ALICE_HZ)


async def test_mono_recording_mixes_both_parties(rig: Rig, tmp_path: Path) -> None:
    a, _ = await rig.call(voice(ALICE_HZ))
    b, _ = await rig.call(voice(BOB_HZ))
    bridge = Bridge(a, b, recording_path=tmp_path / "mono.wav", recording_channels=1)
    await rig.run(50)
    bridge.unbridge()
    assert bridge.recording is not None
    await bridge.recording.finished()
    samples = load_wav(tmp_path / "mono.wav")[1600:]
    assert amplitude_at(samples, ALICE_HZ) > 5000
    assert amplitude_at(samples, BOB_HZ) > 5000


async def test_unbridge_gives_each_leg_back_its_own_prompts(rig: Rig) -> None:
    a, alice = await rig.call(voice(ALICE_HZ))
    b, bob = await rig.call(voice(BOB_HZ))
    bridge = Bridge(a, b)
    await rig.run(10)
    assert bridge.unbridge() is None
    bridge.unbridge()
    await bridge.wait()
    assert a.mixer is None and b.mixer is None
    await rig.run(10)
    after = len(alice.heard)
    playing = asyncio.ensure_future(a.play(prompt(700, 0.6)))
    await rig.run(30)
    assert amplitude_at(alice.heard_since(after), 700) > 2000
    assert amplitude_at(alice.heard_since(after), BOB_HZ) < 100
    assert rms(bob.heard_since(after)) == 0
    assert (await rig.run_until(playing)).end is PlayEnd.FINISHED


async def test_a_prompt_to_one_bridged_leg_is_heard_by_that_leg_only(rig: Rig) -> None:
    a, alice = await rig.call(voice(ALICE_HZ))
    b, bob = await rig.call(voice(BOB_HZ))
    Bridge(a, b)
    start = len(alice.heard)
    outcome = await rig.run_until(a.play(prompt(700, 1.0)))
    assert outcome.end is PlayEnd.FINISHED
    heard_by_alice, heard_by_bob = alice.heard_since(start + 10), bob.heard_since(start + 10)
    assert amplitude_at(heard_by_alice, 700) > 5000
    assert amplitude_at(heard_by_alice, BOB_HZ) > 5000
    assert amplitude_at(heard_by_bob, 700) < 100


async def test_a_leg_hanging_up_ends_the_bridge(rig: Rig, tmp_path: Path) -> None:
    a, _ = await rig.call(voice(ALICE_HZ))
    b, bob = await rig.call(voice(BOB_HZ))
    bridge = Bridge(a, b, recording_path=tmp_path / "cut.wav")
    await rig.run(20)
    await a.close()
    await asyncio.wait_for(bridge.wait(), 1)
    assert not bridge.active
    assert b.mixer is None
    assert bridge.recording is not None
    assert bridge.recording.duration == pytest.approx(0.4)
    after = len(bob.heard)
    await rig.run(20)
    assert rms(bob.heard_since(after + 5)) == 0


async def test_a_leg_is_in_one_bridge_at_a_time(rig: Rig) -> None:
    a, _ = await rig.call()
    b, _ = await rig.call()
    c, _ = await rig.call()
    with pytest.raises(ValueError):
        Bridge(a, a)
    Bridge(a, b)
    with pytest.raises(ChannelInUse):
        Bridge(c, a)
    assert c.mixer is None
    await c.close()
    with pytest.raises(ChannelClosed):
        Bridge(c, b)


async def test_keys_pressed_on_one_side_reach_the_other(rig: Rig) -> None:
    a, alice = await rig.call()
    b, bob = await rig.call()
    Bridge(a, b)
    for digit in "12#":
        alice.session.send_dtmf(digit)
    bob.session.send_dtmf("9")
    await rig.run(40)
    heard_by_bob = [bob.session.digits.get_nowait() for _ in range(bob.session.digits.qsize())]
    heard_by_alice = [
        alice.session.digits.get_nowait() for _ in range(alice.session.digits.qsize())
    ]
    assert heard_by_bob == ["1", "2", "#"]
    assert heard_by_alice == ["9"]
    # Each leg's own call logic sees what its caller pressed (hangupOnStar).
    assert (await a.collect_digits(finish_on_key="#")).digits == "12"


async def test_relaying_dtmf_can_be_turned_off(rig: Rig) -> None:
    a, alice = await rig.call()
    b, bob = await rig.call()
    Bridge(a, b, relay_dtmf=False)
    alice.session.send_dtmf("5")
    await rig.run(20)
    assert bob.session.digits.empty()
    assert await a.next_digit(0) == "5"
