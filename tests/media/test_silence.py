"""Silence detection as ``record`` uses it: speech noticed, long silence reported, edges trimmed."""

import numpy as np
import pytest

from sautikit.media.silence import SilenceDetector, VoiceActivity, frame_dbfs, trim_silence

RNG = np.random.default_rng(40)


def tone(frames: int, amplitude: float = 8000.0) -> np.ndarray:
    t = np.arange(frames * 160) / 8000
    return (amplitude * np.sin(2 * np.pi * 300 * t)).astype(np.int16)


def hiss(frames: int, amplitude: int = 30) -> np.ndarray:
    return RNG.integers(-amplitude, amplitude, size=frames * 160).astype(np.int16)


def frames_of(samples: np.ndarray) -> list[np.ndarray]:
    return [samples[i : i + 160] for i in range(0, len(samples), 160)]


def test_frame_levels() -> None:
    assert frame_dbfs(np.zeros(160, np.int16)) == float("-inf")
    assert frame_dbfs(np.full(160, -32768, np.int16)) == pytest.approx(0.0)
    assert frame_dbfs(tone(1, 32767)) == pytest.approx(-3.01, abs=0.1)
    assert frame_dbfs(hiss(1)) < -40


def test_reports_speech_once_then_silence_once_after_the_duration() -> None:
    detector = SilenceDetector(threshold_dbfs=-40.0, duration=1.0)
    stream = np.concatenate([hiss(10), tone(20), hiss(60)])
    events = [(i, e) for i, f in enumerate(frames_of(stream)) if (e := detector.feed(f))]
    # Speech counts from its second loud frame; silence after 50 quiet frames (1 s).
    assert events == [(11, VoiceActivity.SPEECH_STARTED), (79, VoiceActivity.SILENCE)]
    assert detector.heard_speech
    assert detector.silent_for == pytest.approx(1.2)


def test_silence_from_the_start_counts_too() -> None:
    detector = SilenceDetector(duration=0.5)
    events = [detector.feed(f) for f in frames_of(hiss(30))]
    assert events.index(VoiceActivity.SILENCE) == 24
    assert events.count(VoiceActivity.SILENCE) == 1
    assert not detector.heard_speech


def test_a_click_is_not_speech_and_does_not_reset_the_silence() -> None:
    detector = SilenceDetector(duration=1.0)
    stream = np.concatenate([hiss(20), tone(1, 20000), hiss(30)])
    events = [detector.feed(f) for f in frames_of(stream)]
    assert VoiceActivity.SPEECH_STARTED not in events
    assert events.index(VoiceActivity.SILENCE) == 50


def test_speech_resumed_rearms_the_silence_report() -> None:
    detector = SilenceDetector(duration=0.2)
    stream = np.concatenate([tone(5), hiss(15), tone(5), hiss(15)])
    events = [e for f in frames_of(stream) if (e := detector.feed(f))]
    assert events == [
        VoiceActivity.SPEECH_STARTED,
        VoiceActivity.SILENCE,
        VoiceActivity.SPEECH_STARTED,
        VoiceActivity.SILENCE,
    ]


def test_threshold_is_configurable() -> None:
    quiet_voice = tone(5, amplitude=100)  # about -53 dBFS
    assert SilenceDetector(threshold_dbfs=-40).feed(quiet_voice[:160]) is None
    detector = SilenceDetector(threshold_dbfs=-60, speech_frames=1)
    assert detector.feed(quiet_voice[:160]) is VoiceActivity.SPEECH_STARTED


def test_trim_silence_cuts_both_ends_on_frame_boundaries() -> None:
    speech = tone(25)
    trimmed = trim_silence(np.concatenate([hiss(30), speech, hiss(40)]), -40.0)
    assert len(trimmed) == len(speech)
    assert np.array_equal(trimmed, speech)


def test_trim_silence_keeps_inner_pauses_and_partial_tail() -> None:
    recording = np.concatenate([tone(3), hiss(10), tone(3), tone(1)[:50]])
    trimmed = trim_silence(recording)
    assert len(trimmed) == len(recording)


def test_trim_silence_of_nothing_but_silence_is_empty() -> None:
    assert len(trim_silence(hiss(100))) == 0
    assert len(trim_silence(np.zeros(0, np.int16))) == 0
    assert trim_silence(np.zeros(0, np.int16)).dtype == np.int16
