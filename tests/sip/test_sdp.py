"""SDP parsing, encoding and offer/answer against bodies real peers send."""

from __future__ import annotations

import re

import pytest

from sautikit.sip.sdp import (
    PCMA,
    PCMU,
    TELEPHONE_EVENT,
    Attribute,
    NoCommonCodec,
    SdpNegotiationError,
    SdpParseError,
    SdpSession,
    SessionDescription,
    build_offer,
    negotiate_answer,
    parse_answer,
    parse_sdp,
)


def crlf(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode()


# The SDP of SIPp 3.6.1's `-sn uac` INVITE, as captured on loopback: PCMU only.
SIPP_UAC = crlf(
    "v=0",
    "o=user1 53655765 2353687637 IN IP4 127.0.0.1",
    "s=-",
    "c=IN IP4 127.0.0.1",
    "t=0 0",
    "m=audio 6000 RTP/AVP 0",
    "a=rtpmap:0 PCMU/8000",
)

# SIPp 3.6.1 `-sn uac_pcap`, as captured: PCMA and telephone-event 101.
SIPP_UAC_PCAP = crlf(
    "v=0",
    "o=user1 53655765 2353687637 IN IP4 127.0.0.1",
    "s=-",
    "c=IN IP4 127.0.0.1",
    "t=0 0",
    "m=audio 6000 RTP/AVP 8 101",
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:101 telephone-event/8000",
    "a=fmtp:101 0-11,16",
)

# baresip 1.0.0 with g711, g722, opus, gsm and l16 loaded, as captured on loopback. Its
# telephone-event is 105, and 101 is L16: payload numbers, not habits, decide.
BARESIP_OFFER = crlf(
    "v=0",
    "o=- 1772696002 455023686 IN IP4 127.0.0.1",
    "s=-",
    "c=IN IP4 127.0.0.1",
    "t=0 0",
    "a=tool:baresip 1.0.0",
    "m=audio 14676 RTP/AVP 0 8 9 96 3 97 10 98 99 100 101 11 102 103 104 105",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:9 G722/8000",
    "a=rtpmap:96 opus/48000/2",
    "a=fmtp:96 stereo=1;sprop-stereo=1",
    "a=rtpmap:3 GSM/8000",
    "a=rtpmap:97 L16/48000/2",
    "a=rtpmap:10 L16/44100/2",
    "a=rtpmap:98 L16/32000/2",
    "a=rtpmap:99 L16/16000/2",
    "a=rtpmap:100 L16/8000/2",
    "a=rtpmap:101 L16/48000",
    "a=rtpmap:11 L16/44100",
    "a=rtpmap:102 L16/32000",
    "a=rtpmap:103 L16/16000",
    "a=rtpmap:104 L16/8000",
    "a=rtpmap:105 telephone-event/8000",
    "a=fmtp:105 0-15",
    "a=sendrecv",
    "a=label:1",
    "a=rtcp-rsize",
    "a=ssrc:2867393690 cname:sip:a@127.0.0.1:5191",
    "a=minptime:4",
    "a=ptime:20",
)

# baresip 1.0.0 with g722 and opus loaded before g711, as captured: wideband first.
BARESIP_WIDEBAND_FIRST = crlf(
    "v=0",
    "o=- 2099348606 1842408297 IN IP4 127.0.0.1",
    "s=-",
    "c=IN IP4 127.0.0.1",
    "t=0 0",
    "a=tool:baresip 1.0.0",
    "m=audio 16018 RTP/AVP 9 96 3 0 8 101",
    "a=rtpmap:9 G722/8000",
    "a=rtpmap:96 opus/48000/2",
    "a=fmtp:96 stereo=1;sprop-stereo=1",
    "a=rtpmap:3 GSM/8000",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:101 telephone-event/8000",
    "a=fmtp:101 0-15",
    "a=sendrecv",
    "a=label:1",
    "a=rtcp-rsize",
    "a=ssrc:1079631577 cname:sip:a@127.0.0.1:5191",
    "a=minptime:20",
    "a=ptime:20",
)

# Modern hold (RFC 3264 §8.4): the holder sends only.
HOLD_SENDONLY = crlf(
    "v=0",
    "o=user1 53655765 2353687638 IN IP4 198.51.100.7",
    "s=-",
    "c=IN IP4 198.51.100.7",
    "t=0 0",
    "m=audio 6000 RTP/AVP 0 101",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:101 telephone-event/8000",
    "a=fmtp:101 0-16",
    "a=sendonly",
)

# RFC 2543 hold: the connection address is zeroed, no direction attribute.
HOLD_ZERO_ADDRESS = crlf(
    "v=0",
    "o=user1 53655765 2353687639 IN IP4 198.51.100.7",
    "s=-",
    "c=IN IP4 0.0.0.0",
    "t=0 0",
    "m=audio 6000 RTP/AVP 0",
)

FIXTURES = [
    SIPP_UAC,
    SIPP_UAC_PCAP,
    BARESIP_OFFER,
    BARESIP_WIDEBAND_FIRST,
    HOLD_SENDONLY,
    HOLD_ZERO_ADDRESS,
]


def offer_with(*media_lines: str, connection: str = "c=IN IP4 203.0.113.5") -> bytes:
    return crlf("v=0", "o=peer 1 1 IN IP4 203.0.113.5", "s=-", connection, "t=0 0", *media_lines)


# --- parsing and encoding -------------------------------------------------------------


def test_parses_sipp_offer_field_by_field() -> None:
    offer = parse_sdp(SIPP_UAC)
    assert offer.origin.username == "user1"
    assert offer.origin.session_id == 53655765
    assert offer.origin.session_version == 2353687637
    assert offer.connection is not None and offer.connection.address == "127.0.0.1"
    [audio] = offer.media
    assert (audio.media, audio.port, audio.proto, audio.formats) == (
        "audio",
        6000,
        "RTP/AVP",
        ["0"],
    )
    assert audio.rtpmaps()[0].encoding == "PCMU"


@pytest.mark.parametrize("body", FIXTURES)
def test_encode_reproduces_the_body_byte_for_byte(body: bytes) -> None:
    assert parse_sdp(body).encode() == body


def test_accepts_text_and_bare_line_feeds() -> None:
    text = SIPP_UAC_PCAP.decode().replace("\r\n", "\n")
    assert parse_sdp(text) == parse_sdp(SIPP_UAC_PCAP)


def test_unknown_lines_and_attributes_survive_a_round_trip() -> None:
    body = crlf(
        "v=0",
        "o=- 7 7 IN IP6 2001:db8::1",
        "s=call",
        "i=an informative line",
        "e=ops@example.com",
        "c=IN IP6 2001:db8::1",
        "b=CT:128",
        "t=3034423619 3042462419",
        "r=7d 1h 0 25h",
        "y=a line type nobody defined",
        "a=group:BUNDLE 0",
        "m=audio 49170/2 RTP/AVP 0",
        "i=voice",
        "b=AS:64",
        "a=x-vendor:anything: with colons",
        "a=rtcp-mux",
        "a=extmap:",
    )
    description = parse_sdp(body)
    assert description.encode() == body
    assert description.media[0].port_count == 2
    assert description.media[0].attribute("x-vendor") == "anything: with colons"
    assert description.media[0].attribute("rtcp-mux") == ""
    assert description.media[0].attribute("missing") is None


def test_extra_spaces_and_fractional_ptime_from_sloppy_peers_are_accepted() -> None:
    offer = parse_sdp(
        crlf(
            "v=0",
            "o=-  1 1 IN IP4 192.0.2.1 ",
            "c=IN  IP4 192.0.2.1",
            "t=0 0",
            "m=audio 5004 RTP/AVP 8 0 ",
            "a=ptime:20.0",
        )
    )
    assert offer.media[0].formats == ["8", "0"]
    assert offer.origin.address == "192.0.2.1"
    assert offer.media[0].ptime == 20


def test_encode_puts_lines_in_rfc_order() -> None:
    body = crlf(
        "v=0", "o=- 1 1 IN IP4 192.0.2.1", "t=0 0", "c=IN IP4 192.0.2.1", "m=audio 5 RTP/AVP 0"
    )
    assert parse_sdp(body).encode() == crlf(
        "v=0",
        "o=- 1 1 IN IP4 192.0.2.1",
        "s=-",
        "c=IN IP4 192.0.2.1",
        "t=0 0",
        "m=audio 5 RTP/AVP 0",
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty SDP body"),
        (b"\r\n\r\n", "empty SDP body"),
        (b"o=- 1 1 IN IP4 192.0.2.1\r\n", "line 1: SDP must start with 'v=0'"),
        (b"v=1\r\n", "line 1: unsupported SDP version"),
        (b"v=0\r\ns=-\r\n", "missing o= line"),
        (b"v=0\r\no=- 1 IN IP4 192.0.2.1\r\n", "line 2: o= needs 6"),
        (b"v=0\r\no=- x 1 IN IP4 192.0.2.1\r\n", "line 2: o= session id must be a number"),
        (b"v=0\r\no=- 1 1 IN IP4 h\r\nc=IN IP4\r\n", "line 3: c= needs 3"),
        (b"v=0\r\no=- 1 1 IN IP4 h\r\nm=audio\r\n", "line 3: m= needs"),
        (
            b"v=0\r\no=- 1 1 IN IP4 h\r\nm=audio 70000 RTP/AVP 0\r\n",
            "line 3: m= port 70000 is above 65535",
        ),
        (b"v=0\r\no=- 1 1 IN IP4 h\r\nm=audio x RTP/AVP 0\r\n", "line 3: m= port must be a number"),
        (b"v=0\r\no=- 1 1 IN IP4 h\r\nhello\r\n", "line 3: expected '<type>=<value>'"),
        (b"v=0\r\no=- 1 1 IN IP4 h\r\nA=x\r\n", "line 3: expected '<type>=<value>'"),
        (b"v=0\r\no=- 1 1 IN IP4 h\r\na=:x\r\n", "line 3: a= line without an attribute name"),
        (b"v=0\r\no=- 1 1 IN IP4 h\r\na=rtpmap:0 PCMU\r\n", "line 3: rtpmap needs"),
        (
            b"v=0\r\no=- 1 1 IN IP4 h\r\na=rtpmap:200 x/8000\r\n",
            "line 3: rtpmap payload type 200 is above 127",
        ),
        (
            b"v=0\r\no=- 1 1 IN IP4 h\r\na=rtpmap\r\n",
            "line 3: rtpmap payload type must be a number",
        ),
        (b"v=0\r\no=- 1 1 IN IP4 h\r\na=ptime:twenty\r\n", "line 3: ptime must be a number"),
        (b"v=0\r\no=- 1 1 IN IP4 h\r\na=ptime:2.x\r\n", "line 3: ptime fraction must be"),
        (
            b"v=0\r\no=- 1 1 IN IP4 h\r\nm=audio 1 RTP/AVP 0\r\no=x\r\n",
            "line 4: 'o=' is not allowed inside a media description",
        ),
        (b"v=0\r\nv=0\r\n", "line 2: a second v= line"),
        (b"v=0\r\no=- 1 1 IN IP4 h\r\nr=1d\r\n", "line 3: r= line before any t= line"),
        (b"v=0\r\no=- 1 1 IN IP4 h\r\ns=\xff\r\n", "SDP is not UTF-8 text"),
        ("v=0\r\no=- 1 1 IN IP4 h\r\ns=\udcff\r\n", "SDP is not UTF-8 text (character 25)"),
    ],
)
def test_bad_bodies_raise_sdp_parse_error_naming_the_line(body: bytes | str, message: str) -> None:
    with pytest.raises(SdpParseError, match=re.escape(message)):
        parse_sdp(body)


