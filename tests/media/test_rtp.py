"""RTP packets against byte fixtures written from RFC 3550 §5.1's layout."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sautikit.media.rtp import (
    RtpExtension,
    RtpPacket,
    RtpParseError,
    pack_header,
    unpack_plain_header,
)

# V=2 P=0 X=0 CC=0 | M=1 PT=0 | seq 0x1234 | ts 0x00000a00 | ssrc 0xdeadbeef | 4 octets of payload
PCMU_WITH_MARKER = bytes.fromhex("80 80 1234 00000a00 deadbeef ffff7f00")

# V=2 P=1 X=1 CC=2 | M=0 PT=8 | seq 0xffff | ts 0xffffffff | ssrc 1 | CSRC 2, 3
# | extension profile 0xbede, 1 word: 01020304 | payload d5d5 | padding 00 00 03
FULL_HEADER = bytes.fromhex(
    "b2 08 ffff ffffffff 00000001 00000002 00000003 bede0001 01020304 d5d5 000003"
)


def test_parses_a_plain_packet_with_marker() -> None:
    packet = RtpPacket.parse(PCMU_WITH_MARKER)
    assert packet == RtpPacket(
        payload_type=0,
        sequence=0x1234,
        timestamp=0xA00,
        ssrc=0xDEADBEEF,
        payload=b"\xff\xff\x7f\x00",
        marker=True,
    )


def test_parses_csrc_extension_and_padding() -> None:
    packet = RtpPacket.parse(FULL_HEADER)
    assert packet.payload_type == 8
    assert packet.sequence == 0xFFFF
    assert packet.timestamp == 0xFFFFFFFF
    assert packet.ssrc == 1
    assert packet.csrc == (2, 3)
    assert packet.extension == RtpExtension(0xBEDE, b"\x01\x02\x03\x04")
    assert packet.payload == b"\xd5\xd5"
    assert packet.padding == 3
    assert not packet.marker


@pytest.mark.parametrize("wire", [PCMU_WITH_MARKER, FULL_HEADER])
def test_encode_reproduces_the_wire_bytes(wire: bytes) -> None:
    assert RtpPacket.parse(wire).encode() == wire


def test_empty_extension_and_empty_payload_round_trip() -> None:
    packet = RtpPacket(101, 7, 8, 9, extension=RtpExtension(0x1000))
    assert RtpPacket.parse(packet.encode()) == packet


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        (b"", "truncated"),
        (PCMU_WITH_MARKER[:11], "truncated"),
        (bytes([0x40]) + PCMU_WITH_MARKER[1:], "version 1"),
        (bytes([0x00]) + PCMU_WITH_MARKER[1:], "version 0"),
        # CC=3 but only two CSRCs (and nothing after) present
        (bytes.fromhex("83 00 0001 00000000 00000001 00000002 00000003"), "CSRC count 3"),
        # X set, extension header missing
        (bytes.fromhex("90 00 0001 00000000 00000001"), "no extension header"),
        # X set, extension claims 2 words, carries 1
        (bytes.fromhex("90 00 0001 00000000 00000001 bede0002 01020304"), "extension of 2"),
        # P set, padding count 0
        (bytes.fromhex("a0 00 0001 00000000 00000001 aabb00"), "padding count 0"),
        # P set, padding count larger than what follows the header
        (bytes.fromhex("a0 00 0001 00000000 00000001 aa05"), "padding count 5"),
        # P set, nothing after the header
        (bytes.fromhex("a0 00 0001 00000000 00000001"), "padding bit"),
    ],
)
def test_malformed_packets_raise_rtp_parse_error(wire: bytes, reason: str) -> None:
    with pytest.raises(RtpParseError, match=reason):
        RtpPacket.parse(wire)


@pytest.mark.parametrize(
    "packet",
    [
        RtpPacket(128, 0, 0, 0),
        RtpPacket(0, 65536, 0, 0),
        RtpPacket(0, 0, 1 << 32, 0),
        RtpPacket(0, 0, 0, 0, csrc=tuple(range(16))),
        RtpPacket(0, 0, 0, 0, extension=RtpExtension(1, b"abc")),
        RtpPacket(0, 0, 0, 0, padding=256),
    ],
)
def test_encode_rejects_out_of_range_fields(packet: RtpPacket) -> None:
    with pytest.raises(ValueError):
        packet.encode()


@given(
    payload_type=st.integers(0, 127),
    sequence=st.integers(0, 0xFFFF),
    timestamp=st.integers(0, 0xFFFF_FFFF),
    ssrc=st.integers(0, 0xFFFF_FFFF),
    marker=st.booleans(),
    payload=st.binary(max_size=200),
)
def test_pack_header_writes_what_encode_would(
    payload_type: int, sequence: int, timestamp: int, ssrc: int, marker: bool, payload: bytes
) -> None:
    wire = bytearray(b"\xaa" * 12) + payload
    pack_header(wire, payload_type, sequence, timestamp, ssrc, marker)
    packet = RtpPacket(payload_type, sequence, timestamp, ssrc, payload, marker)
    assert bytes(wire) == packet.encode()
    assert RtpPacket.parse(bytes(wire)) == packet


@pytest.mark.parametrize(
    "fields", [(128, 0, 0, 0), (-1, 0, 0, 0), (0, 65536, 0, 0), (0, 0, 1 << 32, 0), (0, 0, 0, -1)]
)
def test_pack_header_rejects_out_of_range_fields(fields: tuple[int, int, int, int]) -> None:
    with pytest.raises(ValueError):
        pack_header(bytearray(12), *fields)


@given(
    payload_type=st.integers(0, 127),
    sequence=st.integers(0, 0xFFFF),
    timestamp=st.integers(0, 0xFFFF_FFFF),
    ssrc=st.integers(0, 0xFFFF_FFFF),
    marker=st.booleans(),
    payload=st.binary(max_size=200),
)
def test_unpack_plain_header_reads_what_parse_reads(
    payload_type: int, sequence: int, timestamp: int, ssrc: int, marker: bool, payload: bytes
) -> None:
    wire = RtpPacket(payload_type, sequence, timestamp, ssrc, payload, marker).encode()
    assert unpack_plain_header(wire) == (payload_type, sequence, timestamp, ssrc, marker)


@pytest.mark.parametrize(
    "packet",
    [
        RtpPacket(0, 1, 2, 3, b"x", csrc=(7,)),
        RtpPacket(0, 1, 2, 3, b"x", extension=RtpExtension(1, b"abcd")),
        RtpPacket(0, 1, 2, 3, b"x", padding=4),
    ],
)
def test_unpack_plain_header_leaves_other_packets_to_parse(packet: RtpPacket) -> None:
    assert unpack_plain_header(packet.encode()) is None


@given(st.binary(max_size=40))
def test_unpack_plain_header_never_raises(data: bytes) -> None:
    header = unpack_plain_header(data)
    if header is not None:
        assert RtpPacket.parse(data).ssrc == header[3]
