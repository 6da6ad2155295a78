"""Opus (RFC 6716) as RTP carries it (RFC 7587): ``opus/48000/2``, mono wideband speech.

The RTP clock is 48 kHz whatever the audio bandwidth and the rtpmap always says two
channels (RFC 7587 §4.1, §7); Sautikit sends mono at a 16 kHz audio rate, which is what
the rest of the media plane carries for wideband legs, and mixes a stereo stream down.
The encoder is libopus in its VoIP mode, 20 ms frames, variable bit rate around 32 kbit/s,
with in-band forward error correction (``useinbandfec=1``): each packet carries a coarse
copy of the one before, which a receiver that lost that one can decode. The decoder is
libopus too; FFmpeg gives 48 kHz, converted here to 16 kHz. A lost packet is concealed by
the jitter buffer's repetition, as for every codec.
"""

from __future__ import annotations

from typing import Final

from sautikit.media.codecs._pyav import PyAvDecoder, PyAvEncoder
from sautikit.media.codecs.format import WIDEBAND_RATE, Decoder, Encoder, PayloadFormat

__all__ = ["BIT_RATE", "OPUS", "new_decoder", "new_encoder"]

BIT_RATE: Final = 32_000
"""Target bits per second: wideband speech is clear well below it, with room for FEC."""
# The loss the encoder plans its FEC for, in percent: on a call that loses nothing it
# still costs a few kbit/s; without it libopus sends no redundancy at all.
_EXPECTED_LOSS_PERCENT: Final = "5"


def new_encoder() -> Encoder:
    return PyAvEncoder(
        "libopus",
        WIDEBAND_RATE,
        bit_rate=BIT_RATE,
        options={
            "application": "voip",
            "frame_duration": "20",
            "fec": "1",
            "packet_loss": _EXPECTED_LOSS_PERCENT,
        },
    )


def new_decoder() -> Decoder:
    return PyAvDecoder("libopus", WIDEBAND_RATE)


OPUS: Final = PayloadFormat(
    name="opus",
    clock_rate=48000,
    sample_rate=WIDEBAND_RATE,
    payload_type=111,
    new_encoder=new_encoder,
    new_decoder=new_decoder,
    channels=2,
)