# --- answering offers (UAS side) --------------------------------------------------------


def test_answers_sipp_pcmu_offer_field_by_field() -> None:
    answer, media = negotiate_answer(
        parse_sdp(SIPP_UAC), "192.0.2.50", 20000, session_id=42, version=43
    )
    assert media.codec == "PCMU"
    assert media.payload_type == 0
    assert (media.remote_address, media.remote_port) == ("127.0.0.1", 6000)
    assert media.telephone_event_payload_type is None
    assert media.ptime == 20
    assert media.direction == "sendrecv" and not media.on_hold
    assert answer.encode() == crlf(
        "v=0",
        "o=sautikit 42 43 IN IP4 192.0.2.50",
        "s=-",
        "c=IN IP4 192.0.2.50",
        "t=0 0",
        "m=audio 20000 RTP/AVP 0",
        "a=rtpmap:0 PCMU/8000",
        "a=ptime:20",
        "a=sendrecv",
    )


def test_answer_mirrors_the_offerers_telephone_event_type() -> None:
    answer, media = negotiate_answer(parse_sdp(SIPP_UAC_PCAP), "192.0.2.50", 20002)
    assert (media.codec, media.payload_type, media.telephone_event_payload_type) == (
        "PCMA",
        8,
        101,
    )
    [audio] = answer.media
    assert audio.formats == ["8", "101"]
    assert audio.attribute_values("rtpmap") == ["8 PCMA/8000", "101 telephone-event/8000"]
    assert audio.fmtp(101) == "0-16"
    assert answer.origin.session_id == answer.origin.session_version


