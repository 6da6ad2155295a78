"""A recording's waveform as SVG: one row per channel (dual recordings: caller, callee)."""

from __future__ import annotations

import io
import wave

import numpy as np

__all__ = ["waveform_svg"]

_WIDTH = 800
_ROW_HEIGHT = 60


def waveform_svg(wav_bytes: bytes, *, columns: int = 400) -> str:
    """Peak amplitude per column for each channel of a 16-bit PCM WAV."""
    with wave.open(io.BytesIO(wav_bytes)) as reader:
        channels = reader.getnchannels()
        width = reader.getsampwidth()
        frames = reader.readframes(reader.getnframes())
    if width != 2 or channels < 1:
        raise ValueError("only 16-bit PCM WAV is drawn")
    samples = np.frombuffer(frames, dtype="<i2").reshape(-1, channels)
    rows = []
    step = _WIDTH / columns
    for channel in range(channels):
        audio = np.abs(samples[:, channel].astype(np.int32))
        chunks = np.array_split(audio, columns) if len(audio) else [np.zeros(1)] * columns
        peaks = [int(chunk.max()) if len(chunk) else 0 for chunk in chunks]
        top = channel * _ROW_HEIGHT
        middle = top + _ROW_HEIGHT / 2
        bars = " ".join(
            f"M{i * step:.1f} {middle - peak / 32768 * _ROW_HEIGHT / 2:.1f}"
            f"V{middle + peak / 32768 * _ROW_HEIGHT / 2:.1f}"
            for i, peak in enumerate(peaks)
        )
        name = "caller" if channels == 2 and channel == 0 else "callee" if channels == 2 else ""
        label = f"channel {channel + 1}" + (f" ({name})" if name else "")
        rows.append(
            f'<g class="channel-{channel + 1}"><title>{label}</title>'
            f'<path d="{bars}" stroke="currentColor" stroke-width="1.5"/></g>'
        )
    height = channels * _ROW_HEIGHT
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_WIDTH} {height}" '
        f'width="{_WIDTH}" height="{height}" role="img" '
        f'aria-label="Waveform, {channels} channel(s)">' + "".join(rows) + "</svg>"
    )
