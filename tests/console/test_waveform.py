"""The recording player's waveform: one row per channel, drawn from the WAV itself."""

from __future__ import annotations

import io
import re
import wave

import numpy as np
import pytest

from sautikit.console.waveform import waveform_svg


def _wav(channels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(channels.shape[1])
        writer.setsampwidth(2)
        writer.setframerate(8000)
        writer.writeframes(channels.astype("<i2").tobytes())
    return buffer.getvalue()


def _bar_heights(path: str) -> list[float]:
    return [
        float(bottom) - float(top) for top, bottom in re.findall(r"M[\d.]+ ([\d.]+)V([\d.]+)", path)
    ]


def test_a_dual_recording_draws_the_caller_and_the_callee_apart() -> None:
    seconds = np.arange(8000 * 2) / 8000
    caller = (np.sin(2 * np.pi * 440 * seconds) * 20_000) * (seconds < 1)  # speaks first
    callee = (np.sin(2 * np.pi * 300 * seconds) * 20_000) * (seconds >= 1)  # then answers
    svg = waveform_svg(_wav(np.stack([caller, callee], axis=1)), columns=100)
    assert 'aria-label="Waveform, 2 channel(s)"' in svg
    assert "<title>channel 1 (caller)</title>" in svg and "<title>channel 2 (callee)</title>" in svg
    first, second = (_bar_heights(path) for path in re.findall(r'd="([^"]+)"', svg))
    assert min(first[:45]) > 30 and max(first[55:]) < 1  # loud, then silent
    assert max(second[:45]) < 1 and min(second[55:]) > 30


def test_only_16_bit_pcm_is_drawn() -> None:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(1)
        writer.setframerate(8000)
        writer.writeframes(b"\x80" * 800)
    with pytest.raises(ValueError, match="16-bit"):
        waveform_svg(buffer.getvalue())