def test_answer_keeps_an_unusual_dynamic_telephone_event_number() -> None:
    offer = offer_with(
        "m=audio 7000 RTP/AVP 0 96", "a=rtpmap:96 TELEPHONE-EVENT/8000", "a=fmtp:96 0-15"
    )
    answer, media = negotiate_answer(parse_sdp(offer), "192.0.2.50", 20000)
    assert media.telephone_event_payload_type == 96
    assert answer.media[0].formats == ["0", "96"]


def test_telephone_event_at_another_clock_rate_is_not_taken() -> None:
    offer = offer_with("m=audio 7000 RTP/AVP 0 110", "a=rtpmap:110 telephone-event/48000")
    answer, media = negotiate_answer(parse_sdp(offer), "192.0.2.50", 20000)
    assert media.telephone_event_payload_type is None
    assert answer.media[0].formats == ["0"]


def test_static_types_without_rtpmap_and_any_case_are_understood() -> None:
    bare, bare_media = negotiate_answer(
        parse_sdp(offer_with("m=audio 7000 RTP/AVP 8 0")), "192.0.2.50", 20000
    )
    assert bare_media.codec == "PCMA"
    assert bare.media[0].attribute("rtpmap") == "8 PCMA/8000"
    lower, lower_media = negotiate_answer(
        parse_sdp(offer_with("m=audio 7000 RTP/AVP 0", "a=rtpmap:0 pcmu/8000")),
        "192.0.2.50",
        20000,
    )
    assert lower_media.codec == "PCMU"
    assert lower.media[0].attribute("rtpmap") == "0 PCMU/8000"


