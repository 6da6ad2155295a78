"""Tests for sautikit.media.player: framing, loops, playlists, interruption and tones."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from sautikit.media.audio import FRAME_SAMPLES, SAMPLE_RATE
from sautikit.media.player import Player, beep, join_tone, leave_tone, silence, tone


def drain(player: Player) -> list[np.ndarray]:
    frames = []
    while (frame := player.next_frame()) is not None:
        frames.append(frame)
    return frames


def ramp(count: int, start: int = 0) -> np.ndarray:
    return np.arange(start, start + count, dtype=np.int16)


def test_prompt_is_cut_into_frames_and_the_last_is_padded() -> None:
    prompt = ramp(400)
    player = Player(prompt)
    frames = drain(player)
    assert [len(f) for f in frames] == [FRAME_SAMPLES] * 3
    assert all(f.dtype == np.int16 for f in frames)
    joined = np.concatenate(frames)
    np.testing.assert_array_equal(joined[:400], prompt)
    assert not joined[400:].any()
    assert player.done and not player.interrupted
    assert player.next_frame() is None


def test_done_is_reported_with_the_last_frame() -> None:
    player = Player(ramp(2 * FRAME_SAMPLES))
    player.next_frame()
    assert not player.done
    player.next_frame()
    assert player.done
    assert player.position == pytest.approx(0.04)


@pytest.mark.parametrize(("loop", "plays"), [(0, 1), (1, 1), (3, 3)])
def test_loop_zero_plays_once_and_n_plays_n_times(loop: int, plays: int) -> None:
    prompt = ramp(FRAME_SAMPLES)
    player = Player(prompt, loop=loop)
    assert player.duration == pytest.approx(plays * 0.02)
    frames = drain(player)
    assert len(frames) == plays
    for frame in frames:
        np.testing.assert_array_equal(frame, prompt)


def test_loops_and_playlists_are_seamless() -> None:
    first, second = ramp(100), ramp(50, start=1000)
    player = Player([first, second], loop=2)
    joined = np.concatenate(drain(player))
    expected = np.concatenate([first, second, first, second])  # 300 samples, no gaps
    np.testing.assert_array_equal(joined[:300], expected)
    assert len(joined) == 2 * FRAME_SAMPLES
    assert not joined[300:].any()


def test_prompt_shorter_than_a_frame_loops_within_a_frame() -> None:
    player = Player(ramp(3, start=1), loop=5)
    frames = drain(player)
    assert len(frames) == 1
    np.testing.assert_array_equal(frames[0][:15], [1, 2, 3] * 5)
    assert not frames[0][15:].any()


async def test_stop_interrupts_and_wait_reports_it() -> None:
    player = Player(ramp(10 * FRAME_SAMPLES))
    waiter = asyncio.create_task(player.wait())
    player.next_frame()
    player.stop()
    assert await waiter is False
    assert player.done and player.interrupted
    assert player.next_frame() is None
    player.stop()  # harmless


async def test_wait_reports_completion() -> None:
    player = Player(ramp(FRAME_SAMPLES))
    drain(player)
    assert await player.wait() is True
    player.stop()  # stopping a finished player does not mark it interrupted
    assert not player.interrupted


async def test_empty_playlist_is_done_at_once() -> None:
    for player in (Player([]), Player(np.zeros(0, dtype=np.int16), loop=4)):
        assert player.done
        assert player.next_frame() is None
        assert await player.wait() is True


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="loop"):
        Player(ramp(10), loop=-1)
    with pytest.raises(ValueError, match="int16"):
        Player(np.zeros(10, dtype=np.float32))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="frequency"):
        tone(5000, 1.0)
    with pytest.raises(ValueError, match="amplitude"):
        tone(440, 1.0, amplitude=2.0)


def dominant_frequency(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    return float(np.argmax(spectrum) * SAMPLE_RATE / len(samples))


def test_beep_is_one_kilohertz_and_starts_and_ends_softly() -> None:
    sound = beep()
    assert len(sound) == SAMPLE_RATE // 2
    assert dominant_frequency(sound) == pytest.approx(1000, abs=2)
    assert abs(int(sound[0])) < 50 and abs(int(sound[-1])) < 50  # faded: no click
    assert np.abs(sound).max() == pytest.approx(0.3 * 32767, rel=0.01)


def test_join_rises_and_leave_falls() -> None:
    join, leave = join_tone(), leave_tone()
    assert dominant_frequency(join[:900]) < dominant_frequency(join[-1400:])
    assert dominant_frequency(leave[:900]) > dominant_frequency(leave[-1400:])
    assert len(join) == len(leave) == round(0.33 * SAMPLE_RATE)


def test_silence_has_the_asked_length() -> None:
    gap = silence(1.5)
    assert len(gap) == 12000 and gap.dtype == np.int16 and not gap.any()
