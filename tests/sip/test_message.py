"""SIP messages parse from real wire bytes, encode back, and reject bad input readably."""

from __future__ import annotations

import pytest

from sautikit.sip.message import (
    MAX_HEADER_LINE_LENGTH,
    MAX_HEADER_LINES,
    MAX_MESSAGE_SIZE,
    CSeq,
    Headers,
    Request,
    Response,
    SipParseError,
    best_effort_bad_request_response,
    parse_message,
)
from sautikit.sip.uri import SipUri

SDP = (
    b"v=0\r\n"
    b"o=user1 53655765 2353687637 IN IP4 127.0.0.1\r\n"
    b"s=-\r\n"
    b"c=IN IP4 127.0.0.1\r\n"
    b"t=0 0\r\n"
    b"m=audio 6000 RTP/AVP 0\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
)


def wire(head: str, body: bytes = b"") -> bytes:
    """Join header lines with CRLF, fill in the body length where the fixture says LEN."""
    text = head.strip("\n").replace("LEN", str(len(body))).replace("\n", "\r\n")
    return text.encode() + b"\r\n\r\n" + body


# As SIPp 3.6's built-in `uac` scenario sends it (note the padded Content-Length).
SIPP_INVITE = wire(
    """
INVITE sip:service@127.0.0.1:5060 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-2734-1-0
From: sipp <sip:sipp@127.0.0.1:5061>;tag=2734SIPpTag001
To: service <sip:service@127.0.0.1:5060>
Call-ID: 1-2734@127.0.0.1
CSeq: 1 INVITE
Contact: sip:sipp@127.0.0.1:5061
Max-Forwards: 70
Subject: Performance Test
Content-Type: application/sdp
Content-Length:   LEN
""",
    SDP,
)

# RFC 3665 §3.2 style: a 200 OK relayed through a record-routing proxy.
OK_WITH_RECORD_ROUTE = wire(
    """
SIP/2.0 200 OK
Via: SIP/2.0/UDP ss1.example.com:5060;branch=z9hG4bK2d4790.1;received=192.0.2.111, SIP/2.0/UDP client.atlanta.example.com:5060;branch=z9hG4bK74bf9;received=192.0.2.101
Record-Route: <sip:ss2.example.com;lr>, <sip:ss1.example.com;lr>
From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl
To: Bob <sip:bob@biloxi.example.com>;tag=8321234356
Call-ID: 3848276298220188511@atlanta.example.com
CSeq: 1 INVITE
Contact: <sip:bob@client.biloxi.example.com>
Content-Type: application/sdp
Content-Length: LEN
""",  # noqa: E501 - a real Via list is this long
    SDP,
)

REGISTER_WITH_AUTHORIZATION = wire(
    """
REGISTER sip:ss2.biloxi.example.com SIP/2.0
Via: SIP/2.0/TCP client.biloxi.example.com:5061;branch=z9hG4bKnashd92
Max-Forwards: 70
From: Bob <sip:bob@biloxi.example.com>;tag=ja743ks76zlflH
To: Bob <sip:bob@biloxi.example.com>
Call-ID: 1j9FpLxk3uxtm8tn@biloxi.example.com
CSeq: 2 REGISTER
Contact: <sip:bob@client.biloxi.example.com>;expires=3600
Authorization: Digest username="bob", realm="atlanta.example.com", nonce="ea9c8e88df84f1cec4341ae6cbe5a359", opaque="", uri="sip:ss2.biloxi.example.com", response="dfe56131d1958046689d83306477ecc"
Content-Length: 0
"""  # noqa: E501 - a real Authorization line is this long
)

# RFC 4475 §3.1.1.1 flavour: compact forms, odd case, folding and a quoted display name.
COMPACT_AND_FOLDED = wire(
    """
INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0
v: SIP/2.0/UDP 192.0.2.2:5060;branch=z9hG4bKkdjuw
TO :
 sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n
f   : "J Rosenberg \\\\\\"" <sip:jdrosen@example.com>
  ;
  tag = 98asjd8
i: 0ha0isndaksdj@192.0.2.1
cseq: 8
  INVITE
m: "Quoted, with comma" <sip:1.2.3.4>, <sip:5.6.7.8;transport=tcp>
Subject: I know you're there,
   pick up the phone
   and talk to me!
l: 0
"""
)

