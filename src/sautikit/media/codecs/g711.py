"""G.711 µ-law (PCMU, static 0) and A-law (PCMA, static 8) as payload formats.

The laws themselves are :mod:`sautikit.media.g711` (lookup tables); they keep no state, so
one coder object serves every stream.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from sautikit.media.codecs.format import NARROWBAND_RATE, PayloadFormat, Samples
from sautikit.media.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode

__all__ = ["PCMA", "PCMU"]


@dataclass(frozen=True, slots=True)
class _Law:
    """Encoder and decoder at once, shared: G.711 has no state between frames."""

    encode: Callable[[Samples], bytes]
    decode: Callable[[bytes], Samples]


_ULAW: Final = _Law(ulaw_encode, ulaw_decode)
_ALAW: Final = _Law(alaw_encode, alaw_decode)

PCMU: Final = PayloadFormat(
    "PCMU", NARROWBAND_RATE, NARROWBAND_RATE, 0, lambda: _ULAW, lambda: _ULAW
)
PCMA: Final = PayloadFormat(
    "PCMA", NARROWBAND_RATE, NARROWBAND_RATE, 8, lambda: _ALAW, lambda: _ALAW
)
