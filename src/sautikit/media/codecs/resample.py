"""Streaming sample-rate conversion by whole ratios, one 20 ms frame at a time.

The media plane converts between 8 kHz (G.711, prompts, the narrowband view of a leg),
16 kHz (G.722, Opus, wideband recordings) and 48 kHz (what the Opus decoder gives). Those
ratios are whole numbers, so a :class:`StreamResampler` is a Kaiser-windowed sinc low-pass
FIR applied after zero-stuffing (up) or before decimating (down), keeping the filter's
history between frames so frame edges do not click. Each frame in gives exactly
``len(frame) * to_rate / from_rate`` samples out (for a length the ratio divides), with a
fixed delay of about one millisecond.

:func:`sautikit.media.audio.resample` converts whole files with a longer kernel; this one
is short, because it runs on every frame of a live call.
"""

from __future__ import annotations

import functools
from typing import Final

import numpy as np
import numpy.typing as npt

from sautikit.media.codecs.format import Samples

__all__ = ["StreamResampler"]

# Zero crossings of the sinc on each side: 8 keeps the kernel to 33 taps at 2× and 49 at 3×
# (about 1 ms of delay), with the stopband ~60 dB down past the lower Nyquist frequency.
_ZERO_CROSSINGS: Final = 8
_KAISER_BETA: Final = 6.0
# The cutoff as a fraction of the lower Nyquist frequency: the band just below it survives.
_CUTOFF: Final = 0.9


@functools.lru_cache(maxsize=8)
def _kernel(ratio: int) -> npt.NDArray[np.float64]:
    """Low-pass taps for a ``ratio``× change, at the higher rate, with unity DC gain."""
    half = _ZERO_CROSSINGS * ratio
    n = np.arange(-half, half + 1, dtype=np.float64)
    cutoff = 0.5 * _CUTOFF / ratio  # cycles per sample at the higher rate
    taps = 2 * cutoff * np.sinc(2 * cutoff * n) * np.kaiser(len(n), _KAISER_BETA)
    taps /= taps.sum()
    taps.flags.writeable = False
    return taps


class StreamResampler:
    """Converts one stream from ``from_rate`` to ``to_rate``, frame by frame.

    The rates must divide one into the other (8000 ↔ 16000, 16000 ↔ 48000, ...); equal
    rates pass frames through untouched. Raises ValueError for other pairs.
    """

    def __init__(self, from_rate: int, to_rate: int) -> None:
        if from_rate <= 0 or to_rate <= 0:
            raise ValueError("sample rates must be positive")
        high, low = max(from_rate, to_rate), min(from_rate, to_rate)
        if high % low:
            raise ValueError(f"cannot stream-convert {from_rate} Hz to {to_rate} Hz")
        self.from_rate = from_rate
        self.to_rate = to_rate
        self._ratio = high // low
        self._up = to_rate > from_rate
        self._taps = _kernel(self._ratio)
        # The last len(taps) - 1 samples at the higher rate: the filter's memory.
        self._history = np.zeros(len(self._taps) - 1)
        # Down: how many high-rate samples to skip before the next one kept.
        self._phase = 0

    def process(self, samples: Samples) -> Samples:
        """The next stretch of the stream at ``to_rate``."""
        if self._ratio == 1:
            return samples
        ratio = self._ratio
        if self._up:
            stuffed = np.zeros(len(samples) * ratio)
            stuffed[::ratio] = samples
            stuffed *= ratio  # zero-stuffing spreads the energy: give it back
            filtered = self._filter(stuffed)
        else:
            filtered = self._filter(samples.astype(np.float64))
            kept = filtered[self._phase :: ratio]
            self._phase = (self._phase - len(filtered)) % ratio
            filtered = kept
        return np.clip(np.rint(filtered), -32768, 32767).astype(np.int16)

    def _filter(self, signal: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        buffer = np.concatenate((self._history, signal))
        self._history = buffer[len(buffer) - len(self._history) :]
        return np.convolve(buffer, self._taps, mode="valid")

    def reset(self) -> None:
        """Forget the stream so far (it restarted)."""
        self._history[:] = 0
        self._phase = 0