def test_baresip_offer_with_many_codecs() -> None:
    answer, media = negotiate_answer(parse_sdp(BARESIP_OFFER), "192.0.2.50", 20000)
    assert (media.codec, media.payload_type, media.telephone_event_payload_type) == (
        "PCMU",
        0,
        105,
    )
    assert (media.remote_address, media.remote_port) == ("127.0.0.1", 14676)
    [audio] = answer.media
    assert audio.formats == ["0", "105"]
    assert audio.attribute_values("rtpmap") == ["0 PCMU/8000", "105 telephone-event/8000"]


def test_baresip_wideband_first_takes_the_first_codec_we_speak() -> None:
    answer, media = negotiate_answer(parse_sdp(BARESIP_WIDEBAND_FIRST), "192.0.2.50", 20000)
    assert (media.codec, media.payload_type, media.telephone_event_payload_type) == (
        "PCMU",
        0,
        101,
    )
    assert answer.media[0].formats == ["0", "101"]


def test_unsupported_streams_are_rejected_with_port_zero_keeping_the_count() -> None:
    offer = parse_sdp(
        BARESIP_WIDEBAND_FIRST
        + crlf("m=video 16020 RTP/AVP 100", "a=rtpmap:100 H264/90000", "a=sendrecv")
    )
    answer, media = negotiate_answer(offer, "192.0.2.50", 20000)
    assert media.remote_port == 16018
    assert len(answer.media) == 2
    audio, video = answer.media
    assert (audio.port, audio.formats) == (20000, ["0", "101"])
    assert (video.media, video.port, video.proto, video.formats) == (
        "video",
        0,
        "RTP/AVP",
        ["100"],
    )


def test_our_codec_preference_is_the_offer_order() -> None:
    offer = parse_sdp(offer_with("m=audio 7000 RTP/AVP 8 0"))
    _, media = negotiate_answer(offer, "192.0.2.50", 20000, supported=(PCMU, PCMA))
    assert media.codec == "PCMA"
    _, only_pcmu = negotiate_answer(offer, "192.0.2.50", 20000, supported=(PCMU,))
    assert only_pcmu.codec == "PCMU"


def test_sendonly_hold_is_answered_recvonly() -> None:
    answer, media = negotiate_answer(parse_sdp(HOLD_SENDONLY), "192.0.2.50", 20000)
    assert answer.media[0].direction == "recvonly"
    assert media.direction == "recvonly"
    assert media.on_hold
    assert not media.can_send and media.can_receive


