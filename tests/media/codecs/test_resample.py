"""Streaming conversion between 8, 16 and 48 kHz, frame by frame, on the live path."""

import numpy as np
import pytest
from tests.media.codecs.signals import dominant_hz, frames, rms, sine

from sautikit.media.codecs import StreamResampler


@pytest.mark.parametrize(("from_rate", "to_rate"), [(8000, 16000), (16000, 8000), (48000, 16000)])
def test_a_tone_keeps_its_pitch_and_level(from_rate: int, to_rate: int) -> None:
    resampler = StreamResampler(from_rate, to_rate)
    size = from_rate // 50
    out = [resampler.process(f) for f in frames(sine(1000, 1.0, from_rate), size)]
    assert {len(f) for f in out} == {to_rate // 50}  # exactly one frame out per frame in
    heard = np.concatenate(out)[to_rate // 10 :]
    assert dominant_hz(heard, to_rate) == pytest.approx(1000, abs=5)
    assert rms(heard) == pytest.approx(8000 / np.sqrt(2), rel=0.03)


def test_going_down_filters_out_what_would_alias() -> None:
    # 6 kHz cannot exist at 8 kHz: folded back it would be a 2 kHz whistle.
    resampler = StreamResampler(16000, 8000)
    out = np.concatenate([resampler.process(f) for f in frames(sine(6000, 0.5, 16000), 320)])
    assert rms(out[800:]) < 8000 / np.sqrt(2) / 100  # at least 40 dB down


def test_frames_join_without_clicks() -> None:
    signal = sine(440, 0.4, 8000)
    whole = StreamResampler(8000, 16000).process(signal)
    resampler = StreamResampler(8000, 16000)
    framed = np.concatenate([resampler.process(f) for f in frames(signal, 160)])
    assert np.array_equal(whole, framed)


def test_odd_lengths_keep_the_decimation_phase() -> None:
    signal = sine(500, 0.3, 48000)
    whole = StreamResampler(48000, 16000).process(signal)
    resampler = StreamResampler(48000, 16000)
    parts = [resampler.process(signal[i : i + 7]) for i in range(0, len(signal), 7)]
    assert np.array_equal(whole, np.concatenate(parts))


def test_same_rate_passes_through_and_other_ratios_are_refused() -> None:
    frame = sine(440, 0.02, 8000)
    assert StreamResampler(8000, 8000).process(frame) is frame
    with pytest.raises(ValueError, match="44100"):
        StreamResampler(44100, 16000)
    with pytest.raises(ValueError, match="positive"):
        StreamResampler(0, 8000)
