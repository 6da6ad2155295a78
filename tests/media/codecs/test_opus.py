"""Opus through libopus (PyAV): 20 ms wideband packets, round trips, and bad payloads."""

import struct
from pathlib import Path

import numpy as np
import pytest
from tests.media.codecs.signals import aligned_snr_db, dominant_hz, frames, rms, sine

from sautikit.media.codecs import OPUS

FIXTURES = Path(__file__).parent / "fixtures"


def fixture_packets() -> list[bytes]:
    """0.5 s of a 1 kHz tone at 16 kHz, as Sautikit's encoder packed it (length-prefixed)."""
    data = (FIXTURES / "tone-1khz-16k.opus-packets").read_bytes()
    packets, offset = [], 0
    while offset < len(data):
        (length,) = struct.unpack_from("!H", data, offset)
        packets.append(data[offset + 2 : offset + 2 + length])
        offset += 2 + length
    return packets


def test_the_format_is_rfc_7587s() -> None:
    assert (OPUS.name, OPUS.clock_rate, OPUS.channels) == ("opus", 48000, 2)
    assert (OPUS.sample_rate, OPUS.frame_samples) == (16000, 320)
    assert OPUS.rtp_duration(OPUS.frame_samples) == 960  # 20 ms on the 48 kHz clock
    assert OPUS.wideband


def test_each_frame_is_one_20_ms_wideband_packet() -> None:
    encoder = OPUS.new_encoder()
    for frame in frames(sine(1000, 0.2, 16000), 320):
        packet = encoder.encode(frame)
        config, one_frame = packet[0] >> 3, packet[0] & 0x3
        # RFC 6716 §3.1: TOC configs 8-11 are SILK wideband, 9 is its 20 ms frame.
        assert (config, one_frame) == (9, 0)
        assert 20 < len(packet) < 160  # ~32 kbit/s, far under G.711's 160 bytes


def test_round_trip_keeps_a_tone() -> None:
    sent = sine(1000, 1.0, 16000)
    encoder, decoder = OPUS.new_encoder(), OPUS.new_decoder()
    heard = np.concatenate([decoder.decode(encoder.encode(f)) for f in frames(sent, 320)])
    assert len(heard) == len(sent)
    assert dominant_hz(heard[1600:], 16000) == pytest.approx(1000, abs=5)
    assert rms(heard[1600:]) == pytest.approx(rms(sent), rel=0.2)
    assert aligned_snr_db(sent, heard) > 10  # a perceptual codec: close, not bit-true


def test_wideband_speech_band_survives() -> None:
    # 6 kHz is beyond any G.711 call; a wideband Opus leg carries it.
    sent = sine(6000, 0.6, 16000)
    encoder, decoder = OPUS.new_encoder(), OPUS.new_decoder()
    heard = np.concatenate([decoder.decode(encoder.encode(f)) for f in frames(sent, 320)])
    assert dominant_hz(heard[1600:], 16000) == pytest.approx(6000, abs=10)
    assert rms(heard[1600:]) > 0.5 * rms(sent)


def test_fixture_packets_decode_to_the_tone() -> None:
    decoder = OPUS.new_decoder()
    heard = np.concatenate([decoder.decode(p) for p in fixture_packets()])
    assert len(heard) == 25 * 320
    assert dominant_hz(heard[1600:], 16000) == pytest.approx(1000, abs=5)
    assert rms(heard[1600:]) == pytest.approx(8000 / np.sqrt(2), rel=0.2)


def test_a_lost_packet_leaves_the_decoder_working() -> None:
    decoder = OPUS.new_decoder()
    packets = fixture_packets()
    heard = [decoder.decode(p) for i, p in enumerate(packets) if i != 10]
    assert all(len(f) == 320 for f in heard)
    assert dominant_hz(np.concatenate(heard[12:]), 16000) == pytest.approx(1000, abs=10)


@pytest.mark.parametrize("payload", [b"", b"\xff", b"\x4b" + b"\xff" * 2000])
def test_bad_payloads_raise_value_error(payload: bytes) -> None:
    decoder = OPUS.new_decoder()
    with pytest.raises(ValueError, match="payload"):
        decoder.decode(payload)
    # ... and the stream goes on.
    assert len(decoder.decode(fixture_packets()[0])) == 320


def test_each_stream_has_its_own_state() -> None:
    assert OPUS.new_encoder() is not OPUS.new_encoder()
    assert OPUS.new_decoder() is not OPUS.new_decoder()
