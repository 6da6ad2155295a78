"""Tests for sautikit.media.recorder: mono and dual recordings, pause/resume and stop."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from sautikit.media.audio import FRAME_SAMPLES, WavSpoolWriter
from sautikit.media.recorder import Recorder, RecorderState


def frame(value: int, count: int = FRAME_SAMPLES) -> np.ndarray:
    return np.full(count, value, dtype=np.int16)


def read_wav(path: Path) -> tuple[int, np.ndarray]:
    with wave.open(str(path), "rb") as reader:
        channels = reader.getnchannels()
        samples = np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2")
    return channels, samples.reshape(-1, channels)


def test_mono_recording_with_pause_leaves_out_paused_audio(tmp_path: Path) -> None:
    path = tmp_path / "voicemail.wav"
    recorder = Recorder(WavSpoolWriter(path))
    recorder.write(frame(1))
    recorder.pause()
    assert recorder.state is RecorderState.PAUSED
    recorder.write(frame(2))  # a card number read out while paused: never stored
    recorder.resume()
    recorder.write(frame(3))
    recorder.write(None)  # a tick with no audio is silence, keeping time
    assert recorder.duration == pytest.approx(0.06)
    assert recorder.stop() == pytest.approx(0.06)
    channels, samples = read_wav(path)
    assert channels == 1
    np.testing.assert_array_equal(samples[:, 0], np.concatenate([frame(1), frame(3), frame(0)]))
    assert 2 not in samples


def test_dual_recording_puts_each_party_on_its_own_channel(tmp_path: Path) -> None:
    path = tmp_path / "dial.wav"
    recorder = Recorder(WavSpoolWriter(path, channels=2))
    assert recorder.channels == 2
    recorder.write(frame(100), frame(-200))
    recorder.write(frame(101), None)  # callee silent this tick
    recorder.write(None, frame(-201))  # caller's packet lost this tick
    recorder.write(frame(7, 80), frame(8))  # a short frame is padded to stay aligned
    recorder.write(None)  # neither party sent anything
    recorder.stop()
    channels, samples = read_wav(path)
    assert channels == 2
    left = np.concatenate([frame(100), frame(101), frame(0), frame(7, 80), frame(0, 240)])
    right = np.concatenate([frame(-200), frame(0), frame(-201), frame(8), frame(0)])
    np.testing.assert_array_equal(samples[:, 0], left)
    np.testing.assert_array_equal(samples[:, 1], right)


def test_stop_is_final_and_idempotent(tmp_path: Path) -> None:
    recorder = Recorder(WavSpoolWriter(tmp_path / "r.wav"))
    recorder.write(frame(5))
    assert recorder.stop() == pytest.approx(0.02)
    recorder.write(frame(6))
    recorder.resume()
    recorder.pause()
    assert recorder.state is RecorderState.STOPPED
    assert recorder.stop() == pytest.approx(0.02)
    assert recorder.writer.closed


def test_paused_recording_is_flushed_to_disk(tmp_path: Path) -> None:
    path = tmp_path / "paused.wav"
    recorder = Recorder(WavSpoolWriter(path, sync_interval=60))
    recorder.write(frame(9))
    recorder.pause()
    # While paused the header already counts everything recorded so far.
    assert read_wav(path)[1].shape == (FRAME_SAMPLES, 1)
    recorder.stop()


def test_bad_frames_are_refused(tmp_path: Path) -> None:
    mono = Recorder(WavSpoolWriter(tmp_path / "m.wav"))
    with pytest.raises(ValueError, match="mix parties first"):
        mono.write(frame(1), frame(2))
    with pytest.raises(ValueError, match="int16"):
        mono.write(np.zeros(FRAME_SAMPLES, dtype=np.float64))  # type: ignore[arg-type]
    mono.stop()
