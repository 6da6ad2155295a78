"""RTCP: compound packets and the receiver-side statistics behind reports (RFC 3550 §6, App. A).

Two halves, both pure (no sockets, no clocks of their own):

* A codec for compound RTCP packets (§6.1): Sender Report (§6.4.1), Receiver Report (§6.4.2)
  with their report blocks, SDES (§6.5, CNAME in particular), BYE (§6.6). Other packet types
  (APP, feedback, XR) are kept as :class:`UnknownRtcpPacket` so a compound packet carrying
  them still parses. :func:`parse_compound` applies the header validity checks of §6.1 and
  App. A.2 that survive reduced-size RTCP (RFC 5506): version 2 everywhere, lengths that add
  up to the datagram, padding only on the last packet.
* :class:`ReceptionStatistics`, the per-source bookkeeping of App. A.1 (sequence validation
  with wrap, cycles and probation), A.3 (expected vs received, fraction lost) and A.8
  (interarrival jitter), which fills the report blocks we send.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

__all__ = [
    "NTP_EPOCH_OFFSET",
    "Bye",
    "ReceiverReport",
    "ReceptionStatistics",
    "ReportBlock",
    "RtcpPacket",
    "RtcpParseError",
    "SdesChunk",
    "SenderReport",
    "SourceDescription",
    "UnknownRtcpPacket",
    "encode_compound",
    "ntp_middle_32",
    "ntp_timestamp",
    "parse_compound",
]

RTCP_VERSION = 2
PT_SR = 200
PT_RR = 201
PT_SDES = 202
PT_BYE = 203
SDES_CNAME = 1

#: Seconds from the NTP epoch (1900) to the Unix epoch (1970).
NTP_EPOCH_OFFSET = 2_208_988_800

_HEADER = struct.Struct("!BBH")
_SENDER_INFO = struct.Struct("!IIIIII")
_REPORT_BLOCK = struct.Struct("!IIIIII")
_MAX_COUNT = 31


class RtcpParseError(ValueError):
    """Raised by :func:`parse_compound` when the bytes are not a well-formed RTCP packet."""


def ntp_timestamp(unix_time: float) -> int:
    """The 64-bit NTP timestamp (§4) for a Unix time in seconds."""
    return int((unix_time + NTP_EPOCH_OFFSET) * (1 << 32)) & 0xFFFF_FFFF_FFFF_FFFF


def ntp_middle_32(ntp: int) -> int:
    """The middle 32 bits of an NTP timestamp, the form LSR and DLSR use (§6.4.1)."""
    return (ntp >> 16) & 0xFFFF_FFFF


@dataclass(frozen=True, slots=True)
class ReportBlock:
    """One reception report block (§6.4.1): what we heard from ``ssrc``.

    ``cumulative_lost`` is signed (duplicates can make it negative); ``last_sr`` and
    ``delay_since_last_sr`` are in the middle-32-bit NTP form, the delay in 1/65536 s.
    """

    ssrc: int
    fraction_lost: int
    cumulative_lost: int
    highest_sequence: int
    jitter: int
    last_sr: int = 0
    delay_since_last_sr: int = 0

    def encode(self) -> bytes:
        if not 0 <= self.fraction_lost <= 0xFF:
            raise ValueError(f"fraction lost {self.fraction_lost} is not 0..255")
        lost = max(-0x80_0000, min(0x7F_FFFF, self.cumulative_lost)) & 0xFF_FFFF
        try:
            return _REPORT_BLOCK.pack(
                self.ssrc,
                (self.fraction_lost << 24) | lost,
                self.highest_sequence,
                self.jitter,
                self.last_sr,
                self.delay_since_last_sr,
            )
        except struct.error as error:
            raise ValueError(f"report block field out of range: {error}") from error

    @classmethod
    def _parse(cls, data: bytes, offset: int) -> ReportBlock:
        ssrc, loss, highest, jitter, last_sr, delay = _REPORT_BLOCK.unpack_from(data, offset)
        lost = loss & 0xFF_FFFF
        if lost & 0x80_0000:
            lost -= 0x100_0000
        return cls(ssrc, loss >> 24, lost, highest, jitter, last_sr, delay)


@dataclass(frozen=True, slots=True)
class SenderReport:
    """SR (§6.4.1): sender info of ``ssrc`` plus its reports on the sources it hears."""

    ssrc: int
    ntp_timestamp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[ReportBlock, ...] = ()

    def encode(self) -> bytes:
        try:
            body = _SENDER_INFO.pack(
                self.ssrc,
                self.ntp_timestamp >> 32,
                self.ntp_timestamp & 0xFFFF_FFFF,
                self.rtp_timestamp,
                self.packet_count,
                self.octet_count,
            )
        except struct.error as error:
            raise ValueError(f"sender report field out of range: {error}") from error
        return _packet(PT_SR, len(self.reports), body + _blocks(self.reports))


@dataclass(frozen=True, slots=True)
class ReceiverReport:
    """RR (§6.4.2): ``ssrc``'s reports on the sources it hears, sent by a non-sender."""

    ssrc: int
    reports: tuple[ReportBlock, ...] = ()

    def encode(self) -> bytes:
        try:
            body = struct.pack("!I", self.ssrc)
        except struct.error as error:
            raise ValueError(f"receiver report SSRC out of range: {error}") from error
        return _packet(PT_RR, len(self.reports), body + _blocks(self.reports))


