"""SDES in SDP (RFC 4568): a=crypto parse/format and SRTP offer/answer, on text fixtures."""

from __future__ import annotations

import base64

import pytest

from sautikit.sip.sdp import (
    CryptoAttribute,
    NoCommonCodec,
    SdpParseError,
    SdpSession,
    SrtpRequired,
    negotiate_answer,
    parse_answer,
    parse_sdp,
)

KEY = bytes(range(30))
KEY_TEXT = base64.b64encode(KEY).decode()  # AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd

# What linphone 5.1 offers with media_encryption=srtp (trimmed to the audio it matters for).
SAVP_OFFER = (
    "v=0\r\n"
    "o=front-desk 1 1 IN IP4 127.0.0.1\r\n"
    "s=Talk\r\n"
    "c=IN IP4 127.0.0.1\r\n"
    "t=0 0\r\n"
    "m=audio 7078 RTP/SAVP 96 0 8 101\r\n"
    "a=rtpmap:96 opus/48000/2\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + KEY_TEXT + "\r\n"
    "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:" + KEY_TEXT + "\r\n"
)


def test_a_crypto_line_parses_and_formats_back() -> None:
    line = CryptoAttribute.parse(f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_TEXT}|2^20|1:4")
    assert (line.tag, line.suite, line.key) == (1, "AES_CM_128_HMAC_SHA1_80", KEY)
    assert (line.lifetime, line.mki) == ("2^20", "1:4")
    assert line.encode() == f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_TEXT}|2^20|1:4"
    assert not line.usable  # an MKI: not a stream Sautikit keys
    plain = CryptoAttribute.parse(f"7 AES_CM_128_HMAC_SHA1_32 inline:{KEY_TEXT}")
    assert plain.usable and plain.encode() == f"7 AES_CM_128_HMAC_SHA1_32 inline:{KEY_TEXT}"


@pytest.mark.parametrize(
    "value",
    [
        "1 AES_CM_128_HMAC_SHA1_80",
        "x AES_CM_128_HMAC_SHA1_80 inline:" + KEY_TEXT,
        "1 AES_CM_128_HMAC_SHA1_80 uri:http://example.com/key",
        "1 AES_CM_128_HMAC_SHA1_80 inline:not*base64",
    ],
)
def test_malformed_crypto_lines_are_parse_errors(value: str) -> None:
    with pytest.raises(SdpParseError):
        CryptoAttribute.parse(value)


def test_an_savp_offer_gets_an_srtp_answer_with_its_first_suite_and_our_key() -> None:
    ours = bytes(reversed(range(30)))
    answer, media = negotiate_answer(parse_sdp(SAVP_OFFER), "127.0.0.1", 20000, srtp_key=ours)
    text = answer.encode().decode()
    assert "m=audio 20000 RTP/SAVP 0 101\r\n" in text
    our_text = base64.b64encode(ours).decode()
    assert f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{our_text}\r\n" in text
    assert text.count("a=crypto") == 1
    assert media.srtp is not None
    assert (media.srtp.suite, media.srtp.local_key, media.srtp.remote_key) == (
        "AES_CM_128_HMAC_SHA1_80",
        ours,
        KEY,
    )


def test_an_savp_offer_without_a_usable_key_is_refused() -> None:
    dtls_only = SAVP_OFFER.replace("AES_CM_128_HMAC_SHA1_80", "F8_128_HMAC_SHA1_80").replace(
        "AES_CM_128_HMAC_SHA1_32", "NULL_HMAC_SHA1_80"
    )
    with pytest.raises(SrtpRequired):
        negotiate_answer(parse_sdp(dtls_only), "127.0.0.1", 20000)


def test_plain_rtp_is_answered_plain_unless_srtp_is_required() -> None:
    plain = SAVP_OFFER.replace("RTP/SAVP", "RTP/AVP").split("a=crypto")[0]
    answer, media = negotiate_answer(parse_sdp(plain), "127.0.0.1", 20000)
    assert media.srtp is None and "RTP/AVP" in answer.encode().decode()
    with pytest.raises(SrtpRequired, match="SRTP"):
        negotiate_answer(parse_sdp(plain), "127.0.0.1", 20000, srtp="required")
    assert issubclass(SrtpRequired, NoCommonCodec)  # the user agent's 488


def test_our_srtp_offer_and_the_peers_answer_settle_both_keys() -> None:
    caller = SdpSession("127.0.0.1", srtp="required")
    offer = caller.offer(20000)
    text = offer.encode().decode()
    assert "m=audio 20000 RTP/SAVP 0 8 101\r\n" in text
    assert "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" in text
    assert "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:" in text
    callee = SdpSession("127.0.0.2")
    answer, theirs = callee.answer(parse_sdp(offer.encode()), 30000)
    ours = parse_answer(offer, parse_sdp(answer.encode()))
    assert ours.srtp is not None and theirs.srtp is not None
    assert ours.srtp.local_key == theirs.srtp.remote_key
    assert ours.srtp.remote_key == theirs.srtp.local_key
    # The re-offer (hold) keeps the dialog's keys.
    assert caller.offer(20000, direction="sendonly").media[0].crypto() == offer.media[0].crypto()


def test_an_answer_to_our_srtp_offer_without_a_key_fails() -> None:
    offer = SdpSession("127.0.0.1", srtp="required").offer(20000)
    plain_answer = parse_sdp(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\n"
        "m=audio 30000 RTP/SAVP 0\r\n"
    )
    with pytest.raises(SrtpRequired):
        parse_answer(offer, plain_answer)
