"""One call leg's RTP/RTCP session on UDP sockets (RFC 3550, RFC 3551, RFC 4733).

:class:`RtpSession` glues the pure codecs of this package onto asyncio datagram endpoints:

* Receive: every datagram is parsed (:mod:`~sautikit.media.rtp`); garbage, unknown payload
  types and packets from a stranger are dropped and counted, never raised. Telephone-events
  go to a :class:`~sautikit.media.dtmf.DtmfReceiver` and come out as digits; audio goes into
  a :class:`~sautikit.media.jitter.JitterBuffer`; every packet of the remote source feeds its
  :class:`~sautikit.media.rtcp.ReceptionStatistics`.
* The media clock drives the rest, once per 20 ms tick: :meth:`RtpSession.read_frame`
  takes one decoded frame out (concealed when lost) and :meth:`RtpSession.send_frame`
  encodes and sends one. Frames are PCM at the codec's rate (8 kHz for G.711, 16 kHz for
  G.722 and Opus; :mod:`sautikit.media.codecs`), and the session keeps its own encoder and
  decoder state for the stream. The session keeps no audio timers of its own; RTCP is sent from
  those same calls when its interval (about 5 s, randomised per RFC 3550 §6.2) has passed.
* Symmetric RTP (RFC 4961, and the comedia practice for NAT): packets from the address the
  SDP signalled latch at once. Packets from any other address latch only once they persist
  (``nat_latch_after`` valid packets in a row with nothing from the signalled address in
  between): a peer behind a NAT, whose packets never come from its SDP address. A stray
  stream, such as leftover packets to a reused port, cannot take over a new leg, and while
  the signalled address is sending no other address can. Without a signalled address the
  first valid packet latches. Once latched onto another address, the same stream (SSRC)
  follows a NAT rebinding after ``latch_after`` packets in a row; a different SSRC must
  persist far longer, so stray or hostile datagrams cannot steal the stream.
* RTCP runs on its own socket, by default the RTP port + 1 (RFC 3550 §11): an SR when we
  sent media since the last report, otherwise an RR, always with an SDES CNAME (§6.1), and
  a BYE on :meth:`RtpSession.close`.

Port allocation is not done here: pass a host and port (the RTP port allocator in
:mod:`sautikit.media.ports` finds a free pair), or already-bound sockets.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import socket
import struct
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from sautikit.media.codecs import PCMU, Decoder, Encoder, PayloadFormat, format_by_name
from sautikit.media.dtmf import DtmfPacket, DtmfParseError, DtmfReceiver, DtmfSender
from sautikit.media.jitter import JitterBuffer, conceal
from sautikit.media.rtcp import (
    Bye,
    ReceiverReport,
    ReceptionStatistics,
    ReportBlock,
    RtcpPacket,
    RtcpParseError,
    SenderReport,
    SourceDescription,
    encode_compound,
    ntp_middle_32,
    ntp_timestamp,
    parse_compound,
)
from sautikit.media.rtp import (
    RTP_HEADER_SIZE,
    RTP_VERSION,
    RtpPacket,
    RtpParseError,
    pack_header,
    unpack_plain_header,
)
from sautikit.media.srtp import SrtpContext, SrtpError

__all__ = ["RelayTap", "RtpSession", "SessionStats"]

log = logging.getLogger(__name__)

Address = tuple[str, int]

# How many times the usual count a stranger with a different SSRC must send, uninterrupted
# by the current source, before the latch moves to it (25 × 2 packets: about a second).
_NEW_SOURCE_LATCH_FACTOR = 25
# Remote SSRCs whose statistics are kept (and reported on) at once.
_MAX_SOURCES = 4
# A relayed stream whose sequence moves further than this (forward, or back) has restarted
# (RFC 3550 A.1's MAX_DROPOUT and MAX_MISORDER): the rewrite re-anchors, with the marker bit.
_RELAY_MAX_DROPOUT: Final = 3000
_RELAY_MAX_MISORDER: Final = 100
_RELAY_HEADER = struct.Struct("!BBHII")
_HEADER_TIMESTAMP = struct.Struct("!I")

RelayTap = Callable[[int, int, bytes, float], None]
"""Called with ``(ssrc, timestamp, payload, arrival)`` for each audio packet relayed."""


@dataclass(slots=True)
class SessionStats:
    """What the session saw and did; the jitter buffer and RTCP keep their own figures."""

    packets_sent: int = 0
    octets_sent: int = 0
    packets_received: int = 0
    garbage: int = 0
    unknown_payload_type: int = 0
    foreign: int = 0
    latches: int = 0
    dtmf_digits: int = 0
    packets_relayed: int = 0
    """Packets sent on this leg's stream as relayed from the bridged leg (in packets_sent)."""
    rtcp_sent: int = 0
    rtcp_received: int = 0
    rtcp_garbage: int = 0
    socket_errors: int = 0
    srtp_refused: int = 0
    """SRTP/SRTCP packets that failed authentication or replayed (dropped)."""