@dataclass(frozen=True, slots=True)
class SdesChunk:
    """One SDES chunk (§6.5): a source and its (item type, value) pairs."""

    ssrc: int
    items: tuple[tuple[int, bytes], ...] = ()

    @property
    def cname(self) -> str | None:
        """The CNAME item (§6.5.1), decoded as UTF-8, or None when absent."""
        for kind, value in self.items:
            if kind == SDES_CNAME:
                return value.decode("utf-8", "replace")
        return None


@dataclass(frozen=True, slots=True)
class SourceDescription:
    """SDES (§6.5): one chunk per source."""

    chunks: tuple[SdesChunk, ...]

    @classmethod
    def with_cname(cls, ssrc: int, cname: str) -> SourceDescription:
        return cls((SdesChunk(ssrc, ((SDES_CNAME, cname.encode()),)),))

    def encode(self) -> bytes:
        body = bytearray()
        for chunk in self.chunks:
            try:
                body += struct.pack("!I", chunk.ssrc)
            except struct.error as error:
                raise ValueError(f"SDES SSRC out of range: {error}") from error
            for kind, value in chunk.items:
                if not 1 <= kind <= 255 or len(value) > 255:
                    raise ValueError(f"SDES item type {kind} or length {len(value)} invalid")
                body += bytes((kind, len(value))) + value
            # The item list ends with at least one null octet, then pads to 32 bits (§6.5).
            body += bytes(4 - len(body) % 4)
        return _packet(PT_SDES, len(self.chunks), bytes(body))


@dataclass(frozen=True, slots=True)
class Bye:
    """BYE (§6.6): these sources are leaving, with an optional reason."""

    ssrcs: tuple[int, ...]
    reason: str | None = None

    def encode(self) -> bytes:
        try:
            body = struct.pack(f"!{len(self.ssrcs)}I", *self.ssrcs)
        except struct.error as error:
            raise ValueError(f"BYE SSRC out of range: {error}") from error
        if self.reason is not None:
            text = self.reason.encode()
            if len(text) > 255:
                raise ValueError("BYE reason is longer than 255 octets")
            reason = bytes((len(text),)) + text
            body += reason + bytes(-len(reason) % 4)
        return _packet(PT_BYE, len(self.ssrcs), body)


@dataclass(frozen=True, slots=True)
class UnknownRtcpPacket:
    """A packet type this module does not interpret (APP, feedback, XR…), kept verbatim."""

    packet_type: int
    count: int
    body: bytes = field(default=b"")

    def encode(self) -> bytes:
        # A body cut short by the sender's padding (§6.4.1) goes out on a whole word.
        return _packet(self.packet_type, self.count, self.body + bytes(-len(self.body) % 4))


RtcpPacket = SenderReport | ReceiverReport | SourceDescription | Bye | UnknownRtcpPacket


def _packet(packet_type: int, count: int, body: bytes) -> bytes:
    if count > _MAX_COUNT:
        raise ValueError(f"at most {_MAX_COUNT} items fit in one RTCP packet, got {count}")
    words = len(body) // 4
    if words > 0xFFFF:
        raise ValueError("RTCP packet too long")
    return _HEADER.pack((RTCP_VERSION << 6) | count, packet_type, words) + body


def _blocks(reports: tuple[ReportBlock, ...]) -> bytes:
    return b"".join(block.encode() for block in reports)


def encode_compound(packets: list[RtcpPacket] | tuple[RtcpPacket, ...]) -> bytes:
    """Concatenate packets into one compound datagram (§6.1); the caller picks the order."""
    return b"".join(packet.encode() for packet in packets)