def test_rfc2543_zero_address_hold_means_send_nothing() -> None:
    answer, media = negotiate_answer(parse_sdp(HOLD_ZERO_ADDRESS), "192.0.2.50", 20000)
    assert media.on_hold
    assert media.remote_address == "0.0.0.0"
    assert not media.can_send
    assert answer.media[0].direction == "recvonly"


@pytest.mark.parametrize(
    ("offered", "wanted", "answered"),
    [
        ("recvonly", "sendrecv", "sendonly"),
        ("inactive", "sendrecv", "inactive"),
        ("sendrecv", "sendonly", "sendonly"),
        ("sendrecv", "inactive", "inactive"),
        ("sendonly", "sendonly", "inactive"),
    ],
)
def test_answer_direction_narrows_offer_and_wish(offered: str, wanted: str, answered: str) -> None:
    offer = parse_sdp(offer_with("m=audio 7000 RTP/AVP 0", f"a={offered}"))
    answer, media = negotiate_answer(offer, "192.0.2.50", 20000, direction=wanted)
    assert answer.media[0].direction == answered
    assert media.direction == answered


def test_session_level_direction_applies_to_streams() -> None:
    offer = crlf(
        "v=0",
        "o=peer 1 1 IN IP4 203.0.113.5",
        "s=-",
        "c=IN IP4 203.0.113.5",
        "t=0 0",
        "a=sendonly",
        "m=audio 7000 RTP/AVP 0",
    )
    _, media = negotiate_answer(parse_sdp(offer), "192.0.2.50", 20000)
    assert media.direction == "recvonly" and media.on_hold


def test_media_level_connection_and_ptime_win() -> None:
    offer = offer_with("m=audio 7000 RTP/AVP 0", "c=IN IP4 198.51.100.9", "a=ptime:30")
    _, media = negotiate_answer(parse_sdp(offer), "192.0.2.50", 20000)
    assert media.remote_address == "198.51.100.9"
    assert media.ptime == 30


@pytest.mark.parametrize(
    "media_lines",
    [
        ("m=audio 7000 RTP/AVP 9 96", "a=rtpmap:96 opus/48000/2"),
        ("m=audio 7000 RTP/AVP 101", "a=rtpmap:101 telephone-event/8000"),
        ("m=audio 7000 RTP/SAVP 0",),
        ("m=audio 0 RTP/AVP 0",),
        ("m=video 7002 RTP/AVP 0",),
        ("m=audio 7000 RTP/AVP 0", "a=rtpmap:0 PCMU/8000/2"),
    ],
)
def test_no_common_codec_means_488(media_lines: tuple[str, ...]) -> None:
    with pytest.raises(NoCommonCodec):
        negotiate_answer(parse_sdp(offer_with(*media_lines)), "192.0.2.50", 20000)


def test_only_the_first_usable_audio_stream_is_taken() -> None:
    offer = offer_with("m=audio 7000 RTP/AVP 0", "m=audio 7002 RTP/AVP 8")
    answer, media = negotiate_answer(parse_sdp(offer), "192.0.2.50", 20000)
    assert media.remote_port == 7000
    assert [m.port for m in answer.media] == [20000, 0]


# --- offers and answers we receive (UAC side) -------------------------------------------


def test_offer_lists_codecs_in_order_with_telephone_event() -> None:
    offer = build_offer("192.0.2.50", 20000, session_id=9, version=9)
    assert offer.encode() == crlf(
        "v=0",
        "o=sautikit 9 9 IN IP4 192.0.2.50",
        "s=-",
        "c=IN IP4 192.0.2.50",
        "t=0 0",
        "m=audio 20000 RTP/AVP 0 8 101",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-16",
        "a=ptime:20",
        "a=sendrecv",
    )


def test_offer_on_ipv6_says_ip6() -> None:
    offer = build_offer("2001:db8::5", 20000, session_id=1, version=1)
    assert offer.connection is not None and offer.connection.addrtype == "IP6"
    assert offer.origin.addrtype == "IP6"


def test_offer_refuses_unknown_direction() -> None:
    with pytest.raises(ValueError, match="direction"):
        build_offer("192.0.2.50", 20000, session_id=1, version=1, direction="hold")


def test_uac_reads_a_sipp_style_answer() -> None:
    offer = build_offer("192.0.2.50", 20000, session_id=9, version=9)
    answer = parse_sdp(SIPP_UAC_PCAP)
    media = parse_answer(offer, answer)
    assert (media.codec, media.payload_type, media.telephone_event_payload_type) == (
        "PCMA",
        8,
        101,
    )
    assert (media.remote_address, media.remote_port) == ("127.0.0.1", 6000)
    assert media.direction == "sendrecv" and not media.on_hold


