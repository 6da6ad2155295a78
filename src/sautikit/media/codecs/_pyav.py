"""Encoders and decoders backed by PyAV's bundled FFmpeg (libopus, FFmpeg's own G.722).

PyAV ships FFmpeg inside its wheel, libopus included, so Opus and G.722 need no system
library and no compiler; Sautikit already depends on it through faster-whisper. ``av`` is
imported on first use, so a process that never meets a wideband call never loads FFmpeg.

One :class:`PyAvEncoder` or :class:`PyAvDecoder` is one stream's codec state. Neither is
thread-safe; each belongs to the thread that drives its stream (the event loop, or the
recording thread for a recording's own decoder).
"""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

from sautikit.media.codecs.format import Samples
from sautikit.media.codecs.resample import StreamResampler

if TYPE_CHECKING:
    import av.audio.codeccontext

__all__ = ["PyAvDecoder", "PyAvEncoder"]


class PyAvEncoder:
    """Mono s16 PCM at ``sample_rate`` to one payload per frame, with FFmpeg's ``codec``."""

    def __init__(
        self,
        codec: str,
        sample_rate: int,
        *,
        bit_rate: int | None = None,
        options: dict[str, str] | None = None,
    ) -> None:
        import av

        context = av.CodecContext.create(codec, "w")
        assert isinstance(context, av.audio.codeccontext.AudioCodecContext)
        context.sample_rate = sample_rate
        context.layout = "mono"
        context.format = "s16"
        context.time_base = Fraction(1, sample_rate)
        if bit_rate is not None:
            context.bit_rate = bit_rate
        context.options = dict(options or {})
        context.open()
        self._av = av
        self._context: av.audio.codeccontext.AudioCodecContext = context
        self._sample_rate = sample_rate
        self._pts = 0

    def encode(self, samples: Samples) -> bytes:
        frame = self._av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples, dtype=np.int16).reshape(1, -1),
            format="s16",
            layout="mono",
        )
        frame.sample_rate = self._sample_rate
        frame.pts = self._pts
        self._pts += len(samples)
        # A whole frame in gives one packet out (both codecs here are frame-synchronous).
        return b"".join(bytes(packet) for packet in self._context.encode(frame))


class PyAvDecoder:
    """One payload to mono s16 PCM at ``sample_rate`` (converted if FFmpeg gives another)."""

    def __init__(self, codec: str, sample_rate: int) -> None:
        import av

        context = av.CodecContext.create(codec, "r")
        assert isinstance(context, av.audio.codeccontext.AudioCodecContext)
        context.sample_rate = sample_rate
        context.layout = "mono"  # a stereo Opus stream is mixed down by libopus
        context.format = "s16"
        context.open()
        self._av = av
        self._context: av.audio.codeccontext.AudioCodecContext = context
        self._sample_rate = sample_rate
        self._resampler: StreamResampler | None = None

    def decode(self, payload: bytes) -> Samples:
        if not payload:
            # An empty packet would tell FFmpeg the stream ended, and drain the decoder.
            raise ValueError("empty payload")
        try:
            frames = self._context.decode(self._av.Packet(payload))
        except self._av.FFmpegError as error:
            raise ValueError(f"undecodable payload: {error}") from None
        parts: list[Samples] = []
        for frame in frames:
            if frame.format.name != "s16" or len(frame.layout.channels) != 1:
                raise ValueError(f"decoder gave {frame.format.name} {frame.layout.name}")
            samples: Samples = frame.to_ndarray().reshape(-1).astype(np.int16, copy=False)
            if frame.sample_rate != self._sample_rate:
                if self._resampler is None or self._resampler.from_rate != frame.sample_rate:
                    self._resampler = StreamResampler(frame.sample_rate, self._sample_rate)
                samples = self._resampler.process(samples)
            parts.append(samples)
        if not parts:
            return np.zeros(0, np.int16)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)