def parse_compound(data: bytes) -> list[RtcpPacket]:
    """Split and decode a compound RTCP datagram; raise :class:`RtcpParseError` if malformed."""
    packets: list[RtcpPacket] = []
    offset = 0
    size = len(data)
    if size == 0:
        raise RtcpParseError("empty RTCP datagram")
    while offset < size:
        if offset + 4 > size:
            raise RtcpParseError(f"truncated RTCP header at offset {offset}")
        first, packet_type, words = _HEADER.unpack_from(data, offset)
        if first >> 6 != RTCP_VERSION:
            raise RtcpParseError(f"RTCP version {first >> 6} at offset {offset}, expected 2")
        end = offset + 4 + 4 * words
        if end > size:
            raise RtcpParseError(
                f"RTCP packet at offset {offset} claims {4 + 4 * words} bytes, {size - offset} left"
            )
        body_end = end
        if first & 0x20:
            if end != size:
                raise RtcpParseError("padding bit set on a packet that is not the last")
            padding = data[end - 1]
            if padding == 0 or padding > 4 * words:
                raise RtcpParseError(f"RTCP padding count {padding} invalid")
            body_end = end - padding
        packets.append(_parse_one(packet_type, first & 0x1F, data[offset + 4 : body_end]))
        offset = end
    return packets


def _parse_one(packet_type: int, count: int, body: bytes) -> RtcpPacket:
    if packet_type == PT_SR:
        if len(body) < _SENDER_INFO.size:
            raise RtcpParseError(f"sender report body of {len(body)} bytes is too short")
        ssrc, msw, lsw, rtp_ts, packets, octets = _SENDER_INFO.unpack_from(body)
        reports = _parse_blocks(body, _SENDER_INFO.size, count)
        return SenderReport(ssrc, (msw << 32) | lsw, rtp_ts, packets, octets, reports)
    if packet_type == PT_RR:
        if len(body) < 4:
            raise RtcpParseError("receiver report without an SSRC")
        (ssrc,) = struct.unpack_from("!I", body)
        return ReceiverReport(ssrc, _parse_blocks(body, 4, count))
    if packet_type == PT_SDES:
        return SourceDescription(_parse_chunks(body, count))
    if packet_type == PT_BYE:
        return _parse_bye(body, count)
    return UnknownRtcpPacket(packet_type, count, bytes(body))


def _parse_blocks(body: bytes, offset: int, count: int) -> tuple[ReportBlock, ...]:
    # Anything after the blocks is a profile-specific extension (§6.4.1): skipped.
    if offset + count * _REPORT_BLOCK.size > len(body):
        raise RtcpParseError(f"{count} report blocks do not fit in {len(body)} bytes")
    return tuple(ReportBlock._parse(body, offset + i * _REPORT_BLOCK.size) for i in range(count))


def _parse_chunks(body: bytes, count: int) -> tuple[SdesChunk, ...]:
    chunks: list[SdesChunk] = []
    offset = 0
    for _ in range(count):
        if offset + 4 > len(body):
            raise RtcpParseError(f"SDES chunk {len(chunks) + 1} of {count} is missing")
        (ssrc,) = struct.unpack_from("!I", body, offset)
        offset += 4
        items: list[tuple[int, bytes]] = []
        while True:
            if offset >= len(body):
                raise RtcpParseError("SDES item list is not terminated")
            kind = body[offset]
            if kind == 0:
                # Skip the terminating null and the padding to the next 32-bit boundary.
                offset = (offset + 4) & ~3
                break
            if offset + 2 > len(body) or offset + 2 + body[offset + 1] > len(body):
                raise RtcpParseError(f"SDES item type {kind} runs past the packet")
            length = body[offset + 1]
            items.append((kind, bytes(body[offset + 2 : offset + 2 + length])))
            offset += 2 + length
        chunks.append(SdesChunk(ssrc, tuple(items)))
    return tuple(chunks)


def _parse_bye(body: bytes, count: int) -> Bye:
    end = 4 * count
    if end > len(body):
        raise RtcpParseError(f"BYE lists {count} SSRCs but carries {len(body) // 4}")
    ssrcs = struct.unpack_from(f"!{count}I", body)
    reason = None
    if end < len(body):
        length = body[end]
        if end + 1 + length > len(body):
            raise RtcpParseError(f"BYE reason of {length} octets runs past the packet")
        reason = bytes(body[end + 1 : end + 1 + length]).decode("utf-8", "replace")
    return Bye(ssrcs, reason)


# App. A.1 constants.
_SEQ_MOD = 1 << 16
_MAX_DROPOUT = 3000
_MAX_MISORDER = 100
_MIN_SEQUENTIAL = 2