IPV6_REGISTER = wire(
    """
REGISTER sip:[2001:db8::10] SIP/2.0
To: sip:user@example.com
From: sip:user@example.com;tag=81x2
Via: SIP/2.0/UDP [2001:db8::9:1];branch=z9hG4bKas3-111
Call-ID: SSG9559905523997077@hlecp0x
Max-Forwards: 70
Contact: "Caller" <sip:caller@[2001:db8::1]>
CSeq: 98176 REGISTER
Content-Length: 0
"""
)

FIXTURES = [
    SIPP_INVITE,
    OK_WITH_RECORD_ROUTE,
    REGISTER_WITH_AUTHORIZATION,
    COMPACT_AND_FOLDED,
    IPV6_REGISTER,
]


def test_sipp_invite_fields() -> None:
    message = parse_message(SIPP_INVITE)
    assert isinstance(message, Request)
    assert message.method == "INVITE"
    assert str(message.uri) == "sip:service@127.0.0.1:5060"
    assert message.call_id == "1-2734@127.0.0.1"
    assert message.cseq == CSeq(1, "INVITE")
    assert message.from_.tag == "2734SIPpTag001"
    assert message.to.tag is None
    assert message.vias[0].branch == "z9hG4bK-2734-1-0"
    assert message.contacts[0].uri.user == "sipp"
    assert message.content_type == "application/sdp"
    assert message.content_length == len(SDP)
    assert message.body == SDP


def test_ok_with_record_route_splits_comma_lists_in_order() -> None:
    message = parse_message(OK_WITH_RECORD_ROUTE)
    assert isinstance(message, Response)
    assert (message.status, message.reason) == (200, "OK")
    assert [via.host for via in message.vias] == ["ss1.example.com", "client.atlanta.example.com"]
    assert message.vias[1].received == "192.0.2.101"
    assert [str(rr.uri) for rr in message.record_routes] == [
        "sip:ss2.example.com;lr",
        "sip:ss1.example.com;lr",
    ]
    assert message.to.tag == "8321234356"


def test_register_keeps_authorization_commas_in_one_value() -> None:
    message = parse_message(REGISTER_WITH_AUTHORIZATION)
    authorization = message.headers.get("authorization")
    assert authorization is not None
    assert authorization.startswith('Digest username="bob", realm="atlanta.example.com"')
    assert authorization.endswith('response="dfe56131d1958046689d83306477ecc"')
    assert message.contacts[0].params == {"expires": "3600"}
    assert message.vias[0].transport == "TCP"


def test_compact_forms_folding_and_quoted_commas() -> None:
    message = parse_message(COMPACT_AND_FOLDED)
    assert message.call_id == "0ha0isndaksdj@192.0.2.1"
    assert message.cseq == CSeq(8, "INVITE")
    assert message.to.tag == "1918181833n"
    assert message.from_.display_name == 'J Rosenberg \\"'
    assert message.from_.tag == "98asjd8"
    contacts = message.contacts
    assert [c.display_name for c in contacts] == ["Quoted, with comma", None]
    assert (
        message.headers.get("Subject") == "I know you're there, pick up the phone and talk to me!"
    )
    assert message.content_length == 0


def test_ipv6_addresses() -> None:
    message = parse_message(IPV6_REGISTER)
    assert message.vias[0].host == "2001:db8::9:1"
    assert isinstance(message, Request) and message.uri.host == "2001:db8::10"
    assert message.contacts[0].uri.host == "2001:db8::1"
    assert b"[2001:db8::9:1]" in message.encode()


@pytest.mark.parametrize("data", FIXTURES)
def test_round_trip_is_stable(data: bytes) -> None:
    once = parse_message(data).encode()
    twice = parse_message(once).encode()
    assert once == twice
    again = parse_message(once)
    original = parse_message(data)
    assert again.call_id == original.call_id
    assert again.body == original.body
    assert [str(v) for v in again.vias] == [str(v) for v in original.vias]


def test_bare_lf_line_ends_and_leading_crlf_are_accepted() -> None:
    head, _, body = SIPP_INVITE.partition(b"\r\n\r\n")
    message = parse_message(b"\r\n\r\n" + head.replace(b"\r\n", b"\n") + b"\n\n" + body)
    assert message.call_id == "1-2734@127.0.0.1"
    assert message.body == SDP


