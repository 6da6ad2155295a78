"""DTMF as RTP telephone-events (RFC 4733), received and sent.

* :class:`TelephoneEvent` is the 4-octet payload of §2.3: event code, end bit, volume,
  duration (in RTP timestamp units).
* :class:`DtmfReceiver` turns the packet stream of a telephone-event payload type into digits,
  each once (§2.5.2). One event is one RTP timestamp (§2.5.1.2): the start packet (marker set), its
  retransmissions, the growing-duration updates and the usually threefold end packets
  (§2.5.1.4) all share it, so a digit is emitted on the first packet seen with a new
  timestamp and the rest are absorbed, even when reordered or when the start was lost.
  Two events never share a timestamp, but a capture replayed twice repeats its timestamps:
  a fresh start packet after the end of the same event counts again.
* :class:`DtmfSender` plans the packets for one digit (§2.5.1): one timestamp for the whole
  event, marker on the first, an update every packet interval with the duration so far, and
  the end packet sent three times. The caller (the RTP session) sends one per media tick.

Events 0 to 15 are the DTMF digits ``0-9 * # A-D`` (§3.2); other events are parsed but never
reported as digits. Of a packet packing several events (§2.5.1.5), only the first is read.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from dataclasses import dataclass

__all__ = [
    "DTMF_DIGITS",
    "DtmfPacket",
    "DtmfParseError",
    "DtmfReceiver",
    "DtmfSender",
    "TelephoneEvent",
]

#: Event codes 0..15 in order (RFC 4733 §3.2, table 7).
DTMF_DIGITS = "0123456789*#ABCD"

_PAYLOAD = struct.Struct("!BBH")
_MAX_DURATION = 0xFFFF


class DtmfParseError(ValueError):
    """Raised by :meth:`TelephoneEvent.parse` for a payload that is not a telephone-event."""


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    """The telephone-event payload (§2.3); ``volume`` is in -dBm0, 0..63."""

    event: int
    end: bool = False
    volume: int = 10
    duration: int = 0

    @classmethod
    def parse(cls, payload: bytes) -> TelephoneEvent:
        if len(payload) < _PAYLOAD.size:
            raise DtmfParseError(
                f"telephone-event payload of {len(payload)} bytes, need {_PAYLOAD.size}"
            )
        event, flags, duration = _PAYLOAD.unpack_from(payload)
        return cls(event, bool(flags & 0x80), flags & 0x3F, duration)

    def encode(self) -> bytes:
        if not 0 <= self.volume <= 0x3F:
            raise ValueError(f"volume {self.volume} is not 0..63")
        try:
            return _PAYLOAD.pack(self.event, (0x80 if self.end else 0) | self.volume, self.duration)
        except struct.error as error:
            raise ValueError(f"telephone-event field out of range: {error}") from error

    @property
    def digit(self) -> str | None:
        """The DTMF digit this event is, or None for a non-DTMF event."""
        return DTMF_DIGITS[self.event] if self.event < len(DTMF_DIGITS) else None


class DtmfReceiver:
    """Reports each digit of an incoming telephone-event stream exactly once."""

    # Events remembered by (timestamp, code), so stragglers of recent events are absorbed.
    _REMEMBERED = 16

    def __init__(self) -> None:
        # (timestamp, event code) -> whether an end packet of that event has been seen.
        self._events: OrderedDict[tuple[int, int], bool] = OrderedDict()

    def feed(self, payload: bytes, timestamp: int, marker: bool = False) -> str | None:
        """Account for one packet; return the digit if it begins a new event, else None.

        The timestamp tells events apart, which copes with lost or reordered start packets.
        One case needs the marker: a start packet (marker set, end bit clear) for an event
        whose end was already seen is the same event sent again, as a replayed capture does
        (it repeats timestamps), and counts as a new digit. Raises :class:`DtmfParseError`
        for a malformed payload.
        """
        event = TelephoneEvent.parse(payload)
        key = (timestamp, event.event)
        ended = self._events.get(key)
        if ended is None or (ended and marker and not event.end):
            self._events[key] = event.end
            self._events.move_to_end(key)
            if len(self._events) > self._REMEMBERED:
                self._events.popitem(last=False)
            return event.digit
        if event.end:
            self._events[key] = True
        return None


@dataclass(frozen=True, slots=True)
class DtmfPacket:
    """One packet of a planned event: payload plus whether it carries the RTP marker."""

    payload: bytes
    marker: bool


class DtmfSender:
    """Plans the telephone-event packets of one digit (RFC 4733 §2.5.1)."""

    def __init__(
        self,
        volume: int = 10,
        clock_rate: int = 8000,
        packet_interval_ms: int = 20,
        end_repeats: int = 3,
    ) -> None:
        self.volume = volume
        self.step = clock_rate * packet_interval_ms // 1000
        self.packet_interval_ms = packet_interval_ms
        self.end_repeats = end_repeats

    def packets(self, digit: str, duration_ms: int = 100) -> list[DtmfPacket]:
        """The packets for ``digit`` lasting ``duration_ms``, one per packet interval.

        Raises ValueError for a character that is not a DTMF digit or a duration that does
        not fit one event (1 ms to about 8 s at 8 kHz).
        """
        code = DTMF_DIGITS.find(digit.upper()) if len(digit) == 1 else -1
        if code < 0:
            raise ValueError(f"{digit!r} is not a DTMF digit (0-9 * # A-D)")
        intervals = max(1, round(duration_ms / self.packet_interval_ms))
        total = intervals * self.step
        if duration_ms <= 0 or total > _MAX_DURATION:
            raise ValueError(f"DTMF duration {duration_ms} ms does not fit one event")
        updates = [
            TelephoneEvent(code, False, self.volume, k * self.step).encode()
            for k in range(1, intervals)
        ]
        end = TelephoneEvent(code, True, self.volume, total).encode()
        payloads = updates + [end] * self.end_repeats
        return [DtmfPacket(payload, index == 0) for index, payload in enumerate(payloads)]