def _bound_socket(host: str, port: int) -> socket.socket:
    """A non-blocking UDP socket bound to ``(host, port)``, IPv6 for an IPv6 literal."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.bind((host, port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class _Endpoint(asyncio.DatagramProtocol):
    """Forwards datagrams to the session; one for RTP, one for RTCP."""

    def __init__(self, session: RtpSession, rtcp: bool) -> None:
        self.session = session
        self.rtcp = rtcp

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if self.rtcp:
            self.session._on_rtcp(data, addr)
        else:
            self.session._on_rtp(data, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and the like: the peer is gone or not up yet. Not fatal.
        self.session.stats.socket_errors += 1


class RtpSession:
    """An RTP session for one audio stream plus telephone-events. Build it with :meth:`open`.

    ``codec`` is the negotiated audio codec (a :class:`PayloadFormat` or its SDP name) and
    ``payload_type`` its number if not the static one; ``dtmf_payload_type`` is the
    negotiated telephone-event number (None if DTMF was not negotiated). ``remote`` and
    ``remote_rtcp`` come from the peer's SDP; with ``symmetric`` the session also latches
    onto where the peer really sends from: at once from the signalled address, after
    ``nat_latch_after`` valid packets in a row from another address while the signalled
    one is silent, and after ``latch_after`` for the same stream moving on from an address
    it was latched to (a NAT rebinding).
    """

    def __init__(
        self,
        *,
        codec: PayloadFormat | str = PCMU,
        payload_type: int | None = None,
        dtmf_payload_type: int | None = 101,
        remote: Address | None = None,
        remote_rtcp: Address | None = None,
        symmetric: bool = True,
        latch_after: int = 2,
        nat_latch_after: int = 10,
        cname: str | None = None,
        ssrc: int | None = None,
        rtcp_interval: float = 5.0,
        jitter_buffer: JitterBuffer | None = None,
        dtmf_volume: int = 10,
    ) -> None:
        self._dtmf_volume = dtmf_volume
        self._codec = PCMU
        self._encoder: Encoder = PCMU.new_encoder()
        self._decoder: Decoder = PCMU.new_decoder()
        self._frame_samples = PCMU.frame_samples
        self._frame_duration = PCMU.rtp_duration(PCMU.frame_samples)
        self._last_frame: npt.NDArray[np.int16] | None = None
        # Decoded samples of a packet longer than a frame, not yet played.
        self._pending: npt.NDArray[np.int16] = np.zeros(0, np.int16)
        self._dtmf_sender = DtmfSender(volume=dtmf_volume, clock_rate=PCMU.clock_rate)
        self.codec = format_by_name(codec) if isinstance(codec, str) else codec
        self.payload_type = self.codec.payload_type if payload_type is None else payload_type
        self.dtmf_payload_type = dtmf_payload_type
        self.symmetric = symmetric
        self.latch_after = latch_after
        self.nat_latch_after = nat_latch_after
        self.ssrc = secrets.randbits(32) if ssrc is None else ssrc
        self.cname = cname or f"sautikit-{self.ssrc:08x}@{socket.gethostname()}"
        self.rtcp_interval = rtcp_interval
        self.jitter = JitterBuffer() if jitter_buffer is None else jitter_buffer
        self.stats = SessionStats()
        self.digits: asyncio.Queue[str] = asyncio.Queue()
        #: Reception statistics per remote SSRC, most recently heard last. A peer may send
        #: from several at once (SIPp replays its audio and DTMF captures with different
        #: SSRCs), so each keeps its own.
        self.sources: OrderedDict[int, ReceptionStatistics] = OrderedDict()
        self._last_source: ReceptionStatistics | None = None
        #: The peer's latest report block about our stream, from its SR or RR.
        self.remote_report: ReportBlock | None = None
        self.bye_received = False
        #: The round trip to the peer in seconds, from its report blocks (None: unknown).
        self.round_trip: float | None = None
        # Statistics of sources no longer kept, and the jitter sampled at each report,
        # for the call's quality figures.
        self._retired_lost = 0
        self._jitter_sampled = 0.0
        self._jitter_samples = 0
        self.remote: Address | None = None
        self.remote_rtcp: Address | None = None
        self._remote_rtcp_explicit = False
        # The RTP address the SDP named; ``remote`` moves away from it only by latching.
        self._signalled: Address | None = None
        self._latched = False
        self._candidate: Address | None = None
        self._candidate_count = 0
        self.set_remote(remote, remote_rtcp)
        self._sequence = secrets.randbits(16)
        self._timestamp = secrets.randbits(32)
        self._first_packet = True
        self._sent_since_report = False
        self._dtmf_receiver = DtmfReceiver()
        self._dtmf_queue: deque[DtmfPacket] = deque()
        self._dtmf_timestamp = 0
        self._losses = 0
        self._rtp_transport: asyncio.DatagramTransport | None = None
        # Media goes out on the socket itself, the packet packed over one buffer: the send
        # path runs for every leg on every tick and the transport adds nothing there.
        self._rtp_socket: socket.socket | None = None
        self._wire = bytearray(RTP_HEADER_SIZE)
        self._queued = False
        self._rtcp_transport: asyncio.DatagramTransport | None = None
        #: SRTP keys of this stream (SDES), None for plain RTP: see :meth:`set_srtp`.
        self.srtp: SrtpContext | None = None
        self._next_rtcp = time.monotonic() + self._rtcp_delay()
        self._closed = False
        self.last_received: float | None = None
        """When (time.monotonic) the last valid packet of the peer arrived; None before."""
        # The relay path (see :meth:`relay_to`). Receiving side: where packets go at once.
        self._relay_target: RtpSession | None = None
        self._relay_only = False
        self._forward_dtmf = True
        self._tap: RelayTap | None = None
        self._on_digit: Callable[[str], None] | None = None
        # Sending side: whether relayed packets go out on this stream, and the rewrite.
        self._relay_out = False
        self._handing_over = False
        self._relay_ssrc: int | None = None
        self._relay_in_sequence = 0
        self._sequence_offset = 0
        self._timestamp_offset = 0
        self._relay_wire = bytearray(RTP_HEADER_SIZE)
        # The last audio packet sent (relayed or not), for re-anchoring timestamps on time.
        self._last_sent_timestamp: int | None = None
        self._last_sent_time = 0.0
        self._queued_payload_type = 0

    @property
    def codec(self) -> PayloadFormat:
        """The stream's payload format; :meth:`read_frame` and :meth:`send_frame` carry PCM
        at its ``sample_rate``."""
        return self._codec

    @codec.setter
    def codec(self, codec: PayloadFormat) -> None:
        # The same codec again (a re-INVITE) keeps the coders' state; another starts afresh.
        if codec is self._codec:
            return
        self._codec = codec
        self._encoder = codec.new_encoder()
        self._decoder = codec.new_decoder()
        self._frame_samples = codec.frame_samples
        self._frame_duration = codec.rtp_duration(codec.frame_samples)
        self._last_frame = None
        self._pending = np.zeros(0, np.int16)
        # RFC 4733 §2.1: events keep time on the audio codec's RTP clock.
        self._dtmf_sender = DtmfSender(volume=self._dtmf_volume, clock_rate=codec.clock_rate)

    @classmethod
    async def open(
        cls,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        sock: socket.socket | None = None,
        rtcp_port: int | None = None,
        rtcp_sock: socket.socket | None = None,
        rtcp: bool = True,
        **options: Any,
    ) -> RtpSession:
        """Bind the session's sockets and return it, ready to receive.

        RTP binds ``(host, port)`` unless ``sock`` is given already bound. RTCP binds
        ``rtcp_sock``, else ``(host, rtcp_port)``, else the RTP port + 1; ``rtcp=False``
        runs without RTCP. ``options`` are the constructor's keyword arguments.
        """
        session = cls(**options)
        loop = asyncio.get_running_loop()
        owned = sock is None
        if sock is None:
            sock = _bound_socket(host, port)
        try:
            rtp_transport, _ = await loop.create_datagram_endpoint(
                lambda: _Endpoint(session, rtcp=False), sock=sock
            )
        except BaseException:
            if owned:  # a socket the caller gave stays the caller's to close
                sock.close()
            raise
        session._rtp_transport = rtp_transport
        session._rtp_socket = sock
        if rtcp:
            try:
                if rtcp_sock is not None:
                    rtcp_transport, _ = await loop.create_datagram_endpoint(
                        lambda: _Endpoint(session, rtcp=True), sock=rtcp_sock
                    )
                else:
                    local_host, local_port = session.local_address
                    port_for_rtcp = local_port + 1 if rtcp_port is None else rtcp_port
                    rtcp_transport, _ = await loop.create_datagram_endpoint(
                        lambda: _Endpoint(session, rtcp=True),
                        local_addr=(local_host, port_for_rtcp),
                    )
            except BaseException:
                rtp_transport.close()
                raise
            session._rtcp_transport = rtcp_transport
        return session

    # -- addresses -------------------------------------------------------------------------

    @property
    def local_address(self) -> Address:
        """The (host, port) the RTP socket is bound to."""
        assert self._rtp_transport is not None, "session is not open"
        host, port = self._rtp_transport.get_extra_info("sockname")[:2]
        return host, port

    @property
    def rtcp_local_address(self) -> Address | None:
        """The (host, port) the RTCP socket is bound to, None without RTCP."""
        if self._rtcp_transport is None:
            return None
        host, port = self._rtcp_transport.get_extra_info("sockname")[:2]
        return host, port

    def set_remote(self, remote: Address | None, remote_rtcp: Address | None = None) -> None:
        """Where to send, as the peer's SDP says (RTCP defaults to the RTP port + 1).

        The same address again (a re-INVITE that moves nothing) keeps a latch already made,
        so a NATed peer is not cut off while it latches anew.
        """
        if remote is not None and remote == self._signalled and self._latched:
            if remote_rtcp is not None:
                self._remote_rtcp_explicit = True
                self.remote_rtcp = remote_rtcp
            return
        self._signalled = remote
        self.remote = remote
        self._remote_rtcp_explicit = remote_rtcp is not None
        if remote_rtcp is not None:
            self.remote_rtcp = remote_rtcp
        elif remote is not None:
            self.remote_rtcp = (remote[0], remote[1] + 1)
        else:
            self.remote_rtcp = None
        self._latched = False
        self._candidate = None

    def _accept_source(self, addr: Address, ssrc: int) -> bool:
        """Symmetric RTP: whether a valid packet from ``addr`` is our peer's (see the module).

        Counts a stranger's packets in a row; any packet from the signalled or the latched
        address interrupts the count, so a stranger never takes over from a peer that sends.
        """
        if not self.symmetric:
            return True
        if addr == self.remote and self._latched:
            self._candidate = None
            return True
        if addr == self._signalled or (self._signalled is None and not self._latched):
            self._latch(addr)
            return True
        if addr != self._candidate:
            self._candidate = addr
            self._candidate_count = 0
        self._candidate_count += 1
        if not self._latched:
            needed = self.nat_latch_after
        else:
            # Away from the signalled address the peer's own stream may rebind again soon;
            # from the signalled address only a peer that stopped sending there moves.
            moving_on = self.remote != self._signalled
            needed = self.latch_after if moving_on else self.nat_latch_after
            if ssrc not in self.sources:
                needed *= _NEW_SOURCE_LATCH_FACTOR
        if self._candidate_count >= needed:
            self._latch(addr)
            return True
        self.stats.foreign += 1
        return False

    def _latch(self, addr: Address) -> None:
        if addr != self.remote:
            log.debug("RTP session %08x latched onto %s:%s", self.ssrc, *addr)
        self.remote = addr
        if not self._remote_rtcp_explicit:
            self.remote_rtcp = (addr[0], addr[1] + 1)
        self._latched = True
        self._candidate = None
        self.stats.latches += 1

    # -- receive ---------------------------------------------------------------------------

    def set_srtp(self, context: SrtpContext | None) -> None:
        """Protect and unprotect this stream with ``context`` from now on (None: plain);
        the same keys again (a re-INVITE) keep the running context and its counters."""
        if context is not None and self.srtp is not None and context.keys == self.srtp.keys:
            return
        self.srtp = context

    def _on_rtp(self, data: bytes, addr: Address) -> None:
        if self.srtp is not None:
            try:
                data = self.srtp.unprotect_rtp(data)
            except SrtpError:
                self.stats.srtp_refused += 1
                return
        header = unpack_plain_header(data)
        if header is not None:
            payload_type, sequence, timestamp, ssrc, marker = header
            payload = data[RTP_HEADER_SIZE:]
        else:
            try:
                packet = RtpPacket.parse(data)
            except RtpParseError:
                self.stats.garbage += 1
                return
            payload_type, sequence, timestamp = (
                packet.payload_type,
                packet.sequence,
                packet.timestamp,
            )
            ssrc, marker, payload = packet.ssrc, packet.marker, packet.payload
        is_dtmf = payload_type == self.dtmf_payload_type
        if payload_type != self.payload_type and not is_dtmf:
            self.stats.unknown_payload_type += 1
            return
        # The usual packet: from the latched peer (an IPv4 address is a pair already).
        if self._latched and addr == self.remote:
            self._candidate = None
        elif not self._accept_source(addr[:2], ssrc):
            return
        self.stats.packets_received += 1
        now = time.monotonic()
        self.last_received = now
        source = self._last_source
        if source is None or source.ssrc != ssrc:
            source = self._last_source = self._source(ssrc)
        source.update(sequence, timestamp, now)
        target = self._relay_target
        if target is not None:
            if target._relay_out and (self._forward_dtmf or not is_dtmf):
                target._relay(is_dtmf, sequence, timestamp, ssrc, marker, payload, now)
            if now >= self._next_rtcp:
                self._maybe_send_rtcp()
            if self._relay_only and not is_dtmf:
                tap = self._tap
                if tap is not None:
                    tap(ssrc, timestamp, payload, now)
                return
        if not is_dtmf:
            self.jitter.push(sequence, ssrc, payload)
            return
        try:
            digit = self._dtmf_receiver.feed(payload, timestamp, marker)
        except DtmfParseError:
            self.stats.garbage += 1
            return
        if digit is not None:
            self.stats.dtmf_digits += 1
            on_digit = self._on_digit
            if on_digit is not None:
                on_digit(digit)
            else:
                self.digits.put_nowait(digit)

    def _source(self, ssrc: int) -> ReceptionStatistics:
        # Most recently heard last; a source heard again moves there only when the stream
        # changes source, not on every packet.
        source = self.sources.get(ssrc)
        if source is None:
            source = self.sources[ssrc] = ReceptionStatistics(ssrc, self.codec.clock_rate)
            if len(self.sources) > _MAX_SOURCES:
                _, retired = self.sources.popitem(last=False)
                self._retired_lost += max(0, retired.lost)
        else:
            self.sources.move_to_end(ssrc)
        return source

    def read_frame(self) -> npt.NDArray[np.int16]:
        """The next 20 ms of received audio at the codec's rate (160 samples for G.711, 320
        for G.722 and Opus), concealed when missing.

        Meant for the media clock, once per tick. Packets of other lengths (SIPp's sample
        capture is 30 ms a packet) are cut into 20 ms frames, so their audio is neither
        lost nor stretched. A payload the decoder refuses counts as lost.
        """
        self._maybe_send_rtcp()
        size = self._frame_samples
        if not len(self._pending):
            samples = self._next_decoded()
            if samples is None:
                self._losses += 1
                return conceal(self._last_frame, self._losses, size)
            if len(samples) == size:
                return self._heard(samples)
            self._pending = samples
        while len(self._pending) < size:
            samples = self._next_decoded()
            if samples is None:
                # Short of a whole frame: play the part there is, then silence.
                frame = np.zeros(size, np.int16)
                frame[: len(self._pending)] = self._pending
                self._pending = self._pending[:0]
                return self._heard(frame)
            self._pending = np.concatenate((self._pending, samples))
        frame, self._pending = self._pending[:size], self._pending[size:]
        return self._heard(frame)

    def _next_decoded(self) -> npt.NDArray[np.int16] | None:
        """The next buffered packet's samples; None when none is due or it is undecodable."""
        payload = self.jitter.pop()
        if payload is None:
            return None
        try:
            return self._decoder.decode(payload)
        except ValueError:
            self.stats.garbage += 1
            return None

    def _heard(self, frame: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
        self._last_frame = frame
        self._losses = 0
        return frame

    async def next_digit(self) -> str:
        """Wait for the next DTMF digit received."""
        return await self.digits.get()

    # -- send ------------------------------------------------------------------------------

    def send_frame(self, samples: npt.NDArray[np.int16]) -> bool:
        """Encode and send one frame (or, while a DTMF event is on, its next packet instead).

        The RTP timestamp advances by the frame's length whether or not anything could be
        sent; returns True if a packet went out. :meth:`queue_frame` then :meth:`flush`.
        """
        self.queue_frame(samples)
        return self.flush()

    def queue_frame(self, samples: npt.NDArray[np.int16]) -> None:
        """Encode one frame (or the next DTMF packet) now; :meth:`flush` sends it.

        The media engine queues every leg's frame on one tick and flushes them all at the
        start of the next, so packets leave right at each tick, 20 ms apart however long
        the tick's work took. A packet queued and not flushed is replaced by the next one
        (its sequence number stays spent: the far end counts it lost).
        """
        self._maybe_send_rtcp()
        if self._dtmf_queue:
            dtmf = self._dtmf_queue.popleft()
            if dtmf.marker:
                self._dtmf_timestamp = self._timestamp
            assert self.dtmf_payload_type is not None
            self._pack(self.dtmf_payload_type, self._dtmf_timestamp, dtmf.payload, dtmf.marker)
        else:
            payload = self._encoder.encode(samples)
            if self._pack(self.payload_type, self._timestamp, payload, self._first_packet):
                self._first_packet = False
        self._timestamp = (self._timestamp + self._codec.rtp_duration(len(samples))) & 0xFFFF_FFFF

    def flush(self) -> bool:
        """Send the packet :meth:`queue_frame` made, if any; True if a packet went out."""
        if not self._queued:
            return False
        self._queued = False
        remote = self.remote
        if remote is None or self._rtp_socket is None or self._closed:
            return False
        wire = self._wire
        now = time.monotonic()
        if self._relay_out:
            # The first clocked frame after the relay: it takes over the stream now.
            self._relay_out = False
            self._handing_over = False
            self._resume_clocked(now)
            pack_header(
                wire, self._queued_payload_type, self._sequence, self._timestamp, self.ssrc, True
            )
            self._sequence = (self._sequence + 1) & 0xFFFF
            self._timestamp = (self._timestamp + self._frame_duration) & 0xFFFF_FFFF
            self._first_packet = False
        if self._queued_payload_type == self.payload_type:
            self._last_sent_timestamp = _HEADER_TIMESTAMP.unpack_from(wire, 4)[0]
            self._last_sent_time = now
        try:
            if self.srtp is not None:
                self._rtp_socket.sendto(self.srtp.protect_rtp(bytes(wire)), remote)
            else:
                self._rtp_socket.sendto(wire, remote)
        except (OSError, SrtpError):
            # A full socket buffer or an unreachable route: late media is worth nothing,
            # so the packet is dropped rather than queued, and counted.
            self.stats.socket_errors += 1
            return False
        self.stats.packets_sent += 1
        self.stats.octets_sent += len(wire) - RTP_HEADER_SIZE
        self._sent_since_report = True
        return True

    def skip(self, ticks: int) -> None:
        """Account for media-clock ticks that sent nothing (the clock skipped them in a stall).

        The RTP timestamp moves on as time did, so the far end's playout stays in step. A
        packet queued and not flushed is dropped: its time has passed too.
        """
        self._queued = False
        self._timestamp = (self._timestamp + ticks * self._frame_duration) & 0xFFFF_FFFF

    @property
    def sending_dtmf(self) -> bool:
        """Whether RFC 4733 events queued by :meth:`send_dtmf` are still to go out."""
        return bool(self._dtmf_queue)

    def send_dtmf(self, digit: str, duration_ms: int = 100) -> None:
        """Queue one digit as RFC 4733 events; they replace audio on the following ticks.

        Raises ValueError for a bad digit or duration, or when DTMF was not negotiated.
        """
        if self.dtmf_payload_type is None:
            raise ValueError("telephone-event was not negotiated for this session")
        self._dtmf_queue.extend(self._dtmf_sender.packets(digit, duration_ms))

    def _pack(self, payload_type: int, timestamp: int, payload: bytes, marker: bool) -> bool:
        if self.remote is None or self._rtp_socket is None or self._closed:
            return False
        if self._relay_out and not self._handing_over:
            self._queued = False  # the relay has the stream
            return False
        wire = self._wire
        self._queued_payload_type = payload_type
        self._queued = True
        wire[RTP_HEADER_SIZE:] = payload
        if self._relay_out:
            # Handing over from the relay: numbered when it goes out (see :meth:`flush`).
            return True
        pack_header(wire, payload_type, self._sequence, timestamp, self.ssrc, marker)
        # The number is spent even if the packet is never sent: the far end sees a loss.
        self._sequence = (self._sequence + 1) & 0xFFFF
        return True

    # -- relay -----------------------------------------------------------------------------

    def relay_to(
        self,
        target: RtpSession | None,
        *,
        tap: RelayTap | None = None,
        on_digit: Callable[[str], None] | None = None,
        forward_dtmf: bool = True,
    ) -> None:
        """Forward every valid packet of the peer to ``target`` as it arrives (None: stop).

        The jitter buffer is bypassed: nothing is decoded, the media clock plays no part.
        ``tap`` sees each audio packet (a recording's own reorder buffer takes it from
        there) and ``on_digit`` each DTMF digit detected, at once, since nobody reads
        :attr:`digits` on the clock meanwhile. Whether ``target`` sends what comes is its
        own state (:meth:`begin_relay_out`). Without ``forward_dtmf``, RFC 4733 events
        are detected but not forwarded.
        """
        self._relay_target = target
        self._forward_dtmf = forward_dtmf
        self._relay_only = target is not None
        self._tap = tap
        self._on_digit = on_digit
        if target is not None:
            self.jitter.reset()
            self._pending = self._pending[:0]
            self._last_frame = None
            self._losses = 0

    def hand_over_to_clock(self) -> None:
        """Receiving side: buffer packets for the clock again, still forwarding them until
        the target's first clocked packet replaces the relayed stream (make before break)."""
        self._relay_only = False
        self._tap = None
        self._on_digit = None

    @property
    def relaying_out(self) -> bool:
        """Whether packets relayed from another session go out on this stream."""
        return self._relay_out

    def begin_relay_out(self) -> None:
        """Sending side: send what a relaying session forwards, in place of clocked frames.

        A frame queued and not yet sent is dropped and its sequence number given back, so
        the stream stays gapless; the first relayed packet re-anchors the rewrite.
        """
        if self._queued:
            if not self._relay_out:  # a handover's frame took no number yet
                self._sequence = (self._sequence - 1) & 0xFFFF
            self._queued = False
        self._relay_out = True
        self._handing_over = False
        self._relay_ssrc = None

    def end_relay_out(self, *, hand_over: bool) -> None:
        """Sending side: back to the clock. With ``hand_over``, relayed packets still go out
        until the first clocked frame does (see :meth:`flush`); without, at once."""
        if not self._relay_out:
            return
        if hand_over:
            self._handing_over = True
        else:
            self._relay_out = False
            self._handing_over = False
            self._resume_clocked(time.monotonic())

    def _resume_clocked(self, now: float) -> None:
        # The clocked stream continues the relayed one: the next sequence number, the
        # timestamp of now, and the marker bit for the jump in content.
        self._timestamp = self._anchor_timestamp(now)
        self._first_packet = True

    def _anchor_timestamp(self, now: float) -> int:
        """The RTP timestamp of ``now`` on this stream: the last audio sent plus the time
        since, so a stream that changes source keeps time with the clock of the listener."""
        last = self._last_sent_timestamp
        if last is None:
            return self._timestamp
        elapsed = round((now - self._last_sent_time) * self.codec.clock_rate)
        return (last + max(0, elapsed)) & 0xFFFF_FFFF

    def _relay(
        self,
        is_dtmf: bool,
        sequence: int,
        timestamp: int,
        ssrc: int,
        marker: bool,
        payload: bytes,
        now: float,
    ) -> None:
        """Send one packet of the bridged leg on this stream, renumbered into it (RFC 3550
        §7: a translator rewriting SSRC, sequence and timestamp so this leg hears one
        continuous stream whoever speaks)."""
        payload_type = self.dtmf_payload_type if is_dtmf else self.payload_type
        remote = self.remote
        sock = self._rtp_socket
        if payload_type is None or remote is None or sock is None or self._closed:
            return
        delta = ((sequence - self._relay_in_sequence + 0x8000) & 0xFFFF) - 0x8000
        if ssrc != self._relay_ssrc or delta > _RELAY_MAX_DROPOUT or delta < -_RELAY_MAX_MISORDER:
            # A new source or a restart: carry on from our own numbering and from now.
            self._relay_ssrc = ssrc
            self._sequence_offset = (self._sequence - sequence) & 0xFFFF
            self._timestamp_offset = (self._anchor_timestamp(now) - timestamp) & 0xFFFF_FFFF
            self._relay_in_sequence = sequence
            delta = 1
            marker = marker or not is_dtmf
        out_sequence = (sequence + self._sequence_offset) & 0xFFFF
        out_timestamp = (timestamp + self._timestamp_offset) & 0xFFFF_FFFF
        wire = self._relay_wire
        _RELAY_HEADER.pack_into(
            wire,
            0,
            RTP_VERSION << 6,
            (0x80 if marker else 0) | payload_type,
            out_sequence,
            out_timestamp,
            self.ssrc,
        )
        wire[RTP_HEADER_SIZE:] = payload
        try:
            sock.sendto(self.srtp.protect_rtp(bytes(wire)) if self.srtp else wire, remote)
        except (OSError, SrtpError):
            self.stats.socket_errors += 1
            return
        stats = self.stats
        stats.packets_sent += 1
        stats.packets_relayed += 1
        stats.octets_sent += len(payload)
        self._sent_since_report = True
        if delta > 0:
            self._relay_in_sequence = sequence
            self._sequence = (out_sequence + 1) & 0xFFFF
            if not is_dtmf:
                # An event keeps its start timestamp: only audio says what time it is.
                self._last_sent_timestamp = out_timestamp
                self._last_sent_time = now
        if now >= self._next_rtcp:
            self._maybe_send_rtcp()

    # -- RTCP ------------------------------------------------------------------------------

    def _rtcp_delay(self) -> float:
        # §6.2: randomise the interval (0.5 to 1.5 times) so that sessions do not synchronise.
        return self.rtcp_interval * random.uniform(0.5, 1.5)

    def _maybe_send_rtcp(self) -> None:
        now = time.monotonic()
        if now >= self._next_rtcp:
            self._next_rtcp = now + self._rtcp_delay()
            self.send_rtcp_report()

    def reception_figures(self) -> tuple[int, int, float]:
        """Packets received from the peer, packets lost, and the mean interarrival jitter in
        seconds over the reports so far (the current estimate when none was sent yet)."""
        # Every valid packet counts, the first of each source too (RFC 3550's counts begin
        # after its probation).
        received, lost = self.stats.packets_received, self._retired_lost
        for source in self.sources.values():
            lost += max(0, source.lost)
        samples, total = self._jitter_samples, self._jitter_sampled
        if self.sources:
            latest = next(reversed(self.sources.values()))
            samples += 1
            total += latest.jitter / latest.clock_rate
        return received, lost, total / samples if samples else 0.0

    def _report_packets(self) -> list[RtcpPacket]:
        now = time.monotonic()
        if self.sources:
            latest = next(reversed(self.sources.values()))
            if latest.received:
                self._jitter_sampled += latest.jitter / latest.clock_rate
                self._jitter_samples += 1
        blocks = tuple(
            source.report_block(now) for source in self.sources.values() if source.received
        )
        report: RtcpPacket
        if self._sent_since_report:
            report = SenderReport(
                self.ssrc,
                ntp_timestamp(time.time()),
                self._anchor_timestamp(now) if self._relay_out else self._timestamp,
                self.stats.packets_sent & 0xFFFF_FFFF,
                self.stats.octets_sent & 0xFFFF_FFFF,
                blocks,
            )
        else:
            report = ReceiverReport(self.ssrc, blocks)
        self._sent_since_report = False
        return [report, SourceDescription.with_cname(self.ssrc, self.cname)]

    def send_rtcp_report(self) -> bool:
        """Send an SR or RR with SDES now; True if it went out."""
        return self._send_rtcp(self._report_packets())

    def _send_rtcp(self, packets: list[RtcpPacket]) -> bool:
        if self._rtcp_transport is None or self.remote_rtcp is None or self._closed:
            return False
        compound = encode_compound(packets)
        if self.srtp is not None:
            try:
                compound = self.srtp.protect_rtcp(compound)
            except SrtpError:
                return False
        self._rtcp_transport.sendto(compound, self.remote_rtcp)
        self.stats.rtcp_sent += 1
        return True

    def _on_rtcp(self, data: bytes, addr: Address) -> None:
        if self.srtp is not None:
            try:
                data = self.srtp.unprotect_rtcp(data)
            except SrtpError:
                self.stats.srtp_refused += 1
                return
        try:
            packets = parse_compound(data)
        except RtcpParseError:
            self.stats.rtcp_garbage += 1
            return
        self.stats.rtcp_received += 1
        first = packets[0]
        from_our_peer = not self.sources or (
            isinstance(first, SenderReport | ReceiverReport) and first.ssrc in self.sources
        )
        if self.symmetric and not self._remote_rtcp_explicit and from_our_peer:
            self.remote_rtcp = addr[:2]
        now = time.monotonic()
        for packet in packets:
            if isinstance(packet, SenderReport | ReceiverReport):
                source = self.sources.get(packet.ssrc)
                if isinstance(packet, SenderReport) and source is not None:
                    source.on_sender_report(packet, now)
                for block in packet.reports:
                    if block.ssrc == self.ssrc:
                        self.remote_report = block
                        self._measure_round_trip(block)
            elif isinstance(packet, Bye) and (
                not self.sources or any(ssrc in self.sources for ssrc in packet.ssrcs)
            ):
                self.bye_received = True

    def _measure_round_trip(self, block: ReportBlock) -> None:
        # §6.4.1: arrival − LSR − DLSR, in 1/65536 s of the NTP clock's middle 32 bits.
        if not block.last_sr:
            return
        arrival = ntp_middle_32(ntp_timestamp(time.time()))
        ticks = (arrival - block.last_sr - block.delay_since_last_sr) & 0xFFFF_FFFF
        if ticks < 10 * 65536:  # beyond 10 s it is a stale or forged block, not a route
            self.round_trip = ticks / 65536

    # -- life ------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Send an RTCP BYE and close both sockets; safe to call twice."""
        if self._closed:
            return
        self._send_rtcp([*self._report_packets(), Bye((self.ssrc,))])
        self._closed = True
        for transport in (self._rtp_transport, self._rtcp_transport):
            if transport is not None:
                transport.close()
