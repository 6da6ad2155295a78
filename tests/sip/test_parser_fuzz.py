"""Fuzz the SIP parser: random bytes and mutated real messages raise SipParseError or parse.

Whatever arrives on a SIP port, the only exception the codec may raise is the documented
SipParseError; anything that parses must encode and parse again.
"""

from __future__ import annotations

import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.sip.test_message import FIXTURES

from sautikit.sip.message import (
    Request,
    Response,
    SipParseError,
    best_effort_bad_request_response,
    parse_message,
)

FUZZ_SETTINGS = settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

# Fragments that push parsers into their corner cases when spliced into a message.
INTERESTING = [
    b"\r\n",
    b"\n",
    b"\r\n ",
    b":",
    b";",
    b",",
    b'"',
    b"\\",
    b"<",
    b">",
    b"[",
    b"]",
    b"@",
    b"=",
    b"?",
    b"\x00",
    b"\xff",
    b"\xc3\xa9",
    "²".encode(),
    "١".encode(),
    b"z9hG4bK",
    b"SIP/2.0",
    b"Content-Length: 99999\r\n",
    b"l: 0\r\n",
    b"v: SIP/2.0/UDP [::1\r\n",
    b"CSeq: 4294967296 INVITE\r\n",
    b"Via: SIP/2.0/UDP h;rport=;branch\r\n",
    b"\r\n\r\n",
]


@st.composite
def mutated_messages(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(FIXTURES)))
    for _ in range(draw(st.integers(1, 6))):
        position = draw(st.integers(0, len(data)))
        operation = draw(st.sampled_from(["insert", "delete", "replace", "truncate", "repeat"]))
        if operation == "insert":
            fragment = draw(st.one_of(st.sampled_from(INTERESTING), st.binary(max_size=8)))
            data[position:position] = fragment
        elif operation == "delete":
            del data[position : position + draw(st.integers(1, 40))]
        elif operation == "replace" and position < len(data):
            data[position] = draw(st.integers(0, 255))
        elif operation == "truncate":
            del data[position:]
        else:
            data[position:position] = data[position : position + draw(st.integers(1, 60))]
    return bytes(data)


def check_only_parse_errors_escape(data: bytes) -> None:
    best_effort_bad_request_response(data)
    try:
        message = parse_message(data)
    except SipParseError as error:
        assert str(error)
        return
    assert isinstance(message, Request | Response)
    for accessor in ("contacts", "routes", "record_routes", "content_length", "vias"):
        with contextlib.suppress(SipParseError):
            getattr(message, accessor)
    again = parse_message(message.encode())
    assert again.encode() == message.encode()


@FUZZ_SETTINGS
@given(st.binary(max_size=1500))
def test_random_bytes(data: bytes) -> None:
    check_only_parse_errors_escape(data)


@FUZZ_SETTINGS
@given(mutated_messages())
def test_mutated_real_messages(data: bytes) -> None:
    check_only_parse_errors_escape(data)


@FUZZ_SETTINGS
@given(st.lists(st.sampled_from([*INTERESTING, b"a", b"1", b" "]), max_size=60))
def test_spliced_fragments_after_a_start_line(fragments: list[bytes]) -> None:
    check_only_parse_errors_escape(b"INVITE sip:a@b SIP/2.0\r\n" + b"".join(fragments))
