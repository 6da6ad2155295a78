"""Tests for sautikit.media.channel: what call logic does to one leg, heard at the far end.

Each test connects a channel of a hand-ticked engine to a plain RTP session on loopback
(the far phone) and checks what a caller would notice: the prompt's pitch, the digits
pressed, what the recording holds, when silence ends a recording, hold, and hangup.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from tests.media.media_rig import (
    Rig,
    amplitude_at,
    dominant_frequency,
    open_rig,
    prompt,
    read_wav_channels,
    rms,
    voice,
)

from sautikit.media import (
    ChannelClosed,
    DigitsEnd,
    DigitsResult,
    PlayEnd,
    RecorderState,
    SilenceEnd,
    TextToSpeech,
)
from sautikit.media.audio import SAMPLE_RATE, load_wav
from sautikit.media.codecs import PCMA
from sautikit.media.tts import EspeakLibrary


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    async with open_rig() as rig:
        yield rig


async def test_a_prompt_reaches_the_phone_at_its_pitch(rig: Rig) -> None:
    channel, phone = await rig.call()
    outcome = await rig.run_until(channel.play(prompt(600, 0.6)))
    assert outcome.end is PlayEnd.FINISHED
    assert outcome.played == pytest.approx(0.6)
    await rig.run(5)  # the phone's jitter buffer lets the tail out
    heard = phone.heard_since(0)
    assert abs(dominant_frequency(heard) - 600) < 10
    assert rms(heard) > 2000


async def test_a_playlist_loops_whole(rig: Rig) -> None:
    channel, _ = await rig.call()
    outcome = await rig.run_until(channel.play([prompt(400, 0.2), prompt(800, 0.2)], loop=3))
    assert outcome.end is PlayEnd.FINISHED
    assert outcome.played == pytest.approx(1.2)


async def test_an_idle_channel_sends_silence_to_keep_the_stream_alive(rig: Rig) -> None:
    _, phone = await rig.call()
    await rig.run(20)
    assert phone.session.stats.packets_received >= 15
    assert rms(phone.heard_since(0)) == 0


async def test_say_speaks_to_the_phone(tmp_path: Path) -> None:
    async with open_rig(TextToSpeech(tmp_path / "tts", engine=EspeakLibrary())) as rig:
        channel, phone = await rig.call()
        outcome = await rig.run_until(channel.say("Welcome to Sautikit", "en-US"))
        assert outcome.end is PlayEnd.FINISHED
        assert outcome.played > 0.5
        assert rms(phone.heard_since(0)) > 300


async def test_a_key_press_interrupts_the_prompt_and_is_collected(rig: Rig) -> None:
    channel, phone = await rig.call()
    playing = asyncio.ensure_future(channel.play(prompt(500, 5.0), interrupt_on_dtmf=True))
    await rig.run(10)
    phone.session.send_dtmf("7")
    outcome = await rig.run_until(playing, max_ticks=50)
    assert outcome.end is PlayEnd.DIGIT
    assert outcome.digit == "7"
    assert outcome.played < 1.0
    # The key that stopped the prompt is the first digit of the answer.
    phone.session.send_dtmf("3")
    phone.session.send_dtmf("#")
    result = await rig.run_until(channel.collect_digits(finish_on_key="#"))
    assert result == DigitsResult("73", DigitsEnd.KEY, "#")


async def test_a_key_pressed_before_an_interruptible_prompt_skips_it(rig: Rig) -> None:
    channel, phone = await rig.call()
    phone.session.send_dtmf("9")
    await rig.run(10)
    outcome = await rig.run_until(channel.play(prompt(500, 2.0), interrupt_on_dtmf=True))
    assert (outcome.end, outcome.digit) == (PlayEnd.DIGIT, "9")


async def test_digits_without_interruption_leave_the_prompt_playing(rig: Rig) -> None:
    channel, phone = await rig.call()
    phone.session.send_dtmf("1")
    outcome = await rig.run_until(channel.play(prompt(500, 0.5)))
    assert outcome.end is PlayEnd.FINISHED
    assert await channel.next_digit(0) == "1"


async def test_collect_digits_ends_on_the_finish_key(rig: Rig) -> None:
    channel, phone = await rig.call()
    collecting = asyncio.ensure_future(channel.collect_digits(finish_on_key="#", timeout=5))
    for digit in "42#":
        phone.session.send_dtmf(digit)
    result = await rig.run_until(collecting)
    assert result == DigitsResult("42", DigitsEnd.KEY, "#")


async def test_collect_digits_stops_at_max_digits_and_keeps_the_rest(rig: Rig) -> None:
    channel, phone = await rig.call()
    for digit in "12345":
        phone.session.send_dtmf(digit)
    first = await rig.run_until(channel.collect_digits(max_digits=3))
    assert first == DigitsResult("123", DigitsEnd.MAX_DIGITS)
    rest = await rig.run_until(channel.collect_digits(max_digits=2))
    assert rest == DigitsResult("45", DigitsEnd.MAX_DIGITS)


async def test_collect_digits_times_out_after_silence_on_the_keypad(rig: Rig) -> None:
    channel, phone = await rig.call()
    phone.session.send_dtmf("8")
    collecting = asyncio.ensure_future(channel.collect_digits(timeout=1.0))
    result = await rig.run_until(collecting, max_ticks=200)
    assert result == DigitsResult("8", DigitsEnd.TIMEOUT)


async def test_nothing_pressed_times_out_on_the_first_digit_timeout(rig: Rig) -> None:
    channel, _ = await rig.call()
    start = rig.engine.tick
    result = await rig.run_until(
        channel.collect_digits(timeout=10.0, first_digit_timeout=0.5), max_ticks=100
    )
    assert result == DigitsResult("", DigitsEnd.TIMEOUT)
    # Media time, not wall time: half a second is 25 ticks of the clock.
    assert rig.engine.tick - start >= 25


async def test_digits_pressed_while_nobody_listens_are_kept(rig: Rig) -> None:
    channel, phone = await rig.call()
    for digit in "0*":
        phone.session.send_dtmf(digit)
    await rig.run(30)
    result = await rig.run_until(channel.collect_digits(max_digits=2))
    assert result.digits == "0*"
    channel.clear_digits()
    assert await rig.run_until(channel.next_digit(0.1)) is None


async def test_send_dtmf_reaches_the_phone(rig: Rig) -> None:
    channel, phone = await rig.call()
    channel.send_dtmf("5#")
    await rig.run(20)
    received = [phone.session.digits.get_nowait() for _ in range(phone.session.digits.qsize())]
    assert received == ["5", "#"]


async def test_mono_recording_holds_what_the_caller_says(rig: Rig, tmp_path: Path) -> None:
    channel, _ = await rig.call(voice(440))
    recording = channel.start_recording(tmp_path / "caller.wav")
    await rig.run(50)
    seconds = recording.stop()
    assert seconds == pytest.approx(1.0)
    assert recording.state is RecorderState.STOPPED
    await recording.finished()
    samples = load_wav(tmp_path / "caller.wav")
    assert len(samples) == SAMPLE_RATE
    assert abs(dominant_frequency(samples) - 440) < 10


async def test_two_channel_recording_puts_each_side_in_its_own_channel(
    rig: Rig, tmp_path: Path
) -> None:
    channel, _ = await rig.call(voice(440))
    recording = channel.start_recording(tmp_path / "both.wav", channels=2)
    await rig.run_until(channel.play(prompt(1000, 1.0)))
    recording.stop()
    await recording.finished()
    rate, (said, heard) = read_wav_channels(tmp_path / "both.wav")
    assert rate == SAMPLE_RATE
    said, heard = said[1600:], heard[1600:]  # past the far phone's jitter start
    assert amplitude_at(said, 440) > 5000 > 20 * amplitude_at(said, 1000)
    assert amplitude_at(heard, 1000) > 5000 > 20 * amplitude_at(heard, 440)


async def test_a_paused_recording_leaves_out_the_paused_time(rig: Rig, tmp_path: Path) -> None:
    channel, _ = await rig.call(voice(440))
    recording = channel.start_recording(tmp_path / "paused.wav")
    await rig.run(10)
    recording.pause()
    await rig.run(25)
    recording.resume()
    await rig.run(15)
    assert recording.stop() == pytest.approx(0.5)


async def test_silence_after_speech_ends_a_recording(rig: Rig, tmp_path: Path) -> None:
    channel, phone = await rig.call(voice(440))
    recording = channel.start_recording(tmp_path / "voicemail.wav")
    waiting = asyncio.ensure_future(channel.wait_for_silence(-40, duration=0.5))
    await rig.run(40)
    assert not waiting.done()
    phone.speaking = False
    assert await rig.run_until(waiting, max_ticks=60) is SilenceEnd.AFTER_SPEECH
    recording.stop()
    await recording.finished()
    samples = load_wav(tmp_path / "voicemail.wav")
    assert rms(samples[: 8000 * 3 // 4]) > 3000
    assert rms(samples[-2000:]) == 0


async def test_a_caller_who_never_speaks_gives_no_speech(rig: Rig) -> None:
    channel, _ = await rig.call()
    result = await rig.run_until(channel.wait_for_silence(-40, duration=0.4), max_ticks=60)
    assert result is SilenceEnd.NO_SPEECH


async def test_hold_stops_outbound_audio_and_resume_restarts_it(rig: Rig) -> None:
    channel, phone = await rig.call()
    await rig.run(5)
    channel.set_direction(send=False, receive=True)
    held_from = phone.session.stats.packets_received
    await rig.run(20)
    assert phone.session.stats.packets_received == held_from
    channel.set_direction(send=True, receive=True)
    await rig.run(5)
    assert phone.session.stats.packets_received > held_from


async def test_not_receiving_hears_silence(rig: Rig, tmp_path: Path) -> None:
    channel, _ = await rig.call(voice(440))
    channel.set_direction(send=True, receive=False)
    recording = channel.start_recording(tmp_path / "muted.wav")
    await rig.run(20)
    recording.stop()
    await recording.finished()
    assert rms(load_wav(tmp_path / "muted.wav")) == 0


async def test_a_new_prompt_replaces_the_playing_one(rig: Rig) -> None:
    channel, _ = await rig.call()
    first = asyncio.ensure_future(channel.play(prompt(500, 5.0)))
    await rig.run(5)
    second = asyncio.ensure_future(channel.play(prompt(700, 0.2)))
    assert (await rig.run_until(first)).end is PlayEnd.STOPPED
    assert (await rig.run_until(second)).end is PlayEnd.FINISHED
    third = asyncio.ensure_future(channel.play(prompt(500, 5.0)))
    await rig.run(2)
    channel.stop_playback()
    assert (await rig.run_until(third)).end is PlayEnd.STOPPED


async def test_hangup_wakes_every_waiter(rig: Rig) -> None:
    channel, _ = await rig.call()
    playing = asyncio.ensure_future(channel.play(prompt(500, 10.0)))
    collecting = asyncio.ensure_future(channel.collect_digits(timeout=60))
    silence = asyncio.ensure_future(channel.wait_for_silence(duration=60))
    await rig.run(5)
    await channel.close()
    await channel.close()
    assert (await playing).end is PlayEnd.CLOSED
    assert await collecting == DigitsResult("", DigitsEnd.CLOSED)
    assert await silence is SilenceEnd.CLOSED
    # Afterwards nothing waits either, and the leg is gone from the engine.
    assert (await channel.play(prompt(500, 1.0))).end is PlayEnd.CLOSED
    assert await channel.next_digit() is None
    assert channel not in rig.engine.channels
    with pytest.raises(ChannelClosed):
        channel.start_recording(Path("never.wav"))


async def test_hangup_finishes_the_recording_file(rig: Rig, tmp_path: Path) -> None:
    channel, _ = await rig.call(voice(440))
    recording = channel.start_recording(tmp_path / "cut.wav")
    await rig.run(25)
    await channel.close()
    assert recording.state is RecorderState.STOPPED
    await recording.finished()
    assert len(load_wav(tmp_path / "cut.wav")) == 25 * 160


async def test_reinvite_to_pcma_changes_the_codec(rig: Rig) -> None:
    channel, phone = await rig.call()
    phone.session.codec = PCMA
    phone.session.payload_type = 8
    host, port = phone.session.local_address
    channel.configure(host, port, "PCMA", 8, 101)
    outcome = await rig.run_until(channel.play(prompt(600, 0.5)))
    assert outcome.end is PlayEnd.FINISHED
    await rig.run(5)
    assert abs(dominant_frequency(phone.heard_since(0)) - 600) < 10
    assert phone.session.stats.unknown_payload_type == 0


async def test_cancelling_a_play_stops_the_prompt(rig: Rig) -> None:
    channel, phone = await rig.call()
    playing = asyncio.ensure_future(channel.play(prompt(500, 10.0)))
    await rig.run(5)
    playing.cancel()
    await rig.run(10)
    assert not channel.playing
    before = len(phone.heard)
    await rig.run(10)
    assert np.all(phone.heard_since(before) == 0)


async def test_a_recording_that_cannot_be_written_fails_alone(rig: Rig, tmp_path: Path) -> None:
    channel, _ = await rig.call(voice(440))
    taken = tmp_path / "taken.wav"
    taken.write_bytes(b"someone else's file")
    recording = channel.start_recording(taken)
    outcome = await rig.run_until(channel.play(prompt(600, 0.4)))
    recording.stop()
    with pytest.raises(FileExistsError):
        await recording.finished()
    assert taken.read_bytes() == b"someone else's file"
    assert outcome.end is PlayEnd.FINISHED
    assert not channel.closed


class _Tap:
    """A media tap that speaks ``audio`` into the leg and keeps what it is given."""

    def __init__(self, audio: np.ndarray) -> None:
        self.audio = audio
        self.position = 0
        self.inbound: list[np.ndarray] = []
        self.outbound: list[np.ndarray] = []
        self.digits: list[str] = []

    def next_frame(self) -> np.ndarray | None:
        if self.position >= len(self.audio):
            return None
        frame = self.audio[self.position : self.position + 160]
        self.position += 160
        return frame

    def on_frame(self, inbound: np.ndarray, outbound: np.ndarray) -> None:
        self.inbound.append(inbound)
        self.outbound.append(outbound)

    def on_digit(self, digit: str) -> None:
        self.digits.append(digit)


async def test_a_tap_hears_both_sides_and_its_audio_is_heard_and_recorded(
    rig: Rig, tmp_path: Path
) -> None:
    channel, phone = await rig.call(voice(440))
    tap = _Tap(prompt(1000, 1.0))
    channel.add_tap(tap)
    recording = channel.start_recording(tmp_path / "both.wav", channels=2)
    await rig.run(60)
    recording.stop()
    await recording.finished()
    channel.remove_tap(tap)
    channel.remove_tap(tap)  # idempotent
    await rig.run(5)
    # The tap heard the caller on the inbound side and its own audio on the outbound side.
    assert amplitude_at(np.concatenate(tap.inbound[20:]), 440) > 5000
    assert amplitude_at(np.concatenate(tap.outbound[:50]), 1000) > 5000
    # The caller heard the tap's audio, and the recording's "heard" channel holds it.
    assert abs(dominant_frequency(phone.heard_since(0)) - 1000) < 10
    _, (said, heard) = read_wav_channels(tmp_path / "both.wav")
    assert amplitude_at(heard[1600:8000], 1000) > 5000
    assert amplitude_at(said[1600:], 440) > 5000
    frames_seen = len(tap.inbound)
    await rig.run(5)
    assert len(tap.inbound) == frames_seen  # removed: no more frames


async def test_a_closed_channel_takes_no_tap(rig: Rig) -> None:
    channel, _ = await rig.call()
    await channel.close()
    with pytest.raises(ChannelClosed):
        channel.add_tap(_Tap(prompt(1000, 0.1)))
