"""Generated input for the media packet parsers: bad bytes raise our parse errors, nothing else."""

import contextlib

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from sautikit.media.dtmf import DtmfParseError, DtmfReceiver, TelephoneEvent
from sautikit.media.rtcp import (
    Bye,
    ReceiverReport,
    ReportBlock,
    RtcpPacket,
    RtcpParseError,
    SdesChunk,
    SenderReport,
    SourceDescription,
    encode_compound,
    parse_compound,
)
from sautikit.media.rtp import RtpExtension, RtpPacket, RtpParseError
from sautikit.media.session import RtpSession

u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)

rtp_packets = st.builds(
    RtpPacket,
    payload_type=st.integers(0, 127),
    sequence=u16,
    timestamp=u32,
    ssrc=u32,
    payload=st.binary(max_size=64),
    marker=st.booleans(),
    csrc=st.lists(u32, max_size=15).map(tuple),
    extension=st.none()
    | st.builds(RtpExtension, profile=u16, data=st.binary(max_size=16).map(lambda b: b * 4)),
    padding=st.integers(0, 255),
)


@given(st.binary(max_size=200))
def test_rtp_parse_of_arbitrary_bytes_raises_only_rtp_parse_error(data: bytes) -> None:
    try:
        packet = RtpPacket.parse(data)
    except RtpParseError:
        return
    # Whatever parses encodes back to a packet that parses the same (padding octets zeroed).
    assert RtpPacket.parse(packet.encode()) == packet


@given(st.binary(min_size=1, max_size=200))
def test_rtp_parse_of_version_2_bytes_raises_only_rtp_parse_error(data: bytes) -> None:
    # Force version 2 so the fuzz reaches the CSRC, extension and padding checks.
    with contextlib.suppress(RtpParseError):
        RtpPacket.parse(bytes([0x80 | (data[0] & 0x3F)]) + data[1:])


@given(rtp_packets)
def test_rtp_round_trip(packet: RtpPacket) -> None:
    assert RtpPacket.parse(packet.encode()) == packet


@given(rtp_packets, st.integers(0, 400))
def test_truncated_rtp_never_escapes_another_exception(packet: RtpPacket, cut: int) -> None:
    wire = packet.encode()
    with contextlib.suppress(RtpParseError):
        RtpPacket.parse(wire[: min(cut, len(wire))])


report_blocks = st.builds(
    ReportBlock,
    ssrc=u32,
    fraction_lost=st.integers(0, 255),
    cumulative_lost=st.integers(-(1 << 23), (1 << 23) - 1),
    highest_sequence=u32,
    jitter=u32,
    last_sr=u32,
    delay_since_last_sr=u32,
)
blocks = st.lists(report_blocks, max_size=4).map(tuple)
rtcp_packets = st.one_of(
    st.builds(
        SenderReport,
        ssrc=u32,
        ntp_timestamp=st.integers(0, (1 << 64) - 1),
        rtp_timestamp=u32,
        packet_count=u32,
        octet_count=u32,
        reports=blocks,
    ),
    st.builds(ReceiverReport, ssrc=u32, reports=blocks),
    st.builds(
        SourceDescription,
        chunks=st.lists(
            st.builds(
                SdesChunk,
                ssrc=u32,
                items=st.lists(
                    st.tuples(st.integers(1, 8), st.binary(max_size=40)), max_size=3
                ).map(tuple),
            ),
            max_size=3,
        ).map(tuple),
    ),
    st.builds(
        Bye,
        ssrcs=st.lists(u32, max_size=4).map(tuple),
        reason=st.none() | st.text(max_size=30).filter(lambda t: len(t.encode()) < 256),
    ),
)


@given(st.lists(rtcp_packets, min_size=1, max_size=4))
def test_rtcp_compound_round_trip(packets: list[RtcpPacket]) -> None:
    assert parse_compound(encode_compound(packets)) == packets


@given(st.binary(max_size=200))
def test_rtcp_parse_of_arbitrary_bytes_raises_only_rtcp_parse_error(data: bytes) -> None:
    with contextlib.suppress(RtcpParseError):
        parse_compound(data)


@given(st.lists(rtcp_packets, min_size=1, max_size=3), st.integers(0, 400), st.binary(max_size=8))
def test_mangled_rtcp_never_escapes_another_exception(
    packets: list[RtcpPacket], cut: int, tail: bytes
) -> None:
    wire = encode_compound(packets)
    with contextlib.suppress(RtcpParseError):
        parse_compound(wire[:cut] + tail)


@given(st.lists(st.tuples(st.binary(max_size=8), u32, st.booleans()), max_size=30))
def test_dtmf_receiver_on_arbitrary_packets_raises_only_dtmf_parse_error(
    packets: list[tuple[bytes, int, bool]],
) -> None:
    receiver = DtmfReceiver()
    for payload, timestamp, marker in packets:
        try:
            digit = receiver.feed(payload, timestamp, marker)
        except DtmfParseError:
            assert len(payload) < 4
        else:
            assert digit is None or digit == TelephoneEvent.parse(payload).digit


datagrams = st.one_of(
    st.binary(max_size=64),
    st.builds(
        lambda pt, seq, ssrc, payload: RtpPacket(pt, seq, seq * 160, ssrc, payload).encode(),
        st.sampled_from([0, 8, 101, 13]),
        u16,
        st.sampled_from([1, 2]),
        st.binary(max_size=200),
    ),
)


@given(st.lists(st.tuples(datagrams, st.sampled_from([5000, 5002])), max_size=40))
def test_session_receive_path_survives_any_datagrams(arrivals: list[tuple[bytes, int]]) -> None:
    # Straight into the receive handlers, as the datagram endpoints call them, no sockets.
    session = RtpSession()
    for data, port in arrivals:
        session._on_rtp(data, ("127.0.0.1", port))
        session._on_rtcp(data, ("127.0.0.1", port + 1))
        frame = session.read_frame()
        assert frame.shape == (160,)
        assert frame.dtype == np.int16
