"""SIP requests and responses: the header list, the wire codec and §8.2.6 responses.

A pure codec (RFC 3261 §7, §20, §25) with no I/O, used by the transports:

* :class:`Headers` — ordered, multi-valued, case-insensitive; compact forms (§7.3.3) are
  expanded to their long names, and the comma-separated values of Via, Route,
  Record-Route and Contact (§7.3.1) are split into one entry each without splitting inside
  quotes or ``<...>``.
* :class:`Request` / :class:`Response` with ``encode()`` (Content-Length always written
  from the body, §20.14) and typed accessors for the headers every transaction needs.
* :func:`parse_message` — bytes to a message. Folded lines (§7.3.1), bare-LF line ends and
  leading CRLFs (§7.5) are accepted; a message is rejected when it exceeds
  :data:`MAX_MESSAGE_SIZE`, :data:`MAX_HEADER_LINES` or :data:`MAX_HEADER_LINE_LENGTH`,
  lacks a mandatory header (§8.1.1) or declares a Content-Length larger than the data
  (§18.3). Bad input raises :class:`SipParseError` and nothing else.
* :func:`best_effort_bad_request_response` — for a request too broken to parse but whose
  Via, From, To, Call-ID and CSeq can still be read, the 400 a transport should answer
  (§21.4.1) instead of dropping it silently.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from sautikit.sip.errors import SipParseError
from sautikit.sip.uri import NameAddress, SipUri, Via, split_outside_quotes

__all__ = [
    "MAX_HEADER_LINES",
    "MAX_HEADER_LINE_LENGTH",
    "MAX_MESSAGE_SIZE",
    "REASON_PHRASES",
    "CSeq",
    "Headers",
    "Request",
    "Response",
    "SipParseError",
    "best_effort_bad_request_response",
    "canonical_header_name",
    "default_reason",
    "parse_message",
]

#: Largest message accepted, in bytes (§18.1.1 lets UDP grow to 65 535; 64 KiB covers it).
MAX_MESSAGE_SIZE = 65536
#: Most header lines accepted (folded continuations count), against header floods.
MAX_HEADER_LINES = 256
#: Longest single header line accepted, in bytes (long Authorization lines fit easily).
MAX_HEADER_LINE_LENGTH = 8192

_COMPACT_FORMS = {
    "v": "Via",
    "f": "From",
    "t": "To",
    "i": "Call-ID",
    "m": "Contact",
    "l": "Content-Length",
    "c": "Content-Type",
    "k": "Supported",
    "s": "Subject",
    "e": "Content-Encoding",
    "o": "Event",
    "r": "Refer-To",
    "b": "Referred-By",
    "u": "Allow-Events",
    "x": "Session-Expires",
}
# Names whose conventional spelling is not plain Title-Case of the dash-separated words.
_SPECIAL_SPELLINGS = {
    name.lower(): name
    for name in (
        "Call-ID",
        "CSeq",
        "WWW-Authenticate",
        "MIME-Version",
        "RAck",
        "Min-SE",
        "RSeq",
        "SIP-ETag",
        "SIP-If-Match",
        "P-Asserted-Identity",
        "P-Preferred-Identity",
    )
}
_MULTI_VALUE_HEADERS = frozenset({"via", "route", "record-route", "contact", "path"})
_MANDATORY_HEADERS = ("Via", "From", "To", "Call-ID", "CSeq")
_TOKEN = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+\Z")
_CSEQ = re.compile(r"\s*([0-9]{1,10})\s+([A-Za-z0-9\-.!%*_+`'~]+)\s*\Z")

REASON_PHRASES: dict[int, str] = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    200: "OK",
    202: "Accepted",
    301: "Moved Permanently",
    302: "Moved Temporarily",
    380: "Alternative Service",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    410: "Gone",
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    421: "Extension Required",
    423: "Interval Too Brief",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    484: "Address Incomplete",
    485: "Ambiguous",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    491: "Request Pending",
    493: "Undecipherable",
    500: "Server Internal Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}


def canonical_header_name(name: str) -> str:
    """The long, conventionally capitalised form of a header name (``i`` -> ``Call-ID``)."""
    lower = name.lower()
    if lower in _COMPACT_FORMS:
        return _COMPACT_FORMS[lower]
    special = _SPECIAL_SPELLINGS.get(lower)
    if special is not None:
        return special
    return "-".join(word.capitalize() for word in lower.split("-"))


def _checked_name(name: str) -> str:
    if not _TOKEN.match(name):
        raise SipParseError(f"bad header name {name!r:.40}")
    return canonical_header_name(name)


def _checked_value(value: str) -> str:
    """Strip a value and refuse line breaks, which would inject headers on encode."""
    if any(char in value for char in "\r\n\x00"):
        raise SipParseError(f"line break or NUL in header value {value!r:.40}")
    return value.strip()


class Headers:
    """An ordered, case-insensitive, multi-valued header list.

    Each entry is one value; Via, Route, Record-Route and Contact values that arrived
    comma-separated on one line are stored as separate entries, which is equivalent on the
    wire (§7.3.1) and lets the transaction layer pop and push single Via values.
    """

    __slots__ = ("_entries",)

    def __init__(self, entries: Iterable[tuple[str, str]] = ()) -> None:
        self._entries: list[tuple[str, str]] = []
        for name, value in entries:
            self.add(name, value)

    def add(self, name: str, value: str) -> None:
        """Append a value; multi-value headers given comma-separated become several."""
        canonical = _checked_name(name)
        value = _checked_value(value)
        if canonical.lower() in _MULTI_VALUE_HEADERS and value.strip() != "*":
            for part in split_outside_quotes(value, ","):
                part = part.strip()
                if not part:
                    raise SipParseError(f"empty value in {canonical} list")
                self._entries.append((canonical, part))
        else:
            self._entries.append((canonical, value))

    def prepend(self, name: str, value: str) -> None:
        """Insert a value in front of every other entry (a new top Via, §8.1.1.7)."""
        self._entries.insert(0, (_checked_name(name), _checked_value(value)))

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of ``name``, or ``default``."""
        canonical = canonical_header_name(name)
        for entry_name, value in self._entries:
            if entry_name == canonical:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        canonical = canonical_header_name(name)
        return [value for entry_name, value in self._entries if entry_name == canonical]

    def set(self, name: str, value: str) -> None:
        """Replace every value of ``name`` by one value, keeping the first one's position."""
        canonical = _checked_name(name)
        value = _checked_value(value)
        for index, (entry_name, _) in enumerate(self._entries):
            if entry_name == canonical:
                self._entries[index] = (canonical, value)
                self._entries[index + 1 :] = [
                    entry for entry in self._entries[index + 1 :] if entry[0] != canonical
                ]
                return
        self.add(canonical, value)

    def remove(self, name: str) -> None:
        canonical = canonical_header_name(name)
        self._entries = [entry for entry in self._entries if entry[0] != canonical]

    def remove_first(self, name: str) -> None:
        """Drop the first value of ``name`` (a proxy popping its own Via, §16.7)."""
        canonical = canonical_header_name(name)
        for index, (entry_name, _) in enumerate(self._entries):
            if entry_name == canonical:
                del self._entries[index]
                return

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(list(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._entries == other._entries

    def __repr__(self) -> str:
        return f"Headers({self._entries!r})"


class CSeq(NamedTuple):
    """The parsed CSeq header (§20.16)."""

    number: int
    method: str

    def __str__(self) -> str:
        return f"{self.number} {self.method}"


def _parse_cseq(value: str) -> CSeq:
    match = _CSEQ.match(value)
    if not match or int(match.group(1)) >= 2**31:
        raise SipParseError(f"bad CSeq {value!r:.60}")
    return CSeq(int(match.group(1)), match.group(2))


@dataclass(eq=False, slots=True)
class _Message:
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    def _required(self, name: str) -> str:
        value = self.headers.get(name)
        if value is None:
            raise SipParseError(f"missing {name} header")
        return value

    @property
    def call_id(self) -> str:
        return self._required("Call-ID")

    @property
    def cseq(self) -> CSeq:
        return _parse_cseq(self._required("CSeq"))

    @property
    def from_(self) -> NameAddress:
        return NameAddress.parse(self._required("From"))

    @property
    def to(self) -> NameAddress:
        return NameAddress.parse(self._required("To"))

    @property
    def vias(self) -> list[Via]:
        return [Via.parse(value) for value in self.headers.get_all("Via")]

    @property
    def top_via(self) -> Via:
        return Via.parse(self._required("Via"))

    @property
    def contacts(self) -> list[NameAddress]:
        """Contact values; empty for none and for the REGISTER wildcard ``*`` (§10.2.2)."""
        return [NameAddress.parse(v) for v in self.headers.get_all("Contact") if v != "*"]

    @property
    def record_routes(self) -> list[NameAddress]:
        return [NameAddress.parse(value) for value in self.headers.get_all("Record-Route")]

    @property
    def routes(self) -> list[NameAddress]:
        return [NameAddress.parse(value) for value in self.headers.get_all("Route")]

    @property
    def content_length(self) -> int:
        """The declared Content-Length, or the body's length when the header is absent."""
        value = self.headers.get("Content-Length")
        if value is None:
            return len(self.body)
        if not (value.isascii() and value.isdigit()) or len(value) > 10:
            raise SipParseError(f"bad Content-Length {value!r:.20}")
        return int(value)

    @property
    def content_type(self) -> str | None:
        return self.headers.get("Content-Type")

    def _encode_with(self, start_line: str) -> bytes:
        if any(char in start_line for char in "\r\n\x00"):
            raise SipParseError(f"line break or NUL in start line {start_line!r:.60}")
        lines = [start_line]
        wrote_length = False
        for name, value in self.headers:
            if name == "Content-Length":
                if wrote_length:
                    continue
                value = str(len(self.body))
                wrote_length = True
            lines.append(f"{name}: {value}")
        if not wrote_length:
            lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


@dataclass(eq=False, slots=True)
class Request(_Message):
    """A SIP request. ``headers`` and ``body`` come first so responses and requests share
    the accessor code; build one with keywords: ``Request(method=..., uri=..., ...)``."""

    method: str = "OPTIONS"
    uri: SipUri = field(default_factory=SipUri)

    def encode(self) -> bytes:
        return self._encode_with(f"{self.method} {self.uri} SIP/2.0")

    def create_response(
        self, status: int, reason: str | None = None, *, to_tag: str | None = None
    ) -> Response:
        """A response to this request per §8.2.6.2.

        Via (every value, in order), From, Call-ID and CSeq are copied; To is copied and
        gets ``to_tag`` when it has no tag yet (a 100 Trying never gets one, §8.2.6.2).
        The reason defaults to the RFC phrase for ``status``.
        """
        if not 100 <= status <= 699:
            raise ValueError(f"status {status} is outside 100-699")
        headers = Headers()
        for name in ("Via", "From", "To", "Call-ID", "CSeq"):
            for value in self.headers.get_all(name):
                headers.add(name, value)
        if to_tag is not None and status != 100:
            to = self.to
            if to.tag is None:
                to.params["tag"] = to_tag
                headers.set("To", str(to))
        if status == 100 and "Timestamp" in self.headers:
            headers.add("Timestamp", self.headers.get("Timestamp") or "")  # §8.2.6.1
        return Response(
            status=status,
            reason=reason if reason is not None else default_reason(status),
            headers=headers,
        )

    def create_cancel(self) -> Request:
        """The CANCEL for this (INVITE) request per §9.1: same Request-URI, top Via,
        Call-ID, From, To, CSeq number and Route set."""
        headers = Headers()
        headers.add("Via", self._required("Via"))
        for name in ("Route", "From", "To", "Call-ID"):
            for value in self.headers.get_all(name):
                headers.add(name, value)
        headers.add("CSeq", str(CSeq(self.cseq.number, "CANCEL")))
        headers.add("Max-Forwards", "70")
        return Request(method="CANCEL", uri=self.uri, headers=headers)


@dataclass(eq=False, slots=True)
class Response(_Message):
    """A SIP response."""

    status: int = 200
    reason: str = "OK"

    def encode(self) -> bytes:
        return self._encode_with(f"SIP/2.0 {self.status} {self.reason}")

    @property
    def is_provisional(self) -> bool:
        return self.status < 200

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300


def default_reason(status: int) -> str:
    """The RFC reason phrase for ``status``, or a class default for unknown codes."""
    return REASON_PHRASES.get(status) or REASON_PHRASES[(status // 100) * 100 or 100]


def _decode_head(data: bytes) -> tuple[str, list[str], bytes]:
    """Split raw bytes into start line, unfolded header lines and the rest (the body)."""
    if len(data) > MAX_MESSAGE_SIZE:
        raise SipParseError(f"message of {len(data)} bytes exceeds {MAX_MESSAGE_SIZE}")
    data = data.lstrip(b"\r\n")
    crlf_end = data.find(b"\r\n\r\n")
    lf_end = data.find(b"\n\n")
    if crlf_end < 0 and lf_end < 0:
        raise SipParseError("message has no blank line ending its headers")
    if crlf_end >= 0 and (lf_end < 0 or crlf_end < lf_end):
        head, body = data[:crlf_end], data[crlf_end + 4 :]
    else:
        head, body = data[:lf_end], data[lf_end + 2 :]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SipParseError(f"header bytes are not UTF-8 (at offset {error.start})") from None
    raw_lines = text.split("\n")
    if len(raw_lines) > MAX_HEADER_LINES + 1:
        raise SipParseError(f"more than {MAX_HEADER_LINES} header lines")
    lines: list[str] = []
    for raw in raw_lines:
        line = raw.removesuffix("\r")
        if len(line) > MAX_HEADER_LINE_LENGTH:
            raise SipParseError(f"header line longer than {MAX_HEADER_LINE_LENGTH} bytes")
        if any(ord(char) < 32 and char != "\t" for char in line) or "\x7f" in line:
            raise SipParseError("control character in header section")
        if line[:1] in (" ", "\t") and len(lines) > 1:
            lines[-1] += " " + line.strip()  # folded continuation (§7.3.1)
            if len(lines[-1]) > MAX_HEADER_LINE_LENGTH:
                raise SipParseError(f"header longer than {MAX_HEADER_LINE_LENGTH} bytes")
        else:
            lines.append(line)
    return lines[0], lines[1:], body


def _parse_headers(header_lines: list[str]) -> Headers:
    headers = Headers()
    for line in header_lines:
        name, colon, value = line.partition(":")
        name = name.strip()
        if not colon or not _TOKEN.match(name):
            raise SipParseError(f"bad header line {line!r:.60}")
        headers.add(name, value)
    return headers


def _parse_start_line(line: str) -> Request | Response:
    if line.startswith("SIP/"):
        version, _, rest = line.partition(" ")
        status_text, _, reason = rest.partition(" ")
        if version != "SIP/2.0":
            raise SipParseError(f"unsupported SIP version {version!r:.20}")
        if not re.fullmatch(r"[1-6][0-9][0-9]", status_text):
            raise SipParseError(f"bad status code {status_text!r:.20}")
        return Response(status=int(status_text), reason=reason.strip())
    parts = line.split(" ")
    if len(parts) != 3:
        raise SipParseError(f"bad request line {line!r:.80}")
    method, uri_text, version = parts
    if not _TOKEN.match(method):
        raise SipParseError(f"bad method {method!r:.20}")
    if version != "SIP/2.0":
        raise SipParseError(f"unsupported SIP version {version!r:.20}")
    return Request(method=method, uri=SipUri.parse(uri_text))


def _validate(message: Request | Response) -> None:
    """Check that every header the transaction layer relies on is present and readable."""
    for name in _MANDATORY_HEADERS:
        if name not in message.headers:
            raise SipParseError(f"missing mandatory {name} header")
    message.vias  # noqa: B018 - parse every Via so later accessors cannot fail
    message.from_  # noqa: B018
    message.to  # noqa: B018
    cseq = message.cseq
    if isinstance(message, Request) and cseq.method != message.method:
        raise SipParseError(f"CSeq method {cseq.method} does not match {message.method}")


def parse_message(data: bytes) -> Request | Response:
    """Parse one complete SIP message (a datagram, or a frame cut by the TCP transport).

    A body longer than Content-Length is cut to it (§18.3); a shorter one is an error.
    Without Content-Length the body is the rest of the data.

    :raises SipParseError: for anything that is not a valid SIP message.
    """
    start_line, header_lines, body = _decode_head(data)
    message = _parse_start_line(start_line)
    message.headers = _parse_headers(header_lines)
    _validate(message)
    if "Content-Length" in message.headers:
        length = message.content_length
        if length > len(body):
            raise SipParseError(f"Content-Length {length} exceeds the {len(body)} body bytes")
        body = body[:length]
    message.body = body
    return message


def best_effort_bad_request_response(data: bytes, reason: str = "Bad Request") -> Response | None:
    """The 400 to send back for ``data`` when it fails :func:`parse_message`, if any.

    A response is only possible when the data is a request whose Via, From, To, Call-ID and
    CSeq can be read (§8.2.6 copies them); an ACK is never answered (§17.2.1). Returns None
    when nothing can be answered. Never raises.
    """
    try:
        start_line, header_lines, _ = _decode_head(data)
        method = start_line.split(" ", 1)[0]
        if start_line.startswith("SIP/") or method == "ACK" or not _TOKEN.match(method):
            return None
        headers = Headers()
        for line in header_lines:
            name, colon, value = line.partition(":")
            if colon:
                with contextlib.suppress(SipParseError):
                    headers.add(name.strip(), value)
        request = Request(method=method, headers=headers)
        for name in _MANDATORY_HEADERS:
            if name not in headers:
                return None
        request.vias  # noqa: B018 - each must parse to be copied into the response
        request.from_  # noqa: B018
        request.to  # noqa: B018
        request.cseq  # noqa: B018
        # The reason phrase is text on the wire: keep it to one printable line.
        phrase = "".join(c for c in reason if c.isprintable())[:120] or "Bad Request"
        return request.create_response(400, phrase)
    except SipParseError:
        return None
