"""SDP bodies and the offer/answer model for Sautikit's audio calls.

The codec half of a call's media setup, apart from any transport: text in, typed objects
out, and back again.

* :func:`parse_sdp` reads a session description (RFC 4566 §5) into
  :class:`SessionDescription` / :class:`MediaDescription`; :meth:`SessionDescription.encode`
  writes it back in the RFC 4566 §5 line order. Lines and attributes Sautikit does not
  interpret are kept, so a parse/encode round trip loses nothing. Malformed input raises
  :class:`SdpParseError` (and nothing else) naming the offending line.
* :func:`build_offer`, :func:`negotiate_answer` and :func:`parse_answer` implement RFC 3264:
  the answerer picks the first offered codec it supports, so the offerer's order of
  preference decides (§6.1), answers with that one codec (so both directions use it),
  mirrors the offerer's telephone-event payload type at that codec's clock rate
  (RFC 4733 §7.1.1), answers the direction attributes per §6.1,
  treats the RFC 2543 ``c=0.0.0.0`` form as hold (§8.4) and rejects streams it cannot take
  by answering port 0 while keeping the m-line count (§6). An offer with no usable audio
  raises :class:`NoCommonCodec`, which the caller answers with 488.
* :class:`SdpSession` owns one dialog's ``o=`` line: its version increments exactly when
  the description changes (RFC 3264 §8), which is what re-INVITEs for hold, unhold and codec
  change need.

Sautikit speaks PCMU (static 0), PCMA (static 8), G.722 (static 9, ``G722/8000``: 16 kHz
audio on an 8 kHz RTP clock, RFC 3551 §4.5.2), Opus (``opus/48000/2``, dynamic 111, with
``useinbandfec=1``, RFC 7587) and telephone-event at 8 and 48 kHz (dynamic, ``fmtp 0-16``),
with a 20 ms packet time. :data:`DEFAULT_CODECS` (G.711) is what Sautikit offers carriers;
:data:`WIDEBAND_CODECS` puts Opus and G.722 first for devices and answers anyone with them.

SRTP keys travel in the SDP (SDES, RFC 4568): :class:`CryptoAttribute` parses and writes
``a=crypto`` lines. An RTP/SAVP offer, or an RTP/AVP one carrying ``a=crypto``, is answered
with one crypto line of the same tag and suite and a fresh key of ours; the agreed keys land
in :attr:`NegotiatedMedia.srtp` (for :mod:`sautikit.media.srtp`). With ``srtp="required"``
a plain offer is refused (:class:`SrtpRequired`, a 488) and our offers are RTP/SAVP.
Suites: ``AES_CM_128_HMAC_SHA1_80`` and ``AES_CM_128_HMAC_SHA1_32``.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "DEFAULT_CODECS",
    "G722",
    "OPUS",
    "PCMA",
    "PCMU",
    "SRTP_SUITES",
    "TELEPHONE_EVENT",
    "TELEPHONE_EVENT_48K",
    "WIDEBAND_CODECS",
    "Attribute",
    "Codec",
    "Connection",
    "CryptoAttribute",
    "MediaDescription",
    "NegotiatedMedia",
    "NoCommonCodec",
    "Origin",
    "RtpMap",
    "SdpNegotiationError",
    "SdpParseError",
    "SdpSession",
    "SessionDescription",
    "SrtpKeys",
    "SrtpMode",
    "SrtpRequired",
    "Timing",
    "build_offer",
    "negotiate_answer",
    "parse_answer",
    "parse_sdp",
]


class SdpParseError(ValueError):
    """The text is not a usable session description.

    ``str(error)`` is one readable line, naming the line number where one applies.
    """


class SdpNegotiationError(ValueError):
    """An offer or answer cannot be reconciled with what Sautikit offered or supports."""


class NoCommonCodec(SdpNegotiationError):
    """The offer has no audio stream with a codec Sautikit supports: answer 488."""


class SrtpRequired(NoCommonCodec):
    """SRTP is required here and the offer (or answer) has no usable SDES key: 488."""


#: RFC 4568 §6.2 crypto suites Sautikit speaks, preferred first.
SRTP_SUITES = ("AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32")
#: Their ``inline:`` key: a 16-byte master key and a 14-byte master salt.
_SRTP_KEY_LENGTH = 30
#: ``optional``: answer SRTP when offered, offer plain RTP; ``required``: offer SRTP and
#: refuse plain RTP.
SrtpMode = Literal["optional", "required"]


@dataclass(frozen=True)
class CryptoAttribute:
    """One ``a=crypto`` value (RFC 4568 §9.1): ``tag suite inline:key[|lifetime][|MKI:len]``.

    Only the first key parameter is kept (several are for re-keying, which Sautikit does
    not do); session parameters are kept as text.
    """

    tag: int
    suite: str
    key: bytes
    lifetime: str | None = None
    mki: str | None = None
    session_params: tuple[str, ...] = ()

    @classmethod
    def parse(cls, value: str) -> CryptoAttribute:
        fields = value.split()
        if len(fields) < 3:
            raise SdpParseError(f"a=crypto needs 'tag suite key-params', got {value!r:.80}")
        tag_text, suite, key_params, *session_params = fields
        if not tag_text.isdigit() or len(tag_text) > 9:
            raise SdpParseError(f"a=crypto tag must be a number, got {tag_text!r:.20}")
        method, colon, info = key_params.split(";", 1)[0].partition(":")
        if method.lower() != "inline" or not colon:
            raise SdpParseError(f"a=crypto key method must be inline, got {key_params!r:.40}")
        key_text, *extras = info.split("|")
        try:
            key = base64.b64decode(key_text, validate=True)
        except (binascii.Error, ValueError):
            raise SdpParseError("a=crypto key is not base64") from None
        lifetime = mki = None
        for extra in extras:
            if ":" in extra:
                mki = extra
            else:
                lifetime = extra
        return cls(int(tag_text), suite, key, lifetime, mki, tuple(session_params))

    def encode(self) -> str:
        key = "inline:" + base64.b64encode(self.key).decode()
        for extra in (self.lifetime, self.mki):
            if extra is not None:
                key += "|" + extra
        return " ".join([str(self.tag), self.suite, key, *self.session_params])

    @property
    def usable(self) -> bool:
        """A suite Sautikit speaks, with a key of the right length and no MKI."""
        return (
            self.suite in SRTP_SUITES
            and len(self.key) == _SRTP_KEY_LENGTH
            and self.mki is None
            and not self.session_params
        )

    @classmethod
    def fresh(cls, tag: int, suite: str) -> CryptoAttribute:
        """A new random master key and salt for ``suite``."""
        return cls(tag, suite, secrets.token_bytes(_SRTP_KEY_LENGTH))


@dataclass(frozen=True)
class SrtpKeys:
    """What SDES settled: the suite, our key (we protect with it), the peer's (we
    unprotect with it)."""

    suite: str
    local_key: bytes
    remote_key: bytes


# Direction attributes, RFC 4566 §6 / RFC 3264 §6.1.
_DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")

# RFC 3551 §6 static audio payload types Sautikit may meet without an rtpmap line.
_STATIC_PAYLOAD_TYPES: dict[int, tuple[str, int]] = {
    0: ("PCMU", 8000),
    8: ("PCMA", 8000),
    9: ("G722", 8000),
}

# Line types RFC 4566 §5 allows only at session level: refused inside a media section.
_SESSION_ONLY_LINE_TYPES = frozenset("vosueptrz")

_DEFAULT_PTIME = 20


@dataclass
class Origin:
    """The ``o=`` line: who made the description, and which version of it this is."""

    username: str
    session_id: int
    session_version: int
    address: str
    nettype: str = "IN"
    addrtype: str = "IP4"

    def encode(self) -> str:
        return (
            f"{self.username} {self.session_id} {self.session_version} "
            f"{self.nettype} {self.addrtype} {self.address}"
        )


@dataclass
class Connection:
    """A ``c=`` line; ``address`` keeps any ``/ttl/count`` suffix as written."""

    address: str
    nettype: str = "IN"
    addrtype: str = "IP4"

    @property
    def is_hold(self) -> bool:
        """True for the RFC 2543 hold form ``c=IN IP4 0.0.0.0`` (RFC 3264 §8.4)."""
        return self.address.split("/", 1)[0] in ("0.0.0.0", "::")

    def encode(self) -> str:
        return f"{self.nettype} {self.addrtype} {self.address}"


@dataclass
class Attribute:
    """An ``a=`` line: ``a=name`` (value ``None``) or ``a=name:value``."""

    name: str
    value: str | None = None

    def encode(self) -> str:
        return self.name if self.value is None else f"{self.name}:{self.value}"


@dataclass
class Timing:
    """A ``t=`` line with the ``r=`` repeat lines that belong to it."""

    start: int = 0
    stop: int = 0
    repeats: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RtpMap:
    """An ``a=rtpmap`` value (RFC 4566 §6): encoding name, clock rate and channels."""

    encoding: str
    clock_rate: int
    channels: int = 1


@dataclass(frozen=True)
class Codec:
    """An RTP payload format Sautikit can offer or accept.

    ``payload_type`` is the static type, or for a dynamic format the type Sautikit puts in
    its own offers; in an answer the offerer's number is used instead.
    """

    name: str
    clock_rate: int
    payload_type: int
    fmtp: str | None = None
    channels: int = 1

    def matches(self, rtpmap: RtpMap) -> bool:
        """Same format: encoding names compare case-insensitively (RFC 4566 §6)."""
        return (
            rtpmap.encoding.lower() == self.name.lower()
            and rtpmap.clock_rate == self.clock_rate
            and rtpmap.channels == self.channels
        )


PCMU = Codec("PCMU", 8000, 0)
PCMA = Codec("PCMA", 8000, 8)
#: RFC 3551 §4.5.2: the rtpmap says 8000 although G.722 samples at 16 kHz.
G722 = Codec("G722", 8000, 9)
#: RFC 7587 §7: always ``/48000/2``; in-band FEC asked for, as libopus sends it.
OPUS = Codec("opus", 48000, 111, fmtp="minptime=10;useinbandfec=1", channels=2)
TELEPHONE_EVENT = Codec("telephone-event", 8000, 101, fmtp="0-16")
#: Events on Opus's clock (RFC 4733 §2.1: the clock of the audio they go with).
TELEPHONE_EVENT_48K = Codec("telephone-event", 48000, 110, fmtp="0-16")
#: What Sautikit offers carriers and trunks: G.711 and nothing they might not expect.
DEFAULT_CODECS: tuple[Codec, ...] = (PCMU, PCMA, TELEPHONE_EVENT)
#: What Sautikit offers devices and accepts from anyone, wideband first.
WIDEBAND_CODECS: tuple[Codec, ...] = (
    OPUS,
    G722,
    PCMU,
    PCMA,
    TELEPHONE_EVENT_48K,
    TELEPHONE_EVENT,
)


def _is_telephone_event(codec: Codec) -> bool:
    return codec.name.lower() == TELEPHONE_EVENT.name


@dataclass
class MediaDescription:
    """One ``m=`` section and the lines under it.

    ``extra_lines`` keeps the ``i=``, ``b=``, ``k=`` and unknown lines as ``(type, value)``
    pairs so they survive a round trip.
    """

    media: str
    port: int
    proto: str
    formats: list[str]
    port_count: int | None = None
    connection: Connection | None = None
    attributes: list[Attribute] = field(default_factory=list)
    extra_lines: list[tuple[str, str]] = field(default_factory=list)

    def attribute(self, name: str) -> str | None:
        """The value of the first ``a=name`` line (``""`` for a flag), or ``None``."""
        for attribute in self.attributes:
            if attribute.name == name:
                return "" if attribute.value is None else attribute.value
        return None

    def crypto(self) -> list[CryptoAttribute]:
        """The stream's ``a=crypto`` lines that parse; a malformed one is skipped."""
        found = []
        for value in self.attribute_values("crypto"):
            try:
                found.append(CryptoAttribute.parse(value))
            except SdpParseError:
                continue
        return found

    def attribute_values(self, name: str) -> list[str]:
        return [a.value or "" for a in self.attributes if a.name == name]

    @property
    def direction(self) -> str | None:
        """The media-level direction attribute, if any (RFC 3264 §5.1)."""
        return _direction_of(self.attributes)

    @property
    def payload_types(self) -> list[int]:
        """The formats that are RTP payload type numbers, in offer order."""
        return [int(f) for f in self.formats if f.isascii() and f.isdigit()]

    def rtpmaps(self) -> dict[int, RtpMap]:
        """Every payload type's format: its ``a=rtpmap`` or the RFC 3551 static default."""
        maps: dict[int, RtpMap] = {}
        for pt in self.payload_types:
            if pt in _STATIC_PAYLOAD_TYPES:
                name, rate = _STATIC_PAYLOAD_TYPES[pt]
                maps[pt] = RtpMap(name, rate)
        for value in self.attribute_values("rtpmap"):
            pt_text, _, mapping = value.partition(" ")
            maps[int(pt_text)] = _parse_rtpmap_value(mapping)
        return maps

    def fmtp(self, payload_type: int) -> str | None:
        """The format parameters given for ``payload_type`` (``a=fmtp``), if any."""
        prefix = f"{payload_type} "
        for value in self.attribute_values("fmtp"):
            if value.startswith(prefix):
                return value[len(prefix) :].strip()
        return None

    @property
    def ptime(self) -> int | None:
        value = self.attribute("ptime")
        return None if value is None else int(value.partition(".")[0])

    def encode_lines(self) -> list[str]:
        port = self.port if self.port_count is None else f"{self.port}/{self.port_count}"
        lines = [f"m={' '.join([self.media, str(port), self.proto, *self.formats])}"]
        lines += _extra(self.extra_lines, "i")
        if self.connection is not None:
            lines.append(f"c={self.connection.encode()}")
        lines += _extra(self.extra_lines, "bk")
        lines += _unknown_extra(self.extra_lines)
        lines += [f"a={a.encode()}" for a in self.attributes]
        return lines


