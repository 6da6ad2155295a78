"""The registry of payload formats, and its agreement with what SDP offers."""

import pytest

from sautikit.media.codecs import FORMATS, G722, OPUS, PCMA, PCMU, format_by_name
from sautikit.sip import sdp


def test_names_are_looked_up_in_any_case() -> None:
    assert format_by_name("pcmu") is PCMU
    assert format_by_name("PCMA") is PCMA
    assert format_by_name("g722") is G722
    assert format_by_name("OPUS") is OPUS
    with pytest.raises(ValueError, match="G729"):
        format_by_name("G729")


def test_every_codec_sdp_offers_has_a_format_with_its_clock() -> None:
    voice = [c for c in sdp.WIDEBAND_CODECS if c.name != "telephone-event"]
    assert [c.name for c in voice] == ["opus", "G722", "PCMU", "PCMA"]
    for codec in voice:
        payload_format = format_by_name(codec.name)
        assert (payload_format.clock_rate, payload_format.channels) == (
            codec.clock_rate,
            codec.channels,
        )
        assert payload_format.payload_type == codec.payload_type
    assert len(FORMATS) == len(voice)


def test_g711_is_narrowband_and_stateless() -> None:
    assert not PCMU.wideband and PCMU.frame_samples == 160
    assert PCMU.rtp_duration(160) == 160
    assert PCMU.new_encoder() is PCMU.new_decoder()  # one shared table-lookup coder
