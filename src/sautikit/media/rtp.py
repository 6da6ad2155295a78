"""RTP packets: the fixed header, CSRC list, header extension and padding (RFC 3550 §5.1, §5.3.1).

This module is a pure codec: bytes in, :class:`RtpPacket` out, and back. It knows nothing of
sockets, clocks or codecs; :mod:`sautikit.media.session` puts it on the wire.

Layout (RFC 3550 §5.1)::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |V=2|P|X|  CC   |M|     PT      |       sequence number         |
    |                           timestamp                           |
    |           synchronization source (SSRC) identifier            |
    |            contributing source (CSRC) identifiers             |
    |                             ....                              |

With X set, a header extension follows the CSRC list: a 16-bit profile-defined value, a 16-bit
length in 32-bit words, then that many words (§5.3.1). With P set, the last octet of the
packet counts the padding octets at the end, itself included (§5.1).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = [
    "RTP_HEADER_SIZE",
    "RTP_VERSION",
    "RtpExtension",
    "RtpPacket",
    "RtpParseError",
    "pack_header",
    "unpack_plain_header",
]

RTP_VERSION = 2
RTP_HEADER_SIZE = 12

_FIXED_HEADER = struct.Struct("!BBHII")
_EXTENSION_HEADER = struct.Struct("!HH")
_MAX_CSRC = 15


class RtpParseError(ValueError):
    """Raised by :meth:`RtpPacket.parse` when the bytes are not a well-formed RTP packet."""


@dataclass(frozen=True, slots=True)
class RtpExtension:
    """A header extension (§5.3.1): the profile-defined 16 bits and a multiple of 4 octets."""

    profile: int
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class RtpPacket:
    """One RTP packet.

    ``padding`` is the number of padding octets carried after the payload (0 for none); the
    padding bit on the wire is set exactly when it is non-zero.
    """

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrc: tuple[int, ...] = ()
    extension: RtpExtension | None = None
    padding: int = 0

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        """Decode one datagram; raise :class:`RtpParseError` on anything malformed."""
        size = len(data)
        if size < RTP_HEADER_SIZE:
            raise RtpParseError(f"truncated RTP header: {size} bytes, need {RTP_HEADER_SIZE}")
        first, second, sequence, timestamp, ssrc = _FIXED_HEADER.unpack_from(data)
        version = first >> 6
        if version != RTP_VERSION:
            raise RtpParseError(f"RTP version {version}, expected {RTP_VERSION}")
        offset = RTP_HEADER_SIZE
        csrc_count = first & 0x0F
        if csrc_count:
            end = offset + 4 * csrc_count
            if end > size:
                raise RtpParseError(f"CSRC count {csrc_count} needs {end} bytes, packet has {size}")
            csrc = struct.unpack_from(f"!{csrc_count}I", data, offset)
            offset = end
        else:
            csrc = ()
        extension = None
        if first & 0x10:
            if offset + 4 > size:
                raise RtpParseError("header extension bit set but no extension header")
            profile, words = _EXTENSION_HEADER.unpack_from(data, offset)
            start = offset + 4
            offset = start + 4 * words
            if offset > size:
                raise RtpParseError(
                    f"extension of {words} words needs {offset} bytes, packet has {size}"
                )
            extension = RtpExtension(profile, bytes(data[start:offset]))
        end = size
        padding = 0
        if first & 0x20:
            if size == offset:
                raise RtpParseError("padding bit set but no octets after the header")
            padding = data[-1]
            if padding == 0 or offset + padding > size:
                raise RtpParseError(
                    f"padding count {padding} invalid for {size - offset} octets after the header"
                )
            end = size - padding
        return cls(
            payload_type=second & 0x7F,
            sequence=sequence,
            timestamp=timestamp,
            ssrc=ssrc,
            payload=bytes(data[offset:end]),
            marker=bool(second & 0x80),
            csrc=csrc,
            extension=extension,
            padding=padding,
        )

    def encode(self) -> bytes:
        """Serialise to wire bytes; raise :class:`ValueError` if a field is out of range."""
        if len(self.csrc) > _MAX_CSRC:
            raise ValueError(f"at most {_MAX_CSRC} CSRCs fit in an RTP header")
        if not 0 <= self.payload_type <= 0x7F:
            raise ValueError(f"payload type {self.payload_type} is not 0..127")
        if not 0 <= self.padding <= 0xFF:
            raise ValueError(f"padding {self.padding} is not 0..255 octets")
        first = (
            (RTP_VERSION << 6)
            | (0x20 if self.padding else 0)
            | (0x10 if self.extension is not None else 0)
            | len(self.csrc)
        )
        second = (0x80 if self.marker else 0) | self.payload_type
        try:
            parts = [_FIXED_HEADER.pack(first, second, self.sequence, self.timestamp, self.ssrc)]
            if self.csrc:
                parts.append(struct.pack(f"!{len(self.csrc)}I", *self.csrc))
            if self.extension is not None:
                data = self.extension.data
                if len(data) % 4:
                    raise ValueError("RTP header extension data must be a multiple of 4 octets")
                parts.append(_EXTENSION_HEADER.pack(self.extension.profile, len(data) // 4))
                parts.append(data)
        except struct.error as error:
            raise ValueError(f"RTP header field out of range: {error}") from error
        parts.append(self.payload)
        if self.padding:
            parts.append(bytes(self.padding - 1) + bytes((self.padding,)))
        return b"".join(parts)


def pack_header(
    buffer: bytearray,
    payload_type: int,
    sequence: int,
    timestamp: int,
    ssrc: int,
    marker: bool = False,
) -> None:
    """Write a plain fixed header (no CSRC, extension or padding) over ``buffer[:12]``.

    The send path's form of :meth:`RtpPacket.encode`: one precompiled struct packed into a
    buffer the session keeps, with no packet object made for each of the 50 packets a
    second of every leg. Raises :class:`ValueError` if a field is out of range.
    """
    if not 0 <= payload_type <= 0x7F:
        raise ValueError(f"payload type {payload_type} is not 0..127")
    try:
        _FIXED_HEADER.pack_into(
            buffer,
            0,
            RTP_VERSION << 6,
            (0x80 if marker else 0) | payload_type,
            sequence,
            timestamp,
            ssrc,
        )
    except struct.error as error:
        raise ValueError(f"RTP header field out of range: {error}") from error


def unpack_plain_header(data: bytes) -> tuple[int, int, int, int, bool] | None:
    """The receive path's form of :meth:`RtpPacket.parse`, for the usual packet.

    For a plain packet (version 2 with no padding, extension or CSRCs: what nearly every
    phone sends) returns ``(payload_type, sequence, timestamp, ssrc, marker)``, the payload
    being ``data[RTP_HEADER_SIZE:]``; for anything else None, and :meth:`RtpPacket.parse`
    decides. No packet object is made.
    """
    if len(data) < RTP_HEADER_SIZE or data[0] != RTP_VERSION << 6:
        return None
    _, second, sequence, timestamp, ssrc = _FIXED_HEADER.unpack_from(data)
    return second & 0x7F, sequence, timestamp, ssrc, second >= 0x80
