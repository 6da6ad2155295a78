"""Test signals and the measurements the codec tests make on what comes back."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Int16Array = npt.NDArray[np.int16]


def sine(hz: float, seconds: float, rate: int, amplitude: int = 8000) -> Int16Array:
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def frames(signal: Int16Array, size: int) -> list[Int16Array]:
    return [signal[i : i + size] for i in range(0, len(signal) - size + 1, size)]


def dominant_hz(signal: Int16Array, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(signal.astype(np.float64) * np.hanning(len(signal))))
    return float(np.argmax(spectrum) * rate / len(signal))


def rms(signal: Int16Array) -> float:
    return float(np.sqrt(np.mean(signal.astype(np.float64) ** 2)))


def aligned_snr_db(sent: Int16Array, heard: Int16Array, max_lag: int = 400) -> float:
    """The SNR of ``heard`` against ``sent`` at the codec delay that fits best."""
    ref = sent.astype(np.float64)
    out = heard.astype(np.float64)
    best = -np.inf
    for lag in range(max_lag):
        n = min(len(ref), len(out) - lag)
        a, b = ref[: n - 800][400:], out[lag : lag + n - 800][400:]
        noise = np.mean((a - b) ** 2)
        best = max(best, 10 * np.log10(np.mean(a**2) / max(noise, 1e-9)))
    return float(best)
