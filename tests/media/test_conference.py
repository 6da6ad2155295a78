"""Tests for sautikit.media.conference: three phones on loopback in one room."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.media.media_rig import Phone, Rig, amplitude_at, open_rig, voice

from sautikit.media import (
    Bridge,
    ChannelInUse,
    Conference,
    MediaChannel,
    PlayEnd,
    RecorderState,
)
from sautikit.media.audio import load_wav

PITCHES = (440, 700, 1100)
# The two notes of the join and leave chimes.
CHIME_HZ = (523.25, 783.99)


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    async with open_rig() as rig:
        yield rig


async def room_of_three(
    rig: Rig, beep: bool = False
) -> tuple[Conference, list[MediaChannel], list[Phone]]:
    room = Conference("standup", rig.engine, beep=beep)
    channels, phones = [], []
    for pitch in PITCHES:
        channel, phone = await rig.call(voice(pitch))
        room.join(channel)
        channels.append(channel)
        phones.append(phone)
    return room, channels, phones


async def test_each_member_hears_the_two_others_but_not_itself(rig: Rig) -> None:
    room, _, phones = await room_of_three(rig)
    assert len(room) == 3
    await rig.run(50)
    for own, phone in zip(PITCHES, phones, strict=True):
        heard = phone.heard_since(10)
        for pitch in PITCHES:
            if pitch == own:
                assert amplitude_at(heard, pitch) < 100
            else:
                assert amplitude_at(heard, pitch) > 5000


async def test_a_muted_member_is_heard_by_nobody_but_still_hears(rig: Rig) -> None:
    room, channels, phones = await room_of_three(rig)
    room.mute(channels[0])
    assert room.is_muted(channels[0])
    await rig.run(50)
    muted_pitch = PITCHES[0]
    for phone in phones[1:]:
        assert amplitude_at(phone.heard_since(10), muted_pitch) < 100
    heard_by_muted = phones[0].heard_since(10)
    assert amplitude_at(heard_by_muted, PITCHES[1]) > 5000
    assert amplitude_at(heard_by_muted, PITCHES[2]) > 5000
    room.mute(channels[0], False)
    start = len(phones[1].heard)
    await rig.run(30)
    assert amplitude_at(phones[1].heard_since(start + 10), muted_pitch) > 5000


async def test_join_and_leave_chimes_are_heard(rig: Rig) -> None:
    room = Conference("chimes", rig.engine)
    first, listener = await rig.call()
    room.join(first)
    await rig.run(30)
    second, _ = await rig.call()
    start = len(listener.heard)
    room.join(second)
    await rig.run(30)
    joined = listener.heard_since(start)
    assert all(amplitude_at(joined, note) > 1000 for note in CHIME_HZ)
    start = len(listener.heard)
    await rig.run(20)
    assert max(amplitude_at(listener.heard_since(start), note) for note in CHIME_HZ) < 50
    room.leave(second)
    assert second.mixer is None
    start = len(listener.heard)
    await rig.run(30)
    left = listener.heard_since(start)
    assert all(amplitude_at(left, note) > 1000 for note in CHIME_HZ)


async def test_room_recording_holds_every_unmuted_member(rig: Rig, tmp_path: Path) -> None:
    room, channels, _ = await room_of_three(rig)
    room.mute(channels[2])
    recording = room.start_recording(tmp_path / "room.wav")
    await rig.run(50)
    assert room.close() == pytest.approx(1.0)
    assert recording.duration == pytest.approx(1.0)
    await recording.finished()
    samples = load_wav(tmp_path / "room.wav")[1600:]
    assert amplitude_at(samples, PITCHES[0]) > 5000
    assert amplitude_at(samples, PITCHES[1]) > 5000
    assert amplitude_at(samples, PITCHES[2]) < 100
    assert all(channel.mixer is None for channel in channels)


async def test_a_member_who_hangs_up_leaves_the_room(rig: Rig) -> None:
    room, channels, phones = await room_of_three(rig)
    await rig.run(10)
    await channels[0].close()
    assert channels[0] not in room
    assert room.members == tuple(channels[1:])
    start = len(phones[1].heard)
    await rig.run(30)
    heard = phones[1].heard_since(start + 10)
    assert amplitude_at(heard, PITCHES[0]) < 100
    assert amplitude_at(heard, PITCHES[2]) > 5000


async def test_a_member_cannot_also_be_bridged(rig: Rig) -> None:
    room = Conference("busy", rig.engine)
    a, _ = await rig.call()
    b, _ = await rig.call()
    room.join(a)
    with pytest.raises(ChannelInUse):
        Bridge(a, b)
    with pytest.raises(KeyError):
        room.mute(b)
    room.close()
    with pytest.raises(RuntimeError):
        room.join(b)
    Bridge(a, b)


async def test_engine_shutdown_closes_rooms_and_finishes_their_recordings(tmp_path: Path) -> None:
    async with open_rig() as rig:
        room, channels, _ = await room_of_three(rig)
        recording = room.start_recording(tmp_path / "shutdown.wav")
        await rig.run(10)
        await rig.engine.close()
        assert len(room) == 0
        assert recording.state is RecorderState.STOPPED
        await recording.finished()
        assert len(load_wav(tmp_path / "shutdown.wav")) == 10 * 160
        assert all(channel.closed for channel in channels)


async def test_a_prompt_to_one_member_is_heard_by_that_member_only(rig: Rig) -> None:
    room, channels, phones = await room_of_three(rig)
    start = len(phones[0].heard)
    outcome = await rig.run_until(channels[0].play(voice(1500, 1.0)))
    assert outcome.end is PlayEnd.FINISHED
    assert amplitude_at(phones[0].heard_since(start + 10), 1500) > 5000
    assert amplitude_at(phones[0].heard_since(start + 10), PITCHES[1]) > 5000
    assert amplitude_at(phones[1].heard_since(start + 10), 1500) < 100
    assert room.members == tuple(channels)


async def test_a_room_takes_only_its_own_engines_channels(rig: Rig) -> None:
    async with open_rig() as other:
        stranger, _ = await other.call()
        with pytest.raises(ValueError):
            Conference("elsewhere", rig.engine).join(stranger)