def test_body_is_cut_to_content_length_and_defaults_to_the_rest() -> None:
    message = parse_message(SIPP_INVITE + b"trailing junk")
    assert message.body == SDP
    without_length = SIPP_INVITE.replace(f"Content-Length:   {len(SDP)}\r\n".encode(), b"")
    assert parse_message(without_length).body == SDP


def test_encode_writes_the_real_content_length() -> None:
    message = parse_message(SIPP_INVITE)
    message.body = b"v=0\r\n"
    assert b"\r\nContent-Length: 5\r\n\r\nv=0\r\n" in message.encode()


def test_headers_are_case_insensitive_ordered_and_multi_valued() -> None:
    headers = Headers([("v", "SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2")])
    headers.add("call-id", "abc")
    headers.add("X-Custom", "1")
    headers.add("x-custom", "2")
    assert headers.get("CALL-ID") == "abc"
    assert headers.get_all("X-CUSTOM") == ["1", "2"]
    assert len(headers.get_all("Via")) == 2
    headers.prepend("Via", "SIP/2.0/UDP c;branch=z9hG4bK3")
    assert headers.get("via") == "SIP/2.0/UDP c;branch=z9hG4bK3"
    headers.set("x-custom", "3")
    assert headers.get_all("X-Custom") == ["3"]
    headers.remove_first("Via")
    headers.remove("Call-ID")
    assert "Call-ID" not in headers
    assert [name for name, _ in headers] == ["Via", "Via", "X-Custom"]


def test_headers_refuse_values_that_would_inject_lines() -> None:
    headers = Headers()
    with pytest.raises(SipParseError, match="line break"):
        headers.add("From", '"Eve\r\nVia: SIP/2.0/UDP evil" <sip:eve@x>')
    with pytest.raises(SipParseError, match="header name"):
        headers.set("Bad Name", "1")
    assert len(headers) == 0
    response = Response(status=200, reason="OK\r\nX-Evil: 1")
    with pytest.raises(SipParseError, match="start line"):
        response.encode()


def test_create_response_follows_8_2_6() -> None:
    data = OK_WITH_RECORD_ROUTE.replace(b"SIP/2.0 200 OK", b"BYE sip:b@c SIP/2.0")
    data = data.replace(b"1 INVITE", b"2 BYE").replace(b";tag=8321234356", b"")
    request = parse_message(data)
    assert isinstance(request, Request)
    response = request.create_response(486, to_tag="xyz")
    assert (response.status, response.reason) == (486, "Busy Here")
    assert [str(v) for v in response.vias] == [str(v) for v in request.vias]
    assert response.to.tag == "xyz"
    assert response.from_.tag == request.from_.tag
    assert (response.call_id, response.cseq) == (request.call_id, request.cseq)
    assert response.headers.get("Record-Route") is None
    assert request.create_response(100, to_tag="xyz").to.tag is None
    assert request.create_response(600).reason == "Busy Everywhere"


def test_create_response_keeps_an_existing_to_tag() -> None:
    request = parse_message(COMPACT_AND_FOLDED)
    assert isinstance(request, Request)
    response = request.create_response(200, "Fine", to_tag="other")
    assert response.to.tag == "1918181833n"
    assert response.reason == "Fine"


def test_unknown_status_gets_its_class_reason() -> None:
    request = parse_message(SIPP_INVITE)
    assert isinstance(request, Request)
    assert request.create_response(499).reason == "Bad Request"
    assert request.create_response(199).reason == "Trying"


def test_create_cancel_follows_9_1() -> None:
    invite = parse_message(SIPP_INVITE)
    assert isinstance(invite, Request)
    cancel = invite.create_cancel()
    assert cancel.method == "CANCEL"
    assert cancel.uri == invite.uri
    assert cancel.cseq == CSeq(1, "CANCEL")
    assert cancel.top_via.branch == invite.top_via.branch
    assert (cancel.call_id, str(cancel.from_), str(cancel.to)) == (
        invite.call_id,
        str(invite.from_),
        str(invite.to),
    )
    assert parse_message(cancel.encode()).cseq.method == "CANCEL"


