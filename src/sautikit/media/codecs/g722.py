"""G.722 (ITU-T G.722 SB-ADPCM, 64 kbit/s) as RTP carries it: static payload type 9.

16 kHz audio, but SDP says ``G722/8000`` and the RTP timestamp advances 8000 times a
second (RFC 3551 §4.5.2: the number was written wrong in RFC 1890 and kept for
compatibility), so a 20 ms packet is 320 samples of audio, 160 bytes, and 160 timestamp
units. Encoder and decoder are FFmpeg's (through PyAV), mode 1 (64 kbit/s).
"""

from __future__ import annotations

from typing import Final

from sautikit.media.codecs._pyav import PyAvDecoder, PyAvEncoder
from sautikit.media.codecs.format import WIDEBAND_RATE, Decoder, Encoder, PayloadFormat

__all__ = ["G722", "new_decoder", "new_encoder"]


def new_encoder() -> Encoder:
    return PyAvEncoder("g722", WIDEBAND_RATE)


def new_decoder() -> Decoder:
    return PyAvDecoder("g722", WIDEBAND_RATE)


G722: Final = PayloadFormat(
    name="G722",
    clock_rate=8000,
    sample_rate=WIDEBAND_RATE,
    payload_type=9,
    new_encoder=new_encoder,
    new_decoder=new_decoder,
)
