"""RFC 4733 telephone-events: payload codec, digits received once, and the packets we send."""

import random
import struct
from pathlib import Path

import pytest

from sautikit.media.dtmf import (
    DTMF_DIGITS,
    DtmfParseError,
    DtmfReceiver,
    DtmfSender,
    TelephoneEvent,
)
from sautikit.media.rtp import RtpPacket

SIPP_PCAPS = Path("/usr/share/sip-tester")
SIPP_DIGITS = {**{str(d): str(d) for d in range(10)}, "star": "*", "pound": "#"}


def read_pcap_rtp(path: Path) -> list[RtpPacket]:
    """The RTP packets of a classic little-endian Ethernet/IPv4/UDP pcap (what SIPp ships)."""
    data = path.read_bytes()
    magic, _, _, _, _, _, linktype = struct.unpack_from("<IHHiIII", data)
    assert magic == 0xA1B2C3D4
    assert linktype == 1
    packets = []
    offset = 24
    while offset < len(data):
        _, _, captured, _ = struct.unpack_from("<IIII", data, offset)
        frame = data[offset + 16 : offset + 16 + captured]
        offset += 16 + captured
        ip_header = (frame[14] & 0x0F) * 4
        packets.append(RtpPacket.parse(frame[14 + ip_header + 8 :]))
    return packets


def sipp_packets(name: str) -> list[RtpPacket]:
    path = SIPP_PCAPS / f"dtmf_2833_{name}.pcap"
    if not path.exists():
        pytest.skip("SIPp's sample pcaps (Debian sip-tester) are not installed")
    return read_pcap_rtp(path)


def feed_all(receiver: DtmfReceiver, packets: list[RtpPacket]) -> str:
    digits = (receiver.feed(p.payload, p.timestamp, p.marker) for p in packets)
    return "".join(d for d in digits if d is not None)


def test_payload_fixtures() -> None:
    start = TelephoneEvent.parse(bytes.fromhex("010a0000"))
    assert start == TelephoneEvent(event=1, end=False, volume=10, duration=0)
    end = TelephoneEvent.parse(bytes.fromhex("0b8a08c0"))
    assert end == TelephoneEvent(event=11, end=True, volume=10, duration=2240)
    assert end.digit == "#"
    assert end.encode() == bytes.fromhex("0b8a08c0")
    assert TelephoneEvent(16).digit is None


def test_short_payload_raises_dtmf_parse_error() -> None:
    with pytest.raises(DtmfParseError, match="3 bytes"):
        TelephoneEvent.parse(b"\x01\x0a\x00")
    with pytest.raises(DtmfParseError):
        DtmfReceiver().feed(b"", 0, True)


def test_encode_rejects_out_of_range_fields() -> None:
    with pytest.raises(ValueError):
        TelephoneEvent(1, volume=64).encode()
    with pytest.raises(ValueError):
        TelephoneEvent(256).encode()
    with pytest.raises(ValueError):
        TelephoneEvent(1, duration=1 << 16).encode()


@pytest.mark.parametrize("name", sorted(SIPP_DIGITS))
def test_sipp_capture_yields_its_digit_once(name: str) -> None:
    packets = sipp_packets(name)
    # SIPp's capture: a marked start, growing durations, three identical end packets.
    assert packets[0].marker
    assert [TelephoneEvent.parse(p.payload).end for p in packets[-3:]] == [True] * 3
    assert all(TelephoneEvent.parse(p.payload).encode() == p.payload for p in packets)
    assert feed_all(DtmfReceiver(), packets) == SIPP_DIGITS[name]


def test_sipp_captures_played_in_any_order_and_repeated() -> None:
    receiver = DtmfReceiver()
    # The captures' timestamps do not follow digit order, and a replay repeats them.
    sequence = ["pound", "1", "1", "star", "0", "9"]
    heard = "".join(feed_all(receiver, sipp_packets(name)) for name in sequence)
    assert heard == "#11*09"


