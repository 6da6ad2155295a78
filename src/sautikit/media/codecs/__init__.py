"""The audio payload formats Sautikit's media plane speaks, and the registry of them.

Pure codecs, apart from any transport: PCM frames in, RTP payloads out, and back. Each
format is a :class:`~sautikit.media.codecs.format.PayloadFormat` (RTP clock, PCM rate,
payload type, and factories for one stream's encoder and decoder):

* :data:`PCMU`, :data:`PCMA` — G.711, 8 kHz (:mod:`~sautikit.media.codecs.g711`);
* :data:`G722` — 16 kHz audio on an 8 kHz RTP clock (:mod:`~sautikit.media.codecs.g722`);
* :data:`OPUS` — 16 kHz audio on a 48 kHz RTP clock (:mod:`~sautikit.media.codecs.opus`).

:func:`format_by_name` maps an SDP encoding name (what offer/answer settled, see
:mod:`sautikit.sip.sdp`) to its format. :class:`~sautikit.media.codecs.resample.StreamResampler`
converts a stream between these rates frame by frame.
"""

from __future__ import annotations

from typing import Final

from sautikit.media.codecs.format import (
    NARROWBAND_RATE,
    WIDEBAND_RATE,
    Decoder,
    Encoder,
    PayloadFormat,
    Samples,
)
from sautikit.media.codecs.g711 import PCMA, PCMU
from sautikit.media.codecs.g722 import G722
from sautikit.media.codecs.opus import OPUS
from sautikit.media.codecs.resample import StreamResampler

__all__ = [
    "FORMATS",
    "G722",
    "NARROWBAND_RATE",
    "OPUS",
    "PCMA",
    "PCMU",
    "WIDEBAND_RATE",
    "Decoder",
    "Encoder",
    "PayloadFormat",
    "Samples",
    "StreamResampler",
    "format_by_name",
]

FORMATS: Final[tuple[PayloadFormat, ...]] = (PCMU, PCMA, G722, OPUS)
"""Every format the media plane can encode and decode."""

_BY_NAME: Final = {payload_format.name.lower(): payload_format for payload_format in FORMATS}


def format_by_name(name: str) -> PayloadFormat:
    """The format for an SDP encoding name (case-insensitive); ValueError if unsupported."""
    payload_format = _BY_NAME.get(name.lower())
    if payload_format is None:
        known = ", ".join(f.name for f in FORMATS)
        raise ValueError(f"unsupported codec {name!r}: expected one of {known}")
    return payload_format
