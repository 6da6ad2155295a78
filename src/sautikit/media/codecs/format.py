"""What a payload format is to the media plane: an RTP clock, a PCM rate, and coders.

A :class:`PayloadFormat` is immutable and shared; the coders it makes
(:meth:`PayloadFormat.new_encoder`, :meth:`PayloadFormat.new_decoder`) hold one stream's
state (Opus and G.722 predict from what came before), so every RTP stream, and every
recording that decodes one, makes its own.

Two rates matter and differ for wideband codecs:

* ``clock_rate`` is the RTP timestamp clock, as SDP's ``a=rtpmap`` names it: 8000 for
  G.711, **8000 for G.722** although it carries 16 kHz audio (RFC 3551 §4.5.2 kept the
  number from an early mistake), 48000 for Opus whatever the audio bandwidth (RFC 7587 §4.1).
* ``sample_rate`` is the rate of the int16 PCM the encoder takes and the decoder gives:
  8000 for G.711, 16000 for G.722 and for Sautikit's Opus streams (wideband speech; the
  media plane has no use for more).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

import numpy as np
import numpy.typing as npt

__all__ = [
    "FRAME_MS",
    "NARROWBAND_RATE",
    "WIDEBAND_RATE",
    "Decoder",
    "Encoder",
    "PayloadFormat",
    "Samples",
]

#: Mono int16 PCM at a format's ``sample_rate``.
Samples = npt.NDArray[np.int16]

#: The media clock's frame: every encoder is fed 20 ms at a time.
FRAME_MS: Final = 20
NARROWBAND_RATE: Final = 8000
WIDEBAND_RATE: Final = 16000


class Encoder(Protocol):
    """One stream's encoder: a frame of ``sample_rate`` PCM in, one RTP payload out."""

    def encode(self, samples: Samples) -> bytes: ...


class Decoder(Protocol):
    """One stream's decoder: one RTP payload in, its PCM at ``sample_rate`` out.

    Raises :class:`ValueError` (only) for a payload it cannot decode.
    """

    def decode(self, payload: bytes) -> Samples: ...


@dataclass(frozen=True, slots=True)
class PayloadFormat:
    """An audio payload format the media plane can send and receive (see the module)."""

    name: str
    """The SDP encoding name, in the RFC's spelling (``PCMU``, ``G722``, ``opus``)."""
    clock_rate: int
    sample_rate: int
    payload_type: int
    """The static type, or for a dynamic format the number Sautikit offers it with."""
    new_encoder: Callable[[], Encoder]
    new_decoder: Callable[[], Decoder]
    channels: int = 1
    """The ``a=rtpmap`` channel count (2 for Opus by RFC 7587 §7, which still sends mono)."""

    @property
    def wideband(self) -> bool:
        """Whether the audio is wider than the 8 kHz telephone band."""
        return self.sample_rate > NARROWBAND_RATE

    @property
    def frame_samples(self) -> int:
        """PCM samples in one 20 ms frame."""
        return self.sample_rate * FRAME_MS // 1000

    def rtp_duration(self, samples: int) -> int:
        """How far ``samples`` of PCM move the RTP timestamp."""
        return samples * self.clock_rate // self.sample_rate

    def __repr__(self) -> str:
        return f"<PayloadFormat {self.name}/{self.clock_rate} at {self.sample_rate} Hz>"