@dataclass
class SessionDescription:
    """A whole SDP body (RFC 4566 §5).

    ``extra_lines`` keeps the session-level ``i=``, ``u=``, ``e=``, ``p=``, ``b=``, ``z=``,
    ``k=`` and unknown lines as ``(type, value)`` pairs.
    """

    origin: Origin
    session_name: str = "-"
    connection: Connection | None = None
    timings: list[Timing] = field(default_factory=lambda: [Timing()])
    attributes: list[Attribute] = field(default_factory=list)
    media: list[MediaDescription] = field(default_factory=list)
    extra_lines: list[tuple[str, str]] = field(default_factory=list)
    version: int = 0

    @property
    def direction(self) -> str | None:
        """The session-level direction attribute, if any."""
        return _direction_of(self.attributes)

    def media_direction(self, media: MediaDescription) -> str:
        """A stream's direction: media level, else session level, else sendrecv."""
        return media.direction or self.direction or "sendrecv"

    def media_connection(self, media: MediaDescription) -> Connection | None:
        """A stream's connection: its own ``c=`` line, else the session's."""
        return media.connection or self.connection

    def encode(self) -> bytes:
        """The description as an SDP body: RFC 4566 §5 order, CRLF line ends."""
        lines = [f"v={self.version}", f"o={self.origin.encode()}", f"s={self.session_name}"]
        lines += _extra(self.extra_lines, "iuep")
        if self.connection is not None:
            lines.append(f"c={self.connection.encode()}")
        lines += _extra(self.extra_lines, "b")
        for timing in self.timings:
            lines.append(f"t={timing.start} {timing.stop}")
            lines += [f"r={r}" for r in timing.repeats]
        lines += _extra(self.extra_lines, "zk")
        lines += _unknown_extra(self.extra_lines)
        lines += [f"a={a.encode()}" for a in self.attributes]
        for media in self.media:
            lines += media.encode_lines()
        return ("\r\n".join(lines) + "\r\n").encode("utf-8")

    def __str__(self) -> str:
        return self.encode().decode("utf-8")