def test_uac_and_uas_agree() -> None:
    offer = build_offer(
        "192.0.2.50", 20000, codecs=(PCMA, PCMU, TELEPHONE_EVENT), session_id=1, version=1
    )
    answer, uas_media = negotiate_answer(parse_sdp(offer.encode()), "198.51.100.7", 30000)
    uac_media = parse_answer(offer, parse_sdp(answer.encode()))
    assert (uas_media.remote_address, uas_media.remote_port) == ("192.0.2.50", 20000)
    assert (uac_media.remote_address, uac_media.remote_port) == ("198.51.100.7", 30000)
    for media in (uas_media, uac_media):
        assert (media.codec, media.payload_type, media.telephone_event_payload_type) == (
            "PCMA",
            8,
            101,
        )


def test_uac_hold_round_trip() -> None:
    offer = build_offer("192.0.2.50", 20000, session_id=1, version=2, direction="sendonly")
    answer, uas_media = negotiate_answer(offer, "198.51.100.7", 30000)
    uac_media = parse_answer(offer, answer)
    assert uas_media.direction == "recvonly" and uas_media.on_hold
    assert uac_media.direction == "sendonly" and uac_media.on_hold


def test_uac_answer_recvonly_means_we_only_send() -> None:
    offer = build_offer("192.0.2.50", 20000, session_id=1, version=1)
    answer = parse_sdp(offer_with("m=audio 7000 RTP/AVP 0", "a=recvonly"))
    assert parse_answer(offer, answer).direction == "sendonly"


def test_uac_answer_rejecting_audio_or_changing_shape_is_an_error() -> None:
    offer = build_offer("192.0.2.50", 20000, session_id=1, version=1)
    with pytest.raises(NoCommonCodec):
        parse_answer(offer, parse_sdp(offer_with("m=audio 0 RTP/AVP 0")))
    with pytest.raises(SdpNegotiationError, match="media lines"):
        parse_answer(offer, parse_sdp(offer_with("m=audio 7000 RTP/AVP 0", "m=video 0 RTP/AVP 0")))
    with pytest.raises(SdpNegotiationError, match="no codec from the offer"):
        parse_answer(offer, parse_sdp(offer_with("m=audio 7000 RTP/AVP 9", "a=rtpmap:9 G722/8000")))


# --- one dialog across re-INVITEs ----------------------------------------------------------


def test_session_version_increments_only_when_the_body_changes() -> None:
    session = SdpSession("192.0.2.50", session_id=1000)
    first = session.offer(20000)
    again = session.offer(20000)
    held = session.offer(20000, direction="sendonly")
    resumed = session.offer(20000)
    switched = session.offer(20000, codecs=(PCMA, TELEPHONE_EVENT))
    versions = [d.origin.session_version for d in (first, again, held, resumed, switched)]
    assert versions == [1000, 1000, 1001, 1002, 1003]
    assert {d.origin.session_id for d in (first, held, switched)} == {1000}
    assert held.media[0].direction == "sendonly"
    assert switched.media[0].formats == ["8", "101"]


def test_session_answers_reinvites_with_the_same_origin() -> None:
    session = SdpSession("192.0.2.50", session_id=77)
    answer, media = session.answer(parse_sdp(SIPP_UAC), 20000)
    assert answer.origin.session_version == 77 and not media.on_hold
    hold_answer, hold_media = session.answer(parse_sdp(HOLD_SENDONLY), 20000)
    assert hold_answer.origin.session_id == 77
    assert hold_answer.origin.session_version == 78
    assert hold_media.on_hold
    resumed, resumed_media = session.answer(parse_sdp(SIPP_UAC), 20000)
    assert resumed.origin.session_version == 79
    assert resumed_media.direction == "sendrecv"


def test_answer_from_a_session_description_built_by_hand() -> None:
    offer = SessionDescription(origin=parse_sdp(SIPP_UAC).origin)
    offer.media = parse_sdp(SIPP_UAC).media
    offer.connection = parse_sdp(SIPP_UAC).connection
    offer.attributes.append(Attribute("recvonly"))
    _, media = negotiate_answer(offer, "192.0.2.50", 20000)
    assert media.direction == "sendonly"
