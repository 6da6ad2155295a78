"""G.711 µ-law (PCMU) and A-law (PCMA), vectorised with numpy lookup tables (ITU-T G.711).

Both laws are computed once at import from the segment/quantisation rules of G.711 (the same
arithmetic as the classic Sun reference ``g711.c``) into tables:

* decode: 256 entries, one int16 per code octet;
* encode: 65536 entries indexed by the uint16 view of an int16 sample, so encoding a frame is
  a single ``take``.

RTP carries them as static payload types 0 (PCMU) and 8 (PCMA) at 8000 Hz (RFC 3551 §4.5.14,
§6); their payload formats are :data:`sautikit.media.codecs.PCMU` and ``PCMA``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = [
    "Samples",
    "alaw_decode",
    "alaw_encode",
    "ulaw_decode",
    "ulaw_encode",
]

#: 8 kHz mono audio as Sautikit passes it around.
Samples = npt.NDArray[np.int16]

_ULAW_BIAS = 0x84
_ULAW_CLIP = 8159
_ULAW_SEGMENT_ENDS = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])
_ALAW_SEGMENT_ENDS = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF])


def _every_sample() -> npt.NDArray[np.int32]:
    """All int16 values, ordered so that position i holds the sample whose uint16 view is i."""
    return np.arange(1 << 16, dtype=np.uint16).view(np.int16).astype(np.int32)


def _build_ulaw_decode() -> Samples:
    code = ~np.arange(256, dtype=np.int32) & 0xFF
    magnitude = (((code & 0x0F) << 3) + _ULAW_BIAS) << ((code & 0x70) >> 4)
    return np.where(code & 0x80, _ULAW_BIAS - magnitude, magnitude - _ULAW_BIAS).astype(np.int16)


def _build_ulaw_encode() -> npt.NDArray[np.uint8]:
    pcm = _every_sample() >> 2
    mask = np.where(pcm < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(pcm), _ULAW_CLIP) + (_ULAW_BIAS >> 2)
    segment = np.searchsorted(_ULAW_SEGMENT_ENDS, magnitude)
    code = (segment << 4) | ((magnitude >> (segment + 1)) & 0x0F)
    # The clip plus bias lands the loudest samples one past the last segment: full scale.
    code = np.where(segment >= 8, 0x7F, code)
    return (code ^ mask).astype(np.uint8)


def _build_alaw_decode() -> Samples:
    code = np.arange(256, dtype=np.int32) ^ 0x55
    mantissa = (code & 0x0F) << 4
    segment = (code & 0x70) >> 4
    magnitude = np.where(
        segment == 0, mantissa + 8, (mantissa + 0x108) << np.maximum(segment - 1, 0)
    )
    return np.where(code & 0x80, magnitude, -magnitude).astype(np.int16)


def _build_alaw_encode() -> npt.NDArray[np.uint8]:
    pcm = _every_sample() >> 3
    mask = np.where(pcm >= 0, 0xD5, 0x55)
    magnitude = np.where(pcm >= 0, pcm, -pcm - 1)
    segment = np.searchsorted(_ALAW_SEGMENT_ENDS, magnitude)
    shift = np.where(segment < 2, 1, segment)
    code = (segment << 4) | ((magnitude >> shift) & 0x0F)
    return (code ^ mask).astype(np.uint8)


_ULAW_DECODE = _build_ulaw_decode()
_ULAW_ENCODE = _build_ulaw_encode()
_ALAW_DECODE = _build_alaw_decode()
_ALAW_ENCODE = _build_alaw_encode()


# ``take`` rather than fancy indexing: the same gather, with a quarter less overhead on the
# 160-sample frames sent and received 50 times a second per leg.


def ulaw_encode(samples: Samples) -> bytes:
    """int16 samples to µ-law octets, one per sample."""
    return _ULAW_ENCODE.take(np.asarray(samples, dtype=np.int16).view(np.uint16)).tobytes()


def ulaw_decode(payload: bytes) -> Samples:
    """µ-law octets to int16 samples."""
    return _ULAW_DECODE.take(np.frombuffer(payload, dtype=np.uint8))


def alaw_encode(samples: Samples) -> bytes:
    """int16 samples to A-law octets, one per sample."""
    return _ALAW_ENCODE.take(np.asarray(samples, dtype=np.int16).view(np.uint16)).tobytes()


def alaw_decode(payload: bytes) -> Samples:
    """A-law octets to int16 samples."""
    return _ALAW_DECODE.take(np.frombuffer(payload, dtype=np.uint8))
