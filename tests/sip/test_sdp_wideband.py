"""Opus and G.722 in offer/answer: offered to devices, answered in the offerer's order,
G.711 kept for carriers, and the RFC 3551 G.722 clock quirk."""

from __future__ import annotations

from tests.sip.test_sdp import BARESIP_WIDEBAND_FIRST, crlf

from sautikit.sip.sdp import (
    DEFAULT_CODECS,
    G722,
    OPUS,
    WIDEBAND_CODECS,
    NegotiatedMedia,
    SdpSession,
    build_offer,
    parse_answer,
    parse_sdp,
)

# What linphone-cli 5.1 offers by default (trimmed of its video and ICE lines).
LINPHONE_OFFER = crlf(
    "v=0",
    "o=alice 3041 2846 IN IP4 127.0.0.1",
    "s=Talk",
    "c=IN IP4 127.0.0.1",
    "t=0 0",
    "m=audio 7078 RTP/AVP 96 97 98 0 8 18 101 99 100",
    "a=rtpmap:96 opus/48000/2",
    "a=fmtp:96 useinbandfec=1",
    "a=rtpmap:97 speex/16000",
    "a=fmtp:97 vbr=on",
    "a=rtpmap:98 speex/8000",
    "a=fmtp:98 vbr=on",
    "a=fmtp:18 annexb=yes",
    "a=rtpmap:101 telephone-event/48000",
    "a=rtpmap:99 telephone-event/16000",
    "a=rtpmap:100 telephone-event/8000",
    "a=rtcp-fb:* trr-int 1000",
)


def answer(offer: bytes) -> tuple[str, NegotiatedMedia]:
    session = SdpSession("192.0.2.50")
    description, media = session.answer(parse_sdp(offer), 20000)
    return str(description), media


def test_linphone_gets_opus_with_events_on_its_clock() -> None:
    text, media = answer(LINPHONE_OFFER)
    assert (media.codec, media.payload_type, media.clock_rate) == ("opus", 96, 48000)
    assert media.telephone_event_payload_type == 101
    assert "m=audio 20000 RTP/AVP 96 101\r\n" in text
    assert "a=rtpmap:96 opus/48000/2\r\n" in text
    assert "a=fmtp:96 minptime=10;useinbandfec=1\r\n" in text
    assert "a=rtpmap:101 telephone-event/48000\r\n" in text


def test_baresip_offering_g722_first_gets_g722() -> None:
    text, media = answer(BARESIP_WIDEBAND_FIRST)
    # The offerer's order decides: G.722 (static 9) before its Opus and G.711.
    assert (media.codec, media.payload_type, media.clock_rate) == ("G722", 9, 8000)
    assert media.telephone_event_payload_type == 101
    assert "a=rtpmap:9 G722/8000\r\n" in text


def test_a_static_9_without_rtpmap_is_g722() -> None:
    offer = crlf(
        "v=0",
        "o=- 1 1 IN IP4 127.0.0.1",
        "s=-",
        "c=IN IP4 127.0.0.1",
        "t=0 0",
        "m=audio 7000 RTP/AVP 9 0",
    )
    _, media = answer(offer)
    assert media.codec == "G722"


def test_a_carrier_offering_g711_only_gets_g711() -> None:
    offer = crlf(
        "v=0",
        "o=- 1 1 IN IP4 203.0.113.9",
        "s=-",
        "c=IN IP4 203.0.113.9",
        "t=0 0",
        "m=audio 7000 RTP/AVP 8 0 101",
        "a=rtpmap:101 telephone-event/8000",
    )
    _, media = answer(offer)
    assert (media.codec, media.telephone_event_payload_type) == ("PCMA", 101)


def test_opus_without_a_48_khz_event_type_answers_without_dtmf_events() -> None:
    offer = crlf(
        "v=0",
        "o=- 1 1 IN IP4 127.0.0.1",
        "s=-",
        "c=IN IP4 127.0.0.1",
        "t=0 0",
        "m=audio 7000 RTP/AVP 111 101",
        "a=rtpmap:111 opus/48000/2",
        "a=rtpmap:101 telephone-event/8000",
    )
    text, media = answer(offer)
    assert (media.codec, media.telephone_event_payload_type) == ("opus", None)
    assert "m=audio 20000 RTP/AVP 111\r\n" in text


def test_carriers_are_offered_g711_and_devices_wideband_first() -> None:
    trunk = str(SdpSession("192.0.2.50").offer(20000))
    assert "m=audio 20000 RTP/AVP 0 8 101\r\n" in trunk
    assert "opus" not in trunk and "G722" not in trunk
    assert DEFAULT_CODECS[0].name == "PCMU"
    device = str(SdpSession("192.0.2.50", codecs=WIDEBAND_CODECS).offer(20000))
    assert "m=audio 20000 RTP/AVP 111 9 0 8 110 101\r\n" in device
    for line in (
        "a=rtpmap:111 opus/48000/2",
        "a=fmtp:111 minptime=10;useinbandfec=1",
        "a=rtpmap:9 G722/8000",
        "a=rtpmap:110 telephone-event/48000",
        "a=rtpmap:101 telephone-event/8000",
    ):
        assert line + "\r\n" in device


def test_a_device_answering_opus_is_read_as_opus() -> None:
    offer = build_offer("192.0.2.50", 20000, codecs=WIDEBAND_CODECS, session_id=1, version=1)
    reply = crlf(
        "v=0",
        "o=bob 1 1 IN IP4 127.0.0.1",
        "s=-",
        "c=IN IP4 127.0.0.1",
        "t=0 0",
        "m=audio 7078 RTP/AVP 111 110",
        "a=rtpmap:111 OPUS/48000/2",
        "a=rtpmap:110 telephone-event/48000",
    )
    media = parse_answer(offer, parse_sdp(reply))
    assert (media.codec, media.clock_rate, media.payload_type) == ("opus", 48000, 111)
    assert media.telephone_event_payload_type == 110
    g722_reply = reply.replace(b"111 110", b"9 101").replace(
        b"a=rtpmap:111 OPUS/48000/2\r\na=rtpmap:110 telephone-event/48000",
        b"a=rtpmap:101 telephone-event/8000",
    )
    media = parse_answer(offer, parse_sdp(g722_reply))
    assert (media.codec, media.clock_rate, media.payload_type) == ("G722", 8000, 9)


def test_codec_constants() -> None:
    assert (OPUS.name, OPUS.clock_rate, OPUS.channels, OPUS.payload_type) == ("opus", 48000, 2, 111)
    assert (G722.name, G722.clock_rate, G722.payload_type) == ("G722", 8000, 9)
