"""Tests for sautikit.media.engine: the engine on its real 20 ms clock, ports, stats, failures.

The real-clock tests run the engine's own MediaClock and pace the far phones with a second
clock, as two devices would be; they last a second or two and assert on what was heard,
never on how long anything took.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from tests.media.media_rig import (
    HOST,
    PORT_RANGE,
    Phone,
    Rig,
    amplitude_at,
    dominant_frequency,
    open_rig,
    rms,
    until,
    voice,
)

from sautikit.media import (
    Bridge,
    Conference,
    DigitsEnd,
    MediaClock,
    MediaEngine,
    PlayEnd,
    PortsExhausted,
    SilenceEnd,
)
from sautikit.media.audio import encode_wav
from sautikit.media.engine import GIL_SWITCH_INTERVAL, PunctualSleep
from sautikit.media.rtp import RtpPacket


@pytest.fixture
async def engine() -> AsyncIterator[MediaEngine]:
    async with MediaEngine(HOST, PORT_RANGE) as engine:
        yield engine


@pytest.fixture
async def phone_clock() -> AsyncIterator[MediaClock]:
    clock = MediaClock()
    clock.start()
    yield clock
    await clock.close()


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    async with open_rig() as rig:
        yield rig


async def dial(engine: MediaEngine, clock: MediaClock, pitch: float | None = None) -> Phone:
    channel = await engine.open_channel()
    phone = await Phone.dial(channel, None if pitch is None else voice(pitch))
    clock.subscribe(phone)
    return phone


async def test_a_16_khz_wav_plays_at_8_khz_on_the_running_clock(
    engine: MediaEngine, phone_clock: MediaClock, tmp_path: Path
) -> None:
    t = np.arange(16000) / 16000
    wav = tmp_path / "prompt-16k.wav"
    wav.write_bytes(encode_wav(np.rint(9000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16), 16000))
    phone = await dial(engine, phone_clock)
    try:
        (channel,) = engine.channels
        outcome = await asyncio.wait_for(channel.play_file(wav), 5)
        assert outcome.end is PlayEnd.FINISHED
        assert outcome.played == pytest.approx(1.0)
        await until(lambda: len(phone.heard) > 55, "the tail heard")
        heard = phone.heard_since(0)
        assert abs(dominant_frequency(heard) - 440) < 5
        # One second of tone: 50 loud 20 ms frames (give or take the edges' fades, and a
        # few the phone's own jitter buffer drops as late on a loaded machine), never more.
        assert 40 <= sum(rms(frame) > 1000 for frame in phone.heard) <= 51
        stats = engine.stats()
        assert stats.clock.ticks >= 50
        assert stats.channels == 1
        assert stats.ports_in_use == 1
        assert stats.tick_work_max > 0
    finally:
        phone.close()


async def test_a_bridge_on_the_running_clock(engine: MediaEngine, phone_clock: MediaClock) -> None:
    alice = await dial(engine, phone_clock, 440)
    bob = await dial(engine, phone_clock, 1100)
    try:
        a, b = engine.channels
        Bridge(a, b)
        await until(lambda: len(alice.heard) > 60 and len(bob.heard) > 60, "a second of talk")
        heard_by_alice, heard_by_bob = alice.heard_since(20), bob.heard_since(20)
        assert amplitude_at(heard_by_alice, 1100) > 3000 > 30 * amplitude_at(heard_by_alice, 440)
        assert amplitude_at(heard_by_bob, 440) > 3000 > 30 * amplitude_at(heard_by_bob, 1100)
        # Same codec, nothing played: the bridge relays, off the tick.
        stats = engine.stats()
        assert (stats.mixers, stats.relayed_channels) == (0, 2)
    finally:
        alice.close()
        bob.close()


async def test_hangup_on_the_running_clock_wakes_collect_and_play(
    engine: MediaEngine, phone_clock: MediaClock
) -> None:
    phone = await dial(engine, phone_clock)
    try:
        (channel,) = engine.channels
        playing = asyncio.ensure_future(channel.play(voice(500, 30.0)))
        collecting = asyncio.ensure_future(channel.collect_digits(timeout=30))
        await until(lambda: rms(phone.heard_since(0)) > 0, "the prompt playing")
        await channel.close()
        assert (await asyncio.wait_for(playing, 1)).end is PlayEnd.CLOSED
        assert (await asyncio.wait_for(collecting, 1)).finished_by is DigitsEnd.CLOSED
    finally:
        phone.close()


async def test_closing_the_engine_hangs_up_every_channel() -> None:
    engine = MediaEngine(HOST, PORT_RANGE)
    engine.start()
    first = await engine.open_channel()
    second = await engine.open_channel()
    silence = asyncio.ensure_future(first.wait_for_silence(duration=30))
    digit = asyncio.ensure_future(second.next_digit())
    await asyncio.sleep(0.05)
    await engine.close()
    await engine.close()
    assert await asyncio.wait_for(silence, 1) is SilenceEnd.CLOSED
    assert await asyncio.wait_for(digit, 1) is None
    assert first.closed and second.closed
    assert not engine.clock.running
    assert engine.stats().ports_in_use == 0


async def test_ports_come_from_the_range_and_go_back_on_hangup() -> None:
    first_port = PORT_RANGE[0]
    async with MediaEngine(HOST, (first_port, first_port + 5)) as engine:
        channels = []
        with pytest.raises(PortsExhausted):
            for _ in range(4):
                channels.append(await engine.open_channel())
        assert len(channels) == engine.ports.capacity == 3
        for channel in channels:
            host, port = channel.local_address
            assert host == HOST
            assert port % 2 == 0 and first_port <= port <= first_port + 5
        await channels[0].close()
        await asyncio.sleep(0)
        await engine.open_channel()


async def test_rtp_timestamps_follow_ticks_the_clock_skipped(rig: Rig) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind((HOST, 0))
    listener.settimeout(1)
    try:
        channel = await rig.engine.open_channel()
        channel.configure(HOST, listener.getsockname()[1])
        # The clock skipped ticks 2 to 6 in a stall; tick 8 sends what tick 7 queued.
        for tick in (0, 1, 7, 8):
            rig.engine.on_tick(tick)
        stamps = [RtpPacket.parse(listener.recv(2048)).timestamp for _ in range(3)]
        assert [stamps[1] - stamps[0], stamps[2] - stamps[1]] == [160, 6 * 160]
    finally:
        listener.close()


async def test_each_tick_sends_first_what_the_last_tick_queued(rig: Rig) -> None:
    # Packets leave as the tick starts, before any other work, so every leg's send
    # intervals stay 20 ms however long the work of a tick takes.
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind((HOST, 0))
    listener.setblocking(False)
    try:
        channel = await rig.engine.open_channel()
        channel.configure(HOST, listener.getsockname()[1])
        rig.engine.on_tick(0)
        with pytest.raises(BlockingIOError):
            listener.recv(2048)
        rig.engine.on_tick(1)
        first = RtpPacket.parse(listener.recv(2048))
        assert first.marker  # the tick-0 frame, the stream's first packet
        with pytest.raises(BlockingIOError):
            listener.recv(2048)
        await channel.close()
        rig.engine.on_tick(2)
        with pytest.raises(BlockingIOError):
            listener.recv(2048)  # a leg that hung up sends nothing more
    finally:
        listener.close()


async def test_a_failing_channel_is_hung_up_and_the_others_go_on(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken, _ = await rig.call(voice(440))
    healthy, phone = await rig.call(voice(700))
    collecting = asyncio.ensure_future(broken.collect_digits(timeout=30))

    def fail() -> np.ndarray:
        raise RuntimeError("a decoder bug")

    monkeypatch.setattr(broken.session, "read_frame", fail)
    playing = asyncio.ensure_future(healthy.play(voice(900, 0.4)))
    await rig.run(30)
    assert broken.closed
    assert (await collecting).finished_by is DigitsEnd.CLOSED
    assert (await playing).end is PlayEnd.FINISHED
    assert amplitude_at(phone.heard_since(0), 900) > 2000
    stats = rig.engine.stats()
    assert stats.failed_channels == 1
    assert stats.channels == 1


async def test_a_failing_room_is_closed_and_its_members_go_on(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    room = Conference("faulty", rig.engine)
    member, phone = await rig.call()
    room.join(member)

    def fail() -> None:
        raise RuntimeError("a mixing bug")

    monkeypatch.setattr(room, "mix", fail)
    await rig.run(2)
    assert room.closed
    assert member.mixer is None
    assert rig.engine.stats().mixers == 0
    outcome = await rig.run_until(member.play(voice(900, 0.4)))
    assert outcome.end is PlayEnd.FINISHED
    assert amplitude_at(phone.heard_since(0), 900) > 2000


async def test_the_clock_sleep_never_wakes_before_its_deadline() -> None:
    # The engine's clock sleeps on a timer thread; a tick must never come early.
    sleep = PunctualSleep()
    try:
        for delay in (0.0, 0.001, 0.02, 0.013):
            deadline = time.monotonic() + delay
            await sleep(delay)
            assert time.monotonic() >= deadline
    finally:
        sleep.close()


async def test_a_cancelled_clock_sleep_leaves_the_next_one_working() -> None:
    sleep = PunctualSleep()
    try:
        waiter = asyncio.ensure_future(sleep(0.02))
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        await asyncio.wait_for(sleep(0.01), 5)
    finally:
        sleep.close()


async def test_a_running_engine_keeps_gil_switches_short() -> None:
    # The recording thread must not hold the loop's thread off for the default 5 ms.
    async with MediaEngine(HOST, PORT_RANGE) as engine:
        await until(lambda: engine.stats().clock.ticks > 0, "the clock ticks")
        assert sys.getswitchinterval() <= GIL_SWITCH_INTERVAL
