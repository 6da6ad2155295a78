"""G.722 through FFmpeg (PyAV): 16 kHz audio, 160-byte packets, on an 8 kHz RTP clock."""

from pathlib import Path

import numpy as np
import pytest
from tests.media.codecs.signals import aligned_snr_db, dominant_hz, frames, rms, sine

from sautikit.media.codecs import G722

FIXTURES = Path(__file__).parent / "fixtures"


def test_the_rtp_clock_is_8_khz_for_16_khz_audio() -> None:
    # RFC 3551 §4.5.2: the quirk every G.722 implementation must get right.
    assert (G722.name, G722.clock_rate, G722.payload_type) == ("G722", 8000, 9)
    assert (G722.sample_rate, G722.frame_samples) == (16000, 320)
    assert G722.rtp_duration(G722.frame_samples) == 160


def test_encoding_is_bit_exact_with_the_fixture() -> None:
    # SB-ADPCM is fully specified: the same samples give the same bytes everywhere.
    encoder = G722.new_encoder()
    packets = [encoder.encode(f) for f in frames(sine(1000, 0.5, 16000), 320)]
    assert {len(p) for p in packets} == {160}  # 64 kbit/s: 4 bits per 16 kHz sample
    assert b"".join(packets) == (FIXTURES / "tone-1khz-16k.g722").read_bytes()


def test_fixture_decodes_to_the_tone() -> None:
    decoder = G722.new_decoder()
    data = (FIXTURES / "tone-1khz-16k.g722").read_bytes()
    heard = np.concatenate([decoder.decode(data[i : i + 160]) for i in range(0, len(data), 160)])
    assert len(heard) == 8000
    assert dominant_hz(heard[800:], 16000) == pytest.approx(1000, abs=5)
    assert rms(heard[800:]) == pytest.approx(8000 / np.sqrt(2), rel=0.05)


@pytest.mark.parametrize("hz", [1000, 6000])
def test_round_trip_snr(hz: int) -> None:
    sent = sine(hz, 1.0, 16000)
    encoder, decoder = G722.new_encoder(), G722.new_decoder()
    heard = np.concatenate([decoder.decode(encoder.encode(f)) for f in frames(sent, 320)])
    assert len(heard) == len(sent)
    assert dominant_hz(heard[1600:], 16000) == pytest.approx(hz, abs=5)
    assert aligned_snr_db(sent, heard) > 20


def test_an_empty_payload_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        G722.new_decoder().decode(b"")