def _extra(lines: list[tuple[str, str]], types: str) -> list[str]:
    """The kept lines of the given types, in the order ``types`` lists them (RFC 4566 §5)."""
    return [f"{kind}={value}" for t in types for kind, value in lines if kind == t]


def _unknown_extra(lines: list[tuple[str, str]]) -> list[str]:
    known = "iuepbzk"
    return [f"{kind}={value}" for kind, value in lines if kind not in known]


def _direction_of(attributes: Iterable[Attribute]) -> str | None:
    for attribute in attributes:
        if attribute.name in _DIRECTIONS and attribute.value is None:
            return attribute.name
    return None


# ---------------------------------------------------------------------------------------
# Parsing


def parse_sdp(text: str | bytes) -> SessionDescription:
    """Parse an SDP body; raise :class:`SdpParseError` naming the line on bad input.

    Lenient where real peers differ from RFC 4566 without ambiguity (bare LF line ends,
    blank lines, session lines out of order, missing ``s=``/``t=``), strict where a wrong
    guess would mislead negotiation (``v=``, ``o=``, ``c=``, ``m=``, ``rtpmap``, ``ptime``).
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as error:
            raise SdpParseError(f"SDP is not UTF-8 text (byte {error.start})") from None
    else:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as error:
            raise SdpParseError(f"SDP is not UTF-8 text (character {error.start})") from None
    numbered = [
        (number, line.removesuffix("\r"))
        for number, line in enumerate(text.split("\n"), start=1)
        if line.removesuffix("\r")
    ]
    if not numbered:
        raise SdpParseError("empty SDP body")
    return _Parser().parse(numbered)


class _Parser:
    def __init__(self) -> None:
        self.version: int | None = None
        self.origin: Origin | None = None
        self.session_name: str | None = None
        self.connection: Connection | None = None
        self.timings: list[Timing] = []
        self.attributes: list[Attribute] = []
        self.extra_lines: list[tuple[str, str]] = []
        self.media: list[MediaDescription] = []

    def parse(self, numbered: list[tuple[int, str]]) -> SessionDescription:
        for number, line in numbered:
            if len(line) < 2 or line[1] != "=" or not ("a" <= line[0] <= "z"):
                raise SdpParseError(f"line {number}: expected '<type>=<value>', got {line!r:.60}")
            kind, value = line[0], line[2:]
            if self.version is None and kind != "v":
                raise SdpParseError(f"line {number}: SDP must start with 'v=0', got {line!r:.60}")
            try:
                if self.media:
                    self._media_line(kind, value)
                else:
                    self._session_line(kind, value)
            except SdpParseError as error:
                raise SdpParseError(f"line {number}: {error}") from None
        if self.origin is None:
            raise SdpParseError("missing o= line")
        return SessionDescription(
            version=self.version or 0,
            origin=self.origin,
            session_name="-" if self.session_name is None else self.session_name,
            connection=self.connection,
            timings=self.timings or [Timing()],
            attributes=self.attributes,
            media=self.media,
            extra_lines=self.extra_lines,
        )

    def _session_line(self, kind: str, value: str) -> None:
        if kind == "m":
            self.media.append(_parse_media_line(value))
        elif kind == "a":
            self.attributes.append(_parse_attribute(value))
        elif kind == "v":
            if self.version is not None:
                raise SdpParseError("a second v= line")
            if value != "0":
                raise SdpParseError(f"unsupported SDP version {value!r:.20}")
            self.version = 0
        elif kind == "o":
            if self.origin is not None:
                raise SdpParseError("a second o= line")
            self.origin = _parse_origin(value)
        elif kind == "s":
            if self.session_name is not None:
                raise SdpParseError("a second s= line")
            self.session_name = value
        elif kind == "c":
            if self.connection is not None:
                raise SdpParseError("a second session-level c= line")
            self.connection = _parse_connection(value)
        elif kind == "t":
            start, stop = _parse_fields(value, 2, "t=")
            self.timings.append(Timing(_parse_int(start, "t= start"), _parse_int(stop, "t= stop")))
        elif kind == "r":
            if not self.timings:
                raise SdpParseError("r= line before any t= line")
            self.timings[-1].repeats.append(value)
        else:
            self.extra_lines.append((kind, value))

    def _media_line(self, kind: str, value: str) -> None:
        media = self.media[-1]
        if kind == "m":
            self.media.append(_parse_media_line(value))
        elif kind == "a":
            media.attributes.append(_parse_attribute(value))
        elif kind == "c":
            if media.connection is not None:
                raise SdpParseError("a second c= line in one media description")
            media.connection = _parse_connection(value)
        elif kind in _SESSION_ONLY_LINE_TYPES:
            raise SdpParseError(f"'{kind}=' is not allowed inside a media description")
        else:
            media.extra_lines.append((kind, value))


def _split_fields(value: str) -> list[str]:
    # RFC 4566 says one space; some peers pad with more or end lines with one.
    return [part for part in value.split(" ") if part]


def _parse_fields(value: str, count: int, what: str) -> list[str]:
    fields = _split_fields(value)
    if len(fields) != count:
        raise SdpParseError(f"{what} needs {count} space-separated fields, got {value!r:.60}")
    return fields


def _parse_int(text: str, what: str, maximum: int | None = None) -> int:
    if not text.isascii() or not text.isdigit():
        raise SdpParseError(f"{what} must be a number, got {text!r:.30}")
    number = int(text)
    if maximum is not None and number > maximum:
        raise SdpParseError(f"{what} {number} is above {maximum}")
    return number


def _parse_origin(value: str) -> Origin:
    username, session_id, version, nettype, addrtype, address = _parse_fields(value, 6, "o=")
    return Origin(
        username=username,
        session_id=_parse_int(session_id, "o= session id"),
        session_version=_parse_int(version, "o= session version"),
        nettype=nettype,
        addrtype=addrtype,
        address=address,
    )


def _parse_connection(value: str) -> Connection:
    nettype, addrtype, address = _parse_fields(value, 3, "c=")
    return Connection(address=address, nettype=nettype, addrtype=addrtype)


def _parse_media_line(value: str) -> MediaDescription:
    fields = _split_fields(value)
    if len(fields) < 3:
        raise SdpParseError(f"m= needs '<media> <port> <proto> <fmt> ...', got {value!r:.60}")
    media, port_text, proto, *formats = fields
    port_text, slash, count_text = port_text.partition("/")
    port = _parse_int(port_text, "m= port", 65535)
    port_count = _parse_int(count_text, "m= port count") if slash else None
    return MediaDescription(
        media=media, port=port, port_count=port_count, proto=proto, formats=formats
    )


def _parse_attribute(value: str) -> Attribute:
    name, colon, attribute_value = value.partition(":")
    if not name:
        raise SdpParseError(f"a= line without an attribute name: {value!r:.60}")
    if name == "rtpmap":
        pt_text, _, mapping = attribute_value.partition(" ")
        _parse_int(pt_text, "rtpmap payload type", 127)
        _parse_rtpmap_value(mapping)
    elif name == "ptime":
        # Integer milliseconds (RFC 4566 §6); a few peers write "20.0".
        whole, dot, fraction = attribute_value.partition(".")
        _parse_int(whole, "ptime")
        if dot:
            _parse_int(fraction, "ptime fraction")
    return Attribute(name, attribute_value if colon else None)


def _parse_rtpmap_value(mapping: str) -> RtpMap:
    """``<encoding>/<clock rate>[/<channels>]`` (RFC 4566 §6)."""
    parts = mapping.strip().split("/")
    if len(parts) not in (2, 3) or not parts[0]:
        raise SdpParseError(f"rtpmap needs '<encoding>/<clock rate>', got {mapping!r:.60}")
    rate = _parse_int(parts[1], "rtpmap clock rate")
    channels = _parse_int(parts[2], "rtpmap channels") if len(parts) == 3 else 1
    return RtpMap(parts[0], rate, channels)


# ---------------------------------------------------------------------------------------
# Offer / answer


@dataclass(frozen=True)
class NegotiatedMedia:
    """What one offer/answer exchange settled for the audio stream.

    ``payload_type`` is the type to send the codec with (the peer's numbering, which an
    answerer mirrors); ``direction`` is from Sautikit's side: ``sendonly`` means Sautikit may
    send but receives nothing. ``on_hold`` is true when the exchange puts the stream on hold
    (a sendonly/inactive offer, or the RFC 2543 ``c=0.0.0.0`` form). ``ptime`` is the packet
    time the peer asked for (``a=ptime``), 20 ms when it did not say.
    """

    remote_address: str
    remote_port: int
    payload_type: int
    codec: str
    clock_rate: int
    telephone_event_payload_type: int | None
    ptime: int
    direction: str
    on_hold: bool
    #: The SDES keys when the stream is SRTP, None for plain RTP.
    srtp: SrtpKeys | None = None

    @property
    def can_send(self) -> bool:
        return self.direction in ("sendrecv", "sendonly")

    @property
    def can_receive(self) -> bool:
        return self.direction in ("sendrecv", "recvonly")


def _new_session_id() -> int:
    # RFC 4566 §5.2 suggests an NTP timestamp; any unique 62-bit number does the job.
    return secrets.randbits(62)


def _addrtype(address: str) -> str:
    return "IP6" if ":" in address else "IP4"


def _direction_from_flags(send: bool, receive: bool) -> str:
    if send and receive:
        return "sendrecv"
    if send:
        return "sendonly"
    return "recvonly" if receive else "inactive"


def _sends(direction: str) -> bool:
    return direction in ("sendrecv", "sendonly")


def _receives(direction: str) -> bool:
    return direction in ("sendrecv", "recvonly")


def _check_direction(direction: str) -> None:
    if direction not in _DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(_DIRECTIONS)}, not {direction!r}")


def _audio_media(
    port: int,
    codecs: Sequence[tuple[int, Codec]],
    ptime: int,
    direction: str,
    *,
    proto: str = "RTP/AVP",
    crypto: Sequence[CryptoAttribute] = (),
) -> MediaDescription:
    attributes = []
    for payload_type, codec in codecs:
        channels = f"/{codec.channels}" if codec.channels != 1 else ""
        attributes.append(
            Attribute("rtpmap", f"{payload_type} {codec.name}/{codec.clock_rate}{channels}")
        )
        if codec.fmtp is not None:
            attributes.append(Attribute("fmtp", f"{payload_type} {codec.fmtp}"))
    attributes += [Attribute("ptime", str(ptime)), Attribute(direction)]
    attributes += [Attribute("crypto", line.encode()) for line in crypto]
    return MediaDescription(
        media="audio",
        port=port,
        proto=proto,
        formats=[str(payload_type) for payload_type, _ in codecs],
        attributes=attributes,
    )


def _description(
    address: str,
    media: list[MediaDescription],
    *,
    session_id: int,
    version: int,
    username: str,
) -> SessionDescription:
    addrtype = _addrtype(address)
    return SessionDescription(
        origin=Origin(username, session_id, version, address, addrtype=addrtype),
        connection=Connection(address, addrtype=addrtype),
        media=media,
    )


def build_offer(
    address: str,
    port: int,
    *,
    codecs: Sequence[Codec] = DEFAULT_CODECS,
    session_id: int,
    version: int,
    ptime: int = _DEFAULT_PTIME,
    direction: str = "sendrecv",
    username: str = "sautikit",
    crypto: Sequence[CryptoAttribute] = (),
) -> SessionDescription:
    """An offer with one audio stream at ``address:port`` listing ``codecs`` in order.

    Hold is ``direction="sendonly"`` (RFC 3264 §8.4), unhold ``"sendrecv"``. With
    ``crypto`` lines the stream is RTP/SAVP (SRTP keyed by SDES).
    """
    _check_direction(direction)
    if not codecs:
        raise ValueError("an offer needs at least one codec")
    media = _audio_media(
        port,
        [(c.payload_type, c) for c in codecs],
        ptime,
        direction,
        proto="RTP/SAVP" if crypto else "RTP/AVP",
        crypto=crypto,
    )
    return _description(address, [media], session_id=session_id, version=version, username=username)


def _is_rtp_audio(media: MediaDescription) -> bool:
    return media.media == "audio" and media.proto.upper() in ("RTP/AVP", "RTP/SAVP")


def _is_savp(media: MediaDescription) -> bool:
    return media.proto.upper() == "RTP/SAVP"


def _offered_crypto(media: MediaDescription) -> CryptoAttribute | None:
    """The offer's first usable crypto line, in the offerer's order of preference."""
    return next((line for line in media.crypto() if line.usable), None)


def _rejected(media: MediaDescription) -> MediaDescription:
    """The answer to a stream Sautikit will not take: same m-line, port 0 (RFC 3264 §6)."""
    formats = media.formats or ["0"]
    return MediaDescription(media=media.media, port=0, proto=media.proto, formats=formats)


def _choose_codecs(
    media: MediaDescription, supported: Sequence[Codec]
) -> tuple[tuple[int, Codec], tuple[int, Codec] | None] | None:
    """The first offered codec Sautikit supports and, at its clock rate, telephone-event."""
    offered = media.rtpmaps()
    voice = [c for c in supported if not _is_telephone_event(c)]
    events = [c for c in supported if _is_telephone_event(c)]
    for payload_type in media.payload_types:
        rtpmap = offered.get(payload_type)
        codec = next((c for c in voice if rtpmap and c.matches(rtpmap)), None)
        if codec is None:
            continue
        telephone_event = next(
            (
                (pt, event)
                for pt in media.payload_types
                for event in events
                if (m := offered.get(pt)) and event.matches(m) and m.clock_rate == codec.clock_rate
            ),
            None,
        )
        return (payload_type, codec), telephone_event
    return None


def negotiate_answer(
    offer: SessionDescription,
    local_address: str,
    local_port: int,
    *,
    supported: Sequence[Codec] = DEFAULT_CODECS,
    session_id: int | None = None,
    version: int | None = None,
    ptime: int = _DEFAULT_PTIME,
    direction: str = "sendrecv",
    username: str = "sautikit",
    srtp: SrtpMode = "optional",
    srtp_key: bytes | None = None,
) -> tuple[SessionDescription, NegotiatedMedia]:
    """Answer ``offer`` (RFC 3264 §6): accept its first usable audio stream, reject the rest.

    ``direction`` is what Sautikit wants for the stream; the answer narrows it to what the
    offer allows. A stream with a usable ``a=crypto`` line is answered as SRTP (RFC 4568
    §7.1.2) with ``srtp_key`` (default: a fresh one); an RTP/SAVP stream without one is
    rejected, and so is a plain stream when ``srtp`` is ``required``. Raises
    :class:`NoCommonCodec` when no audio stream can be accepted (:class:`SrtpRequired` when
    one could have been, but without SRTP).
    """
    _check_direction(direction)
    answer_media: list[MediaDescription] = []
    negotiated: NegotiatedMedia | None = None
    refused_for_srtp = False
    for media in offer.media:
        chosen = None
        offered_crypto = _offered_crypto(media)
        if negotiated is None and media.port != 0 and _is_rtp_audio(media):
            chosen = _choose_codecs(media, supported)
            if (
                chosen is not None
                and offered_crypto is None
                and (_is_savp(media) or srtp == "required")
            ):
                chosen, refused_for_srtp = None, True
        connection = offer.media_connection(media)
        if chosen is None or connection is None:
            answer_media.append(_rejected(media))
            continue
        (payload_type, codec), telephone_event = chosen
        offer_direction = offer.media_direction(media)
        held_by_address = connection.is_hold
        # RFC 3264 §8.4: with c=0.0.0.0 nothing may be sent to the offerer.
        send = _receives(offer_direction) and not held_by_address and _sends(direction)
        receive = _sends(offer_direction) and _receives(direction)
        answer_direction = _direction_from_flags(send, receive)
        codecs = [(payload_type, codec)]
        if telephone_event is not None:
            codecs.append(telephone_event)
        keys = None
        answer_crypto = []
        if offered_crypto is not None:
            ours = CryptoAttribute(
                offered_crypto.tag,
                offered_crypto.suite,
                srtp_key or CryptoAttribute.fresh(0, offered_crypto.suite).key,
            )
            answer_crypto.append(ours)
            keys = SrtpKeys(ours.suite, ours.key, offered_crypto.key)
        answer_media.append(
            _audio_media(
                local_port,
                codecs,
                ptime,
                answer_direction,
                proto=media.proto,
                crypto=answer_crypto,
            )
        )
        negotiated = NegotiatedMedia(
            remote_address=connection.address.split("/", 1)[0],
            remote_port=media.port,
            payload_type=payload_type,
            codec=codec.name,
            clock_rate=codec.clock_rate,
            telephone_event_payload_type=telephone_event[0] if telephone_event else None,
            ptime=media.ptime or _DEFAULT_PTIME,
            direction=answer_direction,
            on_hold=held_by_address or offer_direction in ("sendonly", "inactive"),
            srtp=keys,
        )
    if negotiated is None:
        if refused_for_srtp:
            raise SrtpRequired("the offer's audio is plain RTP and SRTP (SDES) is required")
        raise NoCommonCodec(
            "the offer has no audio stream Sautikit can take (a supported codec over RTP/AVP)"
        )
    session_id = _new_session_id() if session_id is None else session_id
    answer = _description(
        local_address,
        answer_media,
        session_id=session_id,
        version=session_id if version is None else version,
        username=username,
    )
    return answer, negotiated


def parse_answer(offer: SessionDescription, answer: SessionDescription) -> NegotiatedMedia:
    """What the peer's ``answer`` to Sautikit's ``offer`` settled (the UAC side, RFC 3264 §7).

    The first audio stream the answer accepted is the one used. Raises
    :class:`NoCommonCodec` when the answer accepted none, and :class:`SdpNegotiationError`
    when the answer does not fit the offer.
    """
    if len(answer.media) != len(offer.media):
        raise SdpNegotiationError(
            f"the answer has {len(answer.media)} media lines, the offer had {len(offer.media)}"
        )
    for ours, theirs in zip(offer.media, answer.media, strict=True):
        if not _is_rtp_audio(ours) or ours.port == 0 or theirs.port == 0:
            continue
        offered = ours.rtpmaps()
        answered = theirs.rtpmaps()
        events = [
            pt
            for pt in theirs.payload_types
            if (m := answered.get(pt)) and m.encoding.lower() == TELEPHONE_EVENT.name
        ]
        voice = [
            (pt, answered[pt])
            for pt in theirs.payload_types
            if pt not in events
            and pt in answered
            and any(_same_format(answered[pt], m) for m in offered.values())
        ]
        if not voice:
            raise SdpNegotiationError("the answer names no codec from the offer")
        payload_type, rtpmap = voice[0]
        connection = answer.media_connection(theirs)
        if connection is None:
            raise SdpNegotiationError("the answer has no c= line for the audio stream")
        our_direction = offer.media_direction(ours)
        their_direction = answer.media_direction(theirs)
        send = _sends(our_direction) and _receives(their_direction) and not connection.is_hold
        receive = _receives(our_direction) and _sends(their_direction)
        keys = _answered_keys(ours, theirs)
        return NegotiatedMedia(
            remote_address=connection.address.split("/", 1)[0],
            remote_port=theirs.port,
            payload_type=payload_type,
            codec=_canonical_name(rtpmap),
            clock_rate=rtpmap.clock_rate,
            telephone_event_payload_type=events[0] if events else None,
            ptime=theirs.ptime or _DEFAULT_PTIME,
            direction=_direction_from_flags(send, receive),
            on_hold=connection.is_hold or our_direction in ("sendonly", "inactive"),
            srtp=keys,
        )
    raise NoCommonCodec("the answer accepted no audio stream")


def _answered_keys(ours: MediaDescription, theirs: MediaDescription) -> SrtpKeys | None:
    """RFC 4568 §7.1.3: the answer's crypto line names one of our tags, with its suite."""
    offered = {line.tag: line for line in ours.crypto() if line.usable}
    if not offered:
        return None
    for line in theirs.crypto():
        mine = offered.get(line.tag)
        if mine is not None and line.usable and line.suite == mine.suite:
            return SrtpKeys(mine.suite, mine.key, line.key)
    raise SrtpRequired("the answer to our SRTP offer carries no matching a=crypto key")