def test_request_built_in_code_encodes_and_parses() -> None:
    request = Request(method="OPTIONS", uri=SipUri.parse("sip:127.0.0.1:5080"))
    for name, value in [
        ("Via", "SIP/2.0/UDP 127.0.0.1:5081;branch=z9hG4bKabc;rport"),
        ("From", "<sip:probe@127.0.0.1>;tag=1"),
        ("To", "<sip:127.0.0.1:5080>"),
        ("Call-ID", "probe-1"),
        ("CSeq", "1 OPTIONS"),
    ]:
        request.headers.add(name, value)
    parsed = parse_message(request.encode())
    assert isinstance(parsed, Request)
    assert parsed.vias[0].rport_requested
    assert parsed.content_length == 0


@pytest.mark.parametrize(
    ("data", "message_part"),
    [
        (b"", "blank line"),
        (b"\r\n\r\n", "blank line"),
        (b"hello world\r\n\r\n", "request line"),
        (SIPP_INVITE.replace(b"SIP/2.0\r\n", b"SIP/3.0\r\n", 1), "version"),
        (SIPP_INVITE.replace(b"Call-ID", b"X-Call-ID"), "Call-ID"),
        (SIPP_INVITE.replace(b"CSeq: 1 INVITE", b"CSeq: 1 BYE"), "does not match"),
        (SIPP_INVITE.replace(b"CSeq: 1 INVITE", b"CSeq: one INVITE"), "CSeq"),
        (SIPP_INVITE.replace(b"Via: SIP/2.0/UDP", b"Via: SIP/2.0/"), "Via"),
        (SIPP_INVITE.replace(b"<sip:sipp@", b"<sip:sipp@@"), "host"),
        (SIPP_INVITE[: -len(SDP) + 10], "exceeds"),
        (SIPP_INVITE.replace(b"Max-Forwards: 70", b"Max-Forwards 70"), "header line"),
        (SIPP_INVITE.replace(b"Subject", b"Sub\xffject"), "UTF-8"),
        (SIPP_INVITE.replace(b"Subject:", b"Subject:\x00"), "control"),
        (OK_WITH_RECORD_ROUTE.replace(b"200 OK", b"2000 OK"), "status"),
        (OK_WITH_RECORD_ROUTE.replace(b"200 OK", b"700 OK"), "status"),
        (b"X" * (MAX_MESSAGE_SIZE + 1), "exceeds"),
    ],
)
def test_bad_messages_raise_readable_parse_errors(data: bytes, message_part: str) -> None:
    with pytest.raises(SipParseError, match=message_part):
        parse_message(data)


def test_header_flood_and_huge_lines_are_refused() -> None:
    head, _, body = SIPP_INVITE.partition(b"\r\n\r\n")
    flood = head + b"\r\nX-Pad: 1" * MAX_HEADER_LINES + b"\r\n\r\n" + body
    with pytest.raises(SipParseError, match="header lines"):
        parse_message(flood)
    long_line = head + b"\r\nX-Pad: " + b"a" * MAX_HEADER_LINE_LENGTH + b"\r\n\r\n" + body
    with pytest.raises(SipParseError, match="longer than"):
        parse_message(long_line)
    folded = head + b"\r\nX-Pad: a" + b"\r\n " + b"b" * 4000 + b"\r\n " + b"c" * 4200
    with pytest.raises(SipParseError, match="longer than"):
        parse_message(folded + b"\r\n\r\n" + body)


def test_bad_request_gets_a_400_copying_its_transaction_headers() -> None:
    broken = SIPP_INVITE.replace(b"INVITE sip:service@", b"INVITE http://service@")
    with pytest.raises(SipParseError) as error:
        parse_message(broken)
    response = best_effort_bad_request_response(broken, str(error.value))
    assert response is not None
    assert response.status == 400
    assert "URI" in response.reason
    assert response.call_id == "1-2734@127.0.0.1"
    assert response.vias[0].branch == "z9hG4bK-2734-1-0"
    assert parse_message(response.encode()).cseq == CSeq(1, "INVITE")


@pytest.mark.parametrize(
    "data",
    [
        b"\x00\x01garbage",
        OK_WITH_RECORD_ROUTE.replace(b"200 OK", b"20x OK"),
        SIPP_INVITE.replace(b"INVITE sip:service@", b"ACK sip:service@"),
        SIPP_INVITE.replace(b"Call-ID", b"X-Nothing"),
        SIPP_INVITE.replace(b"Via: SIP/2.0/UDP", b"Via: nonsense"),
    ],
)
def test_no_400_when_nothing_can_be_answered(data: bytes) -> None:
    assert best_effort_bad_request_response(data) is None
