"""SIP addresses: URIs, name-addresses and Via values (RFC 3261 §19.1, §20.10, §20.42, §25.1).

These are pure value codecs with no I/O:

* :class:`SipUri` — ``sip:``, ``sips:`` and ``tel:`` URIs (RFC 3261 §19.1.1, RFC 3966) with
  user, password, host (IPv6 in brackets on the wire, bare inside the object), port, URI
  parameters and URI headers.
* :class:`NameAddress` — the ``name-addr`` / ``addr-spec`` values of From, To, Contact,
  Route and Record-Route (§20.10, §20.20, §20.39) with their header parameters such as
  ``tag``. In the bare ``addr-spec`` form every ``;param`` belongs to the header, not the
  URI (§20).
* :class:`Via` — one Via value (§20.42) with sent-by and the ``branch``, ``received``,
  ``rport`` (RFC 3581, valueless or valued), ``maddr`` and ``ttl`` parameters.

``parse`` classmethods raise :class:`~sautikit.sip.errors.SipParseError` on bad input and
``str()`` gives back the wire form; ``parse(str(x)) == x`` for every value built here.
Parameter names are case-insensitive (§7.3.1), so they are stored lower-cased; values are
kept verbatim (quotes included) because tags and branches are compared byte for byte.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from sautikit.sip.errors import SipParseError

__all__ = [
    "BRANCH_MAGIC_COOKIE",
    "NameAddress",
    "SipUri",
    "Via",
    "format_host",
    "format_params",
    "parse_params",
    "split_outside_quotes",
]

#: Every RFC 3261 branch starts with this (§8.1.1.7); older branches use RFC 2543 matching.
BRANCH_MAGIC_COOKIE = "z9hG4bK"

_TOKEN = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+\Z")
_HOSTNAME = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_\-.]*[A-Za-z0-9_.])?\Z")
# Characters that never appear unescaped inside a URI on the wire; rejecting them early
# keeps a broken header from being read as a URI followed by junk.
_FORBIDDEN_IN_URI = frozenset(' \t\r\n<>"\\\x00')
_TEL_NUMBER = re.compile(r"[0-9A-Fa-f+\-.()*#pPwW]+\Z")
_VIA_PROTOCOL = re.compile(
    r"\s*SIP\s*/\s*2\.0\s*/\s*([A-Za-z0-9\-.!%*_+`'~]+)\s+(.+)\Z", re.I | re.S
)

Params = dict[str, str | None]


def split_outside_quotes(text: str, separator: str) -> list[str]:
    """Split ``text`` on ``separator`` except inside double quotes or ``<...>``.

    Used for comma-separated header values (§7.3.1) and ``;`` parameter lists, where a
    quoted display name or a bracketed URI may itself contain the separator.
    """
    parts: list[str] = []
    start = 0
    in_quotes = False
    in_angle = False
    index = 0
    while index < len(text):
        char = text[index]
        if in_quotes:
            if char == "\\":
                index += 1
            elif char == '"':
                in_quotes = False
        elif char == '"':
            in_quotes = True
        elif char == "<":
            in_angle = True
        elif char == ">":
            in_angle = False
        elif char == separator and not in_angle:
            parts.append(text[start:index])
            start = index + 1
        index += 1
    if in_quotes:
        raise SipParseError(f"unterminated quoted string in {text!r:.80}")
    parts.append(text[start:])
    return parts


def parse_params(text: str) -> Params:
    """Parse ``name[=value]`` pairs separated by ``;`` (the leading ``;`` already removed)."""
    params: Params = {}
    for raw in split_outside_quotes(text, ";"):
        name, has_value, value = raw.partition("=")
        name = name.strip().lower()
        if not _TOKEN.match(name):
            raise SipParseError(f"bad parameter name {name!r:.40}")
        if has_value:
            value = value.strip()
            if not value or any(c in value for c in "\r\n"):
                raise SipParseError(f"bad value for parameter {name!r:.40}")
            params[name] = value
        else:
            params[name] = None
    return params


def format_params(params: Params) -> str:
    """The wire form of a parameter dict, each pair prefixed by ``;``."""
    return "".join(
        f";{name}" if value is None else f";{name}={value}" for name, value in params.items()
    )


def _parse_port(text: str) -> int:
    # isascii(): str.isdigit() also accepts characters such as "²" that int() rejects.
    if not (text.isascii() and text.isdigit()) or len(text) > 5 or int(text) > 65535:
        raise SipParseError(f"bad port {text!r:.20}")
    return int(text)


def _parse_host(text: str) -> str:
    """Validate a host and return it without IPv6 brackets."""
    if text.startswith("["):
        if not text.endswith("]"):
            raise SipParseError(f"unterminated IPv6 reference {text!r:.60}")
        try:
            ipaddress.IPv6Address(text[1:-1])
        except ValueError:
            raise SipParseError(f"bad IPv6 address {text!r:.60}") from None
        return text[1:-1]
    if not _HOSTNAME.match(text):
        raise SipParseError(f"bad host {text!r:.60}")
    return text


def _parse_hostport(text: str) -> tuple[str, int | None]:
    text = text.strip()
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise SipParseError(f"unterminated IPv6 reference {text!r:.60}")
        host_text, rest = text[: end + 1], text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise SipParseError(f"junk after IPv6 reference in {text!r:.60}")
        port_text = rest[1:] if rest else None
    else:
        host_text, has_port, port_text = text.partition(":")
        port_text = port_text.strip() if has_port else None
        host_text = host_text.strip()
    host = _parse_host(host_text)
    return host, None if port_text is None else _parse_port(port_text)


def format_host(host: str) -> str:
    """``host`` as it appears on the wire: IPv6 addresses go in brackets."""
    return f"[{host}]" if ":" in host else host


@dataclass(slots=True)
class SipUri:
    """A ``sip:``, ``sips:`` or ``tel:`` URI.

    For ``tel:`` URIs the subscriber number is kept in :attr:`user` and :attr:`host` is
    empty. URI headers (``?name=value&...``) are kept in order.
    """

    scheme: str = "sip"
    user: str | None = None
    host: str = ""
    port: int | None = None
    password: str | None = None
    params: Params = field(default_factory=dict)
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> SipUri:
        text = text.strip()
        if any(char in _FORBIDDEN_IN_URI for char in text):
            raise SipParseError(f"illegal character in URI {text!r:.80}")
        scheme, colon, rest = text.partition(":")
        scheme = scheme.lower()
        if not colon or scheme not in ("sip", "sips", "tel"):
            raise SipParseError(f"unsupported URI scheme in {text!r:.80}")
        if scheme == "tel":
            number, has_params, param_text = rest.partition(";")
            if not _TEL_NUMBER.match(number):
                raise SipParseError(f"bad telephone number in {text!r:.80}")
            return cls(scheme, number, params=parse_params(param_text) if has_params else {})
        user = password = None
        if "@" in rest:
            userinfo, _, rest = rest.partition("@")
            user, has_password, password_text = userinfo.partition(":")
            if not user:
                raise SipParseError(f"empty user part in {text!r:.80}")
            password = password_text if has_password else None
        rest, has_headers, header_text = rest.partition("?")
        hostport, has_params, param_text = rest.partition(";")
        host, port = _parse_hostport(hostport)
        headers: list[tuple[str, str]] = []
        if has_headers:
            for pair in header_text.split("&"):
                name, equals, value = pair.partition("=")
                if not name or not equals:
                    raise SipParseError(f"bad URI header {pair!r:.40}")
                headers.append((name, value))
        params = parse_params(param_text) if has_params else {}
        return cls(scheme, user, host, port, password, params, headers)

    def __str__(self) -> str:
        if self.scheme == "tel":
            return f"tel:{self.user}{format_params(self.params)}"
        text = f"{self.scheme}:"
        if self.user is not None:
            text += self.user if self.password is None else f"{self.user}:{self.password}"
            text += "@"
        text += format_host(self.host)
        if self.port is not None:
            text += f":{self.port}"
        text += format_params(self.params)
        if self.headers:
            text += "?" + "&".join(f"{name}={value}" for name, value in self.headers)
        return text

    @property
    def transport(self) -> str | None:
        """The ``transport`` parameter, lower-cased, if present."""
        value = self.params.get("transport")
        return value.lower() if value else None


def _parse_quoted_string(text: str) -> tuple[str, str]:
    """Parse a leading quoted-string; return (unescaped content, remaining text)."""
    chars: list[str] = []
    index = 1
    while index < len(text):
        char = text[index]
        if char == "\\":
            if index + 1 >= len(text):
                break
            chars.append(text[index + 1])
            index += 2
            continue
        if char == '"':
            return "".join(chars), text[index + 1 :]
        chars.append(char)
        index += 1
    raise SipParseError(f"unterminated display name in {text!r:.80}")


@dataclass(slots=True)
class NameAddress:
    """A From/To/Contact/Route/Record-Route value: optional display name, URI, parameters."""

    uri: SipUri
    display_name: str | None = None
    params: Params = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> NameAddress:
        text = text.strip()
        display_name: str | None = None
        if text.startswith('"'):
            display_name, text = _parse_quoted_string(text)
            text = text.lstrip()
            if not text.startswith("<"):
                raise SipParseError("display name not followed by <URI>")
        elif "<" in text:
            before, _, after = text.partition("<")
            # Strictly a run of tokens; phones send other characters unquoted too, and
            # accepting them costs nothing because str() always quotes.
            display_name = " ".join(before.split()) or None
            text = "<" + after
        if text.startswith("<"):
            end = text.find(">")
            if end < 0:
                raise SipParseError(f"unterminated <URI> in {text!r:.80}")
            uri_text, rest = text[1:end], text[end + 1 :].strip()
            if rest and not rest.startswith(";"):
                raise SipParseError(f"junk after <URI>: {rest!r:.40}")
            param_text = rest[1:] if rest else None
        else:
            # addr-spec form: a URI with ; , or ? must be bracketed (§20), so every
            # parameter here is a header parameter.
            uri_text, has_params, param_text = text.partition(";")
            if not has_params:
                param_text = None
        params = parse_params(param_text) if param_text is not None else {}
        return cls(SipUri.parse(uri_text), display_name, params)

    def __str__(self) -> str:
        text = f"<{self.uri}>{format_params(self.params)}"
        if self.display_name is None:
            return text
        escaped = self.display_name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}" {text}'

    @property
    def tag(self) -> str | None:
        """The ``tag`` header parameter (§19.3), if present."""
        return self.params.get("tag")


@dataclass(slots=True)
class Via:
    """One Via header value (§20.42): transport, sent-by host and port, parameters."""

    transport: str
    host: str
    port: int | None = None
    params: Params = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Via:
        match = _VIA_PROTOCOL.match(text)
        if not match:
            raise SipParseError(f"bad Via {text!r:.80}")
        sent_by, has_params, param_text = match.group(2).partition(";")
        host, port = _parse_hostport(sent_by)
        params = parse_params(param_text) if has_params else {}
        via = cls(match.group(1).upper(), host, port, params)
        rport = params.get("rport")
        if rport is not None:
            _parse_port(rport)
        if "branch" in params and not params["branch"]:
            raise SipParseError("empty Via branch")
        return via

    def __str__(self) -> str:
        port = "" if self.port is None else f":{self.port}"
        return (
            f"SIP/2.0/{self.transport} {format_host(self.host)}{port}{format_params(self.params)}"
        )

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def received(self) -> str | None:
        return self.params.get("received")

    @property
    def maddr(self) -> str | None:
        return self.params.get("maddr")

    @property
    def ttl(self) -> int | None:
        value = self.params.get("ttl")
        if value is None or not (value.isascii() and value.isdigit()) or len(value) > 3:
            return None
        return int(value)

    @property
    def rport_requested(self) -> bool:
        """True when the sender asked for symmetric response routing (RFC 3581 §3)."""
        return "rport" in self.params

    @property
    def rport(self) -> int | None:
        """The filled-in ``rport`` value, or None when absent or valueless."""
        value = self.params.get("rport")
        return int(value) if value is not None else None

    @property
    def sent_by(self) -> tuple[str, int | None]:
        return self.host, self.port