class ReceptionStatistics:
    """What we know about one remote source, for the report block we send about it.

    Feed every RTP packet from the source to :meth:`update` with its arrival time; feed its
    SRs to :meth:`on_sender_report`; call :meth:`report_block` when sending RTCP.
    """

    def __init__(self, ssrc: int, clock_rate: int = 8000) -> None:
        self.ssrc = ssrc
        self.clock_rate = clock_rate
        self.max_seq = 0
        self.cycles = 0
        self.base_seq = 0
        self.bad_seq = _SEQ_MOD + 1
        self.probation = _MIN_SEQUENTIAL
        self.received = 0
        self._expected_prior = 0
        self._received_prior = 0
        self._started = False
        self._transit: float | None = None
        self._jitter = 0.0
        self._last_sr = 0
        self._last_sr_arrival: float | None = None

    def _init_seq(self, seq: int) -> None:
        self.base_seq = seq
        self.max_seq = seq
        self.bad_seq = _SEQ_MOD + 1
        self.cycles = 0
        self.received = 0
        self._received_prior = 0
        self._expected_prior = 0

    def update(self, sequence: int, timestamp: int, arrival: float) -> bool:
        """Account for one packet; False while the source is on probation or on a bad jump.

        ``arrival`` is the local receive time in seconds on any monotonic clock.
        """
        if not self._started:
            self._started = True
            self._init_seq(sequence)
            self.max_seq = (sequence - 1) % _SEQ_MOD
            self.probation = _MIN_SEQUENTIAL
        if not self._update_seq(sequence):
            return False
        self._update_jitter(timestamp, arrival)
        return True

    def _update_seq(self, seq: int) -> bool:
        udelta = (seq - self.max_seq) % _SEQ_MOD
        if self.probation:
            if seq == (self.max_seq + 1) % _SEQ_MOD:
                self.probation -= 1
                self.max_seq = seq
                if self.probation == 0:
                    self._init_seq(seq)
                    self.received += 1
                    return True
            else:
                self.probation = _MIN_SEQUENTIAL - 1
                self.max_seq = seq
            return False
        if udelta < _MAX_DROPOUT:
            if seq < self.max_seq:
                self.cycles += _SEQ_MOD
            self.max_seq = seq
        elif udelta <= _SEQ_MOD - _MAX_MISORDER:
            if seq == self.bad_seq:
                # Two sequential packets after a big jump: the source restarted (A.1).
                self._init_seq(seq)
                self._transit = None
            else:
                self.bad_seq = (seq + 1) % _SEQ_MOD
                return False
        # Otherwise a duplicate or a reordered packet: counted, max_seq kept.
        self.received += 1
        return True

    def _update_jitter(self, timestamp: int, arrival: float) -> None:
        # A.8: transit time in RTP units; its difference between packets feeds a 1/16 filter.
        transit = arrival * self.clock_rate - timestamp
        if self._transit is not None:
            delta = abs(transit - self._transit)
            # A timestamp wrap makes the difference jump by 2**32: fold it back.
            delta = min(delta, abs(delta - (1 << 32)))
            self._jitter += (delta - self._jitter) / 16.0
        self._transit = transit

    @property
    def extended_max(self) -> int:
        """The extended highest sequence number received (cycles + max_seq)."""
        return self.cycles + self.max_seq

    @property
    def expected(self) -> int:
        return self.extended_max - self.base_seq + 1 if self.received else 0

    @property
    def lost(self) -> int:
        """Cumulative packets lost, clamped to the 24-bit signed field (A.3)."""
        return max(-0x80_0000, min(0x7F_FFFF, self.expected - self.received))

    @property
    def jitter(self) -> int:
        """Interarrival jitter in RTP timestamp units (A.8)."""
        return int(self._jitter)

    def on_sender_report(self, report: SenderReport, arrival: float) -> None:
        """Remember the source's latest SR for LSR/DLSR (§6.4.1)."""
        self._last_sr = ntp_middle_32(report.ntp_timestamp)
        self._last_sr_arrival = arrival

    def report_block(self, now: float) -> ReportBlock:
        """The block describing this source since the previous call (A.3), at time ``now``."""
        expected = self.expected
        expected_interval = expected - self._expected_prior
        received_interval = self.received - self._received_prior
        self._expected_prior = expected
        self._received_prior = self.received
        lost_interval = expected_interval - received_interval
        fraction = 0
        if expected_interval > 0 and lost_interval > 0:
            fraction = min(255, (lost_interval << 8) // expected_interval)
        delay = 0
        if self._last_sr_arrival is not None:
            delay = int((now - self._last_sr_arrival) * 65536) & 0xFFFF_FFFF
        return ReportBlock(
            ssrc=self.ssrc,
            fraction_lost=fraction,
            cumulative_lost=self.lost,
            highest_sequence=self.extended_max & 0xFFFF_FFFF,
            jitter=min(self.jitter, 0xFFFF_FFFF),
            last_sr=self._last_sr,
            delay_since_last_sr=delay,
        )
