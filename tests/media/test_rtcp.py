"""RTCP compound packets against byte fixtures, and the reception statistics of RFC 3550 App. A."""

import pytest

from sautikit.media.rtcp import (
    Bye,
    ReceiverReport,
    ReceptionStatistics,
    ReportBlock,
    RtcpParseError,
    SdesChunk,
    SenderReport,
    SourceDescription,
    UnknownRtcpPacket,
    encode_compound,
    ntp_middle_32,
    ntp_timestamp,
    parse_compound,
)

# SR, RC=1, length 12 words: SSRC, NTP e1234567.80000000, RTP ts 8000, 50 packets, 8000 octets,
# then one block about aabbccdd: 25 % lost (0x40), 5 cumulative, highest 0x10005, jitter 12,
# LSR 45678000, DLSR 1 s.
SR = bytes.fromhex(
    "81c8000c 11223344 e1234567 80000000 00001f40 00000032 00001f40"
    " aabbccdd 40000005 00010005 0000000c 45678000 00010000"
)
# SDES, SC=1, 5 words: CNAME "sautikit@host" (13 octets) and one terminating null.
SDES = bytes.fromhex("81ca0005 11223344 010d") + b"sautikit@host" + b"\x00"
# BYE, SC=1, 3 words, reason "done" padded to 32 bits.
BYE = bytes.fromhex("81cb0003 11223344 04") + b"done" + b"\x00\x00\x00"
# RR, RC=1, cumulative lost -2 (duplicates outnumber losses).
RR = bytes.fromhex("81c90007 11223344 aabbccdd 00fffffe 0000ffff 00000000 00000000 00000000")

BLOCK = ReportBlock(0xAABBCCDD, 0x40, 5, 0x10005, 12, 0x45678000, 0x10000)


def test_parses_a_compound_sr_sdes_bye() -> None:
    packets = parse_compound(SR + SDES + BYE)
    assert packets == [
        SenderReport(0x11223344, 0xE1234567_80000000, 8000, 50, 8000, (BLOCK,)),
        SourceDescription.with_cname(0x11223344, "sautikit@host"),
        Bye((0x11223344,), "done"),
    ]
    sdes = packets[1]
    assert isinstance(sdes, SourceDescription)
    assert sdes.chunks[0].cname == "sautikit@host"


def test_parses_negative_cumulative_loss() -> None:
    (report,) = parse_compound(RR)
    assert report == ReceiverReport(0x11223344, (ReportBlock(0xAABBCCDD, 0, -2, 0xFFFF, 0, 0, 0),))


@pytest.mark.parametrize("wire", [SR, SDES, BYE, RR, SR + SDES + BYE])
def test_encode_reproduces_the_wire_bytes(wire: bytes) -> None:
    assert encode_compound(parse_compound(wire)) == wire


def test_sdes_chunk_already_aligned_still_gets_a_null_terminator() -> None:
    # SSRC + type + length + 2-octet CNAME = 8 octets: a whole word of nulls must follow.
    packet = SourceDescription.with_cname(1, "ab")
    wire = packet.encode()
    assert wire[-4:] == b"\x00\x00\x00\x00"
    assert parse_compound(wire) == [packet]


def test_unknown_packet_types_are_kept_verbatim() -> None:
    app = UnknownRtcpPacket(204, 3, b"\x00\x00\x00\x01name")
    assert parse_compound(RR + app.encode()) == [parse_compound(RR)[0], app]


def test_bye_without_reason_and_sdes_without_cname() -> None:
    bye = Bye((1, 2))
    sdes = SourceDescription((SdesChunk(5, ((2, b"Sautikit"),)),))
    assert parse_compound(encode_compound([bye, sdes])) == [bye, sdes]
    assert sdes.chunks[0].cname is None


def test_trailing_padding_on_the_last_packet() -> None:
    padded = bytearray(BYE)
    padded[0] |= 0x20
    padded[3] += 1
    padded += b"\x00\x00\x00\x04"
    assert parse_compound(bytes(padded)) == [Bye((0x11223344,), "done")]


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        (b"", "empty"),
        (b"\x81\xc9\x00", "truncated"),
        (b"\x41" + RR[1:], "version 1"),
        (RR[:-4], "claims"),
        (RR + b"\x80", "truncated"),
        # RC=2 but one block present
        (b"\x82" + RR[1:], "2 report blocks"),
        (bytes.fromhex("81c80001 11223344"), "too short"),
        (bytes.fromhex("81c90000"), "without an SSRC"),
        # padding bit on the first of two packets
        (bytes([RR[0] | 0x20]) + RR[1:] + BYE, "not the last"),
        (bytes.fromhex("a1cb0001 00000000"), "padding count 0"),
        (bytes.fromhex("82cb0001 00000001"), "BYE lists 2"),
        (bytes.fromhex("81cb0002 00000001 09616263"), "BYE reason"),
        (bytes.fromhex("82ca0002 00000001 00000000"), "chunk 2 of 2"),
        (bytes.fromhex("81ca0002 00000001 01056162"), "runs past"),
        (bytes.fromhex("81ca0002 00000001 01026162"), "not terminated"),
    ],
)
def test_malformed_rtcp_raises_rtcp_parse_error(wire: bytes, reason: str) -> None:
    with pytest.raises(RtcpParseError, match=reason):
        parse_compound(wire)