def test_sender_plans_one_event_with_marker_growing_duration_and_three_ends() -> None:
    packets = DtmfSender(volume=7).packets("7", duration_ms=100)
    events = [TelephoneEvent.parse(p.payload) for p in packets]
    assert [p.marker for p in packets] == [True] + [False] * 6
    assert [e.duration for e in events] == [160, 320, 480, 640, 800, 800, 800]
    assert [e.end for e in events] == [False] * 4 + [True] * 3
    assert {(e.event, e.volume) for e in events} == {(7, 7)}


def test_sender_short_tone_is_just_the_end_packets() -> None:
    packets = DtmfSender().packets("a", duration_ms=20)
    assert [TelephoneEvent.parse(p.payload) for p in packets] == [
        TelephoneEvent(12, True, 10, 160)
    ] * 3
    assert packets[0].marker


@pytest.mark.parametrize(("digit", "duration"), [("E", 100), ("12", 100), ("", 100), ("1", 0)])
def test_sender_rejects_bad_digits_and_durations(digit: str, duration: int) -> None:
    with pytest.raises(ValueError):
        DtmfSender().packets(digit, duration)


def test_sender_rejects_an_event_longer_than_the_duration_field() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        DtmfSender().packets("1", 9000)


def stamp(digit: str, timestamp: int, duration_ms: int = 100) -> list[tuple[bytes, int, bool]]:
    return [(p.payload, timestamp, p.marker) for p in DtmfSender().packets(digit, duration_ms)]


def test_every_digit_sent_is_received_once() -> None:
    receiver = DtmfReceiver()
    stream = [
        packet for i, digit in enumerate(DTMF_DIGITS) for packet in stamp(digit, 1000 + i * 4000)
    ]
    assert "".join(filter(None, (receiver.feed(*packet) for packet in stream))) == DTMF_DIGITS


def test_duplicates_and_reordering_within_an_event_count_once() -> None:
    packets = stamp("5", 9000, duration_ms=200)
    # Every packet twice, the start retransmitted, then neighbours shuffled within windows of
    # four (networks reorder packets sent close together, not an event's end before its start).
    stream = [packet for packet in packets for _ in range(2)]
    stream[2:2] = [packets[0]] * 2
    rng = random.Random(4733)
    for window in range(0, len(stream), 4):
        chunk = stream[window : window + 4]
        rng.shuffle(chunk)
        stream[window : window + 4] = chunk
    receiver = DtmfReceiver()
    assert [d for d in (receiver.feed(*p) for p in stream) if d] == ["5"]


def test_start_packet_lost_still_yields_the_digit_once() -> None:
    receiver = DtmfReceiver()
    stream = stamp("9", 1000)[1:]
    assert [d for d in (receiver.feed(*p) for p in stream) if d] == ["9"]


def test_stragglers_of_the_previous_event_do_not_repeat_it() -> None:
    first = stamp("1", 1000)
    second = stamp("2", 5000)
    # The last end packet of "1" arrives after "2" began; "2" started with its marker lost.
    stream = first[:-1] + second[1:3] + [first[-1]] + second[3:]
    receiver = DtmfReceiver()
    assert "".join(filter(None, (receiver.feed(*p) for p in stream))) == "12"


def test_same_digit_twice_is_two_events() -> None:
    receiver = DtmfReceiver()
    stream = stamp("3", 1000) + stamp("3", 3000)
    assert "".join(filter(None, (receiver.feed(*p) for p in stream))) == "33"


def test_timestamp_wrap_between_events() -> None:
    receiver = DtmfReceiver()
    stream = stamp("8", 0xFFFFFF00) + stamp("9", 0x100)
    assert "".join(filter(None, (receiver.feed(*p) for p in stream))) == "89"


def test_non_dtmf_events_are_absorbed() -> None:
    receiver = DtmfReceiver()
    flash = TelephoneEvent(16, False, 10, 160).encode()
    assert receiver.feed(flash, 1000, True) is None
    assert receiver.feed(flash, 1000, False) is None
