"""Fuzzing the SDP parser: bad input raises SdpParseError and nothing else.

Whatever parse_sdp accepts must also survive offer/answer (only the negotiation errors
may escape) and encode to a body that parses back to the same description.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sautikit.sip.sdp import (
    SdpNegotiationError,
    SdpParseError,
    SessionDescription,
    negotiate_answer,
    parse_answer,
    parse_sdp,
)

SEED_BODY = (
    "v=0\r\n"
    "o=user1 53655765 2353687637 IN IP4 127.0.0.1\r\n"
    "s=-\r\n"
    "c=IN IP4 127.0.0.1\r\n"
    "t=0 0\r\n"
    "m=audio 6002 RTP/AVP 8 0 101\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-11,16\r\n"
    "a=ptime:20\r\n"
    "a=sendonly\r\n"
    "m=video 6004 RTP/AVP 100\r\n"
    "c=IN IP4 0.0.0.0\r\n"
    "a=rtpmap:100 H264/90000\r\n"
)

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check_accepted(description: SessionDescription) -> None:
    """What a caller does with a parsed offer must not raise anything undocumented."""
    again = parse_sdp(description.encode())
    assert again.encode() == description.encode()
    try:
        answer, _ = negotiate_answer(description, "192.0.2.1", 20000)
    except SdpNegotiationError:
        return
    assert len(answer.media) == len(description.media)
    parse_answer(description, answer)


def parse_or_reject(body: str | bytes) -> None:
    try:
        description = parse_sdp(body)
    except SdpParseError as error:
        assert str(error)
        return
    check_accepted(description)


@FUZZ
@given(st.binary(max_size=400))
def test_random_bytes(body: bytes) -> None:
    parse_or_reject(body)


@FUZZ
@given(st.text(st.characters(codec=None, categories=None), max_size=400))
def test_random_text(body: str) -> None:
    parse_or_reject(body)


SDP_ALPHABET = st.sampled_from(list("vosctmar= \r\n0123456789/:.-,PCMUAtelephone-event"))


@FUZZ
@given(st.lists(st.text(SDP_ALPHABET, max_size=30), max_size=20))
def test_random_lines_from_sdp_vocabulary(lines: list[str]) -> None:
    parse_or_reject("v=0\r\no=- 1 1 IN IP4 h\r\n" + "\r\n".join(lines))


@st.composite
def mutated_seed(draw: st.DrawFn) -> str:
    body = SEED_BODY
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(body)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        text = draw(st.text(SDP_ALPHABET | st.characters(), min_size=1, max_size=5))
        if action == "insert":
            body = body[:position] + text + body[position:]
        elif action == "delete":
            body = body[:position] + body[position + len(text) :]
        else:
            body = body[:position] + text + body[position + len(text) :]
    return body


@FUZZ
@given(mutated_seed())
def test_mutated_real_offer(body: str) -> None:
    parse_or_reject(body)


@FUZZ
@given(
    st.lists(
        st.sampled_from(SEED_BODY.split("\r\n")[1:-1]),
        max_size=25,
    )
)
def test_shuffled_lines_of_a_real_offer(lines: list[str]) -> None:
    parse_or_reject("v=0\r\n" + "\r\n".join(lines))