def _same_format(a: RtpMap, b: RtpMap) -> bool:
    return (a.encoding.lower(), a.clock_rate, a.channels) == (
        b.encoding.lower(),
        b.clock_rate,
        b.channels,
    )


def _canonical_name(rtpmap: RtpMap) -> str:
    """Sautikit's spelling of a codec name (``pcmu`` → ``PCMU``, ``OPUS`` → ``opus``)."""
    for codec in WIDEBAND_CODECS:
        if codec.matches(rtpmap):
            return codec.name
    return rtpmap.encoding


class SdpSession:
    """The ``o=`` line of Sautikit's side of one dialog, across offers and answers.

    RFC 3264 §8: every description Sautikit sends in a dialog keeps the same origin except
    for the version, which goes up by one whenever the description changes and stays put
    when it is sent again unchanged. Build re-INVITE bodies through :meth:`offer` (hold is
    ``direction="sendonly"``, unhold ``"sendrecv"``, codec change a different ``codecs``) and
    answers through :meth:`answer`.

    ``codecs`` is what the dialog's offers list, in order of preference: G.711 for
    carriers (the default), :data:`WIDEBAND_CODECS` for devices. Answers take any codec
    Sautikit speaks, in the offerer's order.
    """

    def __init__(
        self,
        address: str,
        *,
        username: str = "sautikit",
        session_id: int | None = None,
        srtp: SrtpMode = "optional",
        codecs: Sequence[Codec] = DEFAULT_CODECS,
    ) -> None:
        self.address = address
        self.username = username
        self.codecs = tuple(codecs)
        #: Whether plain RTP is refused (and our offers are SRTP); see :data:`SrtpMode`.
        self.srtp: SrtpMode = srtp
        # One key per suite for the dialog's life: re-offers keep the SRTP streams going.
        self._offer_crypto = [
            CryptoAttribute.fresh(tag, suite) for tag, suite in enumerate(SRTP_SUITES, 1)
        ]
        self._answer_key = self._offer_crypto[0].key
        self.session_id = _new_session_id() if session_id is None else session_id
        self.version = self.session_id
        self._last_sent: bytes | None = None

    def offer(
        self,
        port: int,
        *,
        codecs: Sequence[Codec] | None = None,
        ptime: int = _DEFAULT_PTIME,
        direction: str = "sendrecv",
        srtp: bool | None = None,
    ) -> SessionDescription:
        """Our offer of ``codecs`` (default: the dialog's); SRTP when ``srtp`` (default:
        when :attr:`srtp` is required)."""
        with_srtp = self.srtp == "required" if srtp is None else srtp
        description = build_offer(
            self.address,
            port,
            codecs=self.codecs if codecs is None else codecs,
            session_id=self.session_id,
            version=self.version,
            ptime=ptime,
            direction=direction,
            username=self.username,
            crypto=self._offer_crypto if with_srtp else (),
        )
        return self._stamp(description)

    def answer(
        self,
        offer: SessionDescription,
        port: int,
        *,
        supported: Sequence[Codec] = WIDEBAND_CODECS,
        ptime: int = _DEFAULT_PTIME,
        direction: str = "sendrecv",
    ) -> tuple[SessionDescription, NegotiatedMedia]:
        description, negotiated = negotiate_answer(
            offer,
            self.address,
            port,
            supported=supported,
            session_id=self.session_id,
            version=self.version,
            ptime=ptime,
            direction=direction,
            username=self.username,
            srtp=self.srtp,
            srtp_key=self._answer_key,
        )
        return self._stamp(description), negotiated

    def _stamp(self, description: SessionDescription) -> SessionDescription:
        # Compare with the version held fixed: only a changed body earns a new version.
        body = dataclasses.replace(
            description, origin=dataclasses.replace(description.origin, session_version=0)
        ).encode()
        if self._last_sent is not None and body != self._last_sent:
            self.version += 1
        self._last_sent = body
        description.origin.session_version = self.version
        return description