def test_encode_rejects_out_of_range_fields() -> None:
    with pytest.raises(ValueError):
        ReceiverReport(0, (BLOCK,) * 32).encode()
    with pytest.raises(ValueError):
        ReportBlock(0, 256, 0, 0, 0).encode()
    with pytest.raises(ValueError):
        Bye((1 << 32,)).encode()


def test_ntp_timestamp_helpers() -> None:
    ntp = ntp_timestamp(0.5)
    assert ntp == (2_208_988_800 << 32) | 0x80000000
    assert ntp_middle_32(0xE1234567_89ABCDEF) == 0x456789AB


def _feed(stats: ReceptionStatistics, sequences: list[int], start: float = 100.0) -> None:
    for sequence in sequences:
        # Perfectly paced: 20 ms apart, 160 timestamp units apart.
        stats.update(sequence, sequence * 160, start + sequence * 0.02)


def test_in_order_stream_across_the_sequence_wrap_counts_no_loss() -> None:
    stats = ReceptionStatistics(0xAABBCCDD)
    _feed(stats, [(65500 + i) % 65536 for i in range(100)])
    # The first packet is spent on probation (A.1), the rest are counted.
    assert stats.received == 99
    assert stats.expected == 99
    assert stats.lost == 0
    assert stats.cycles == 65536
    assert stats.extended_max == 65536 + 63
    block = stats.report_block(now=200.0)
    assert block.fraction_lost == 0
    assert block.highest_sequence == 65536 + 63


def test_losses_show_in_fraction_and_cumulative_lost() -> None:
    stats = ReceptionStatistics(1)
    _feed(stats, [i for i in range(1, 101) if i % 10 != 0 or i == 100])
    # Packets 10, 20, … 90 never arrived: 9 of 99 expected after probation.
    assert stats.lost == 9
    assert stats.report_block(now=200.0).fraction_lost == (9 << 8) // 99
    # The next interval had no losses.
    _feed(stats, list(range(101, 151)))
    block = stats.report_block(now=201.0)
    assert block.fraction_lost == 0
    assert block.cumulative_lost == 9


def test_duplicates_make_cumulative_loss_negative_and_interval_fraction_zero() -> None:
    stats = ReceptionStatistics(1)
    _feed(stats, [1, 2, 3, 3, 3, 4])
    assert stats.lost == -2
    block = stats.report_block(now=1.0)
    assert block.cumulative_lost == -2
    assert block.fraction_lost == 0


def test_a_big_jump_is_ignored_once_then_taken_as_a_restart() -> None:
    stats = ReceptionStatistics(1)
    _feed(stats, list(range(1, 50)))
    assert stats.update(40_000, 0, 0.0) is False
    assert stats.received == 48
    assert stats.update(40_001, 160, 0.02) is True
    assert stats.received == 1
    assert stats.extended_max == 40_001


def test_new_source_is_on_probation_until_two_sequential_packets() -> None:
    stats = ReceptionStatistics(1)
    assert stats.update(7, 0, 0.0) is False
    assert stats.update(100, 0, 0.0) is False
    assert stats.update(101, 160, 0.02) is True
    assert stats.received == 1


def test_jitter_is_zero_for_steady_arrival_and_grows_with_variation() -> None:
    steady = ReceptionStatistics(1)
    _feed(steady, list(range(1, 200)))
    assert steady.jitter == 0

    shaky = ReceptionStatistics(1)
    for sequence in range(1, 400):
        # Every other packet 10 ms (80 units) late.
        late = 0.01 if sequence % 2 else 0.0
        shaky.update(sequence, sequence * 160, sequence * 0.02 + late)
    # The 1/16 filter converges on the mean |D| of 80 units.
    assert shaky.jitter == pytest.approx(80, abs=2)


def test_report_block_carries_lsr_and_dlsr() -> None:
    stats = ReceptionStatistics(1)
    _feed(stats, [1, 2, 3])
    stats.on_sender_report(SenderReport(1, 0xE1234567_89ABCDEF, 0, 0, 0), arrival=10.0)
    block = stats.report_block(now=11.5)
    assert block.last_sr == 0x456789AB
    assert block.delay_since_last_sr == int(1.5 * 65536)


def test_an_unknown_packet_cut_short_by_padding_encodes_on_a_whole_word() -> None:
    # Found by benchmarks/fuzz_sip.py (atheris): padding left a 1-octet body, which
    # encoding refused.
    (packet,) = parse_compound(bytes.fromhex("a1000001fbde8003"))
    assert isinstance(packet, UnknownRtcpPacket) and packet.body == b"\xfb"
    assert parse_compound(encode_compound([packet])) == [
        UnknownRtcpPacket(packet.packet_type, packet.count, b"\xfb\x00\x00\x00")
    ]
