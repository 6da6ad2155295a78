"""Destination authorisation (SPEC §8): the one check every dial passes.

Telephony fraud is the main threat to a prepaid voice platform, so every dial — ``POST
/v1/calls``, a ``dial`` action and a registered SIP device — is admitted by
:mod:`sautikit.calls.admission`, which calls :func:`authorise_destination` with the
workspace's settings (and then the call limits of :mod:`sautikit.calls.limits`):

* an E.164 number must start with one of the workspace's allowed prefixes (``+254`` by
  default);
* a SIP URI's host must be on the workspace's SIP host allow-list, which starts empty: no
  SIP URI may be dialled until its host is added. An IP literal outside the public
  internet (loopback, private, link-local) is refused unless the operator allows private
  addresses (development and tests); a host *name* is resolved by the PBX, which checks the
  addresses it gets with :func:`sautikit.net.is_public_address`.

:func:`play_url_allowed` is the ``play`` verb's host allow-list; the SSRF guard of
:mod:`sautikit.net` applies to the fetch as well. The settings API uses
:func:`normalise_prefix` and :func:`normalise_host_entry` so that what is stored is what
is compared here.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol
from urllib.parse import urlsplit

from sautikit.net import is_public_address
from sautikit.sip.errors import SipParseError
from sautikit.sip.uri import SipUri, format_host

__all__ = [
    "Destination",
    "DestinationError",
    "DestinationNotAllowed",
    "DialPolicy",
    "HostEntry",
    "InvalidDestination",
    "PlayPolicy",
    "authorise_destination",
    "normalise_host_entry",
    "normalise_prefix",
    "parse_destination",
    "play_url_allowed",
]

# ITU-T E.164: a country code starting 1–9 and at most 15 digits in all. Seven digits is
# the shortest whole number in use; anything shorter is a prefix, not a destination.
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_PREFIX = re.compile(r"\+[1-9][0-9]{0,14}")
_DEFAULT_SIP_PORTS = {"sip": 5060, "sips": 5061}


class DestinationError(ValueError):
    """A destination cannot be dialled; ``str(error)`` is safe to show to the app."""


class InvalidDestination(DestinationError):
    """Neither an E.164 number nor a SIP URI (the API answers 400 naming the field)."""


class DestinationNotAllowed(DestinationError):
    """Well formed, but outside the workspace's authorisation (403 ``destinations.not_allowed``)."""


class DialPolicy(Protocol):
    """The workspace settings the checks read (a ``Workspace`` row satisfies it)."""

    @property
    def destination_allowlist(self) -> Sequence[str]: ...
    @property
    def sip_host_allowlist(self) -> Sequence[str]: ...


class PlayPolicy(Protocol):
    """The setting the ``play`` check reads (a ``Workspace`` row satisfies it)."""

    @property
    def play_host_allowlist(self) -> Sequence[str]: ...


@dataclass(frozen=True)
class Destination:
    """A parsed destination: ``address`` is ``+254…`` for a number, else the SIP URI text."""

    kind: Literal["e164", "sip"]
    address: str
    host: str | None = None
    port: int | None = None


@dataclass(frozen=True)
class HostEntry:
    """One allow-list entry: a host (lower case, IPv6 without brackets) and maybe a port."""

    host: str
    port: int | None = None

    def __str__(self) -> str:
        text = format_host(self.host)
        return text if self.port is None else f"{text}:{self.port}"

    def matches(self, host: str, port: int) -> bool:
        return self.host == host.lower() and self.port in (None, port)


def normalise_prefix(text: str) -> str:
    """An allow-list prefix, ``+`` then 1–15 digits; ``ValueError`` names what is wrong."""
    prefix = text.strip()
    if not _PREFIX.fullmatch(prefix):
        raise ValueError(f"{text!r:.40} is not an E.164 prefix like +254 or +2547")
    return prefix


def normalise_host_entry(text: str) -> HostEntry:
    """``host``, ``host:port``, an IP or ``[IPv6]:port``; ``ValueError`` if anything else."""
    try:
        uri = SipUri.parse(f"sip:{text.strip()}")
    except SipParseError:
        uri = None
    if uri is None or uri.user is not None or uri.params or uri.headers or not uri.host:
        raise ValueError(f"{text!r:.60} is not a host name or address with an optional :port")
    return HostEntry(uri.host.lower(), uri.port)


def parse_destination(text: str) -> Destination:
    """An E.164 number (``+254…`` or ``tel:+254…``) or a ``sip:``/``sips:`` URI."""
    candidate = text.strip()
    if candidate.lower().startswith("tel:"):
        candidate = candidate[4:].partition(";")[0]
    if candidate.startswith("+"):
        if not _E164.fullmatch(candidate):
            raise InvalidDestination(
                f"{text!r:.40} is not an E.164 number: '+', the country code, 7–15 digits"
            )
        return Destination("e164", candidate)
    if not candidate.lower().startswith(("sip:", "sips:")):
        raise InvalidDestination(f"{text!r:.40} is neither an E.164 number nor a SIP URI")
    try:
        uri = SipUri.parse(candidate)
    except SipParseError as error:
        raise InvalidDestination(f"{text!r:.60} is not a valid SIP URI: {error}") from None
    if uri.password is not None or uri.headers:
        raise InvalidDestination("a SIP destination may not carry a password or URI headers")
    return Destination("sip", str(uri), uri.host.lower(), uri.port)


def _is_private_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return not is_public_address(host)


def authorise_destination(
    policy: DialPolicy, destination: str, *, allow_private_hosts: bool = False
) -> Destination:
    """Parse ``destination`` and check it against the workspace's allow-lists.

    Raises :class:`InvalidDestination` for malformed input and
    :class:`DestinationNotAllowed` for anything the workspace may not dial.
    """
    parsed = parse_destination(destination)
    if parsed.kind == "e164":
        if not any(parsed.address.startswith(prefix) for prefix in policy.destination_allowlist):
            raise DestinationNotAllowed(
                f"{parsed.address} is outside this workspace's destination allow-list"
            )
        return parsed
    assert parsed.host is not None
    scheme = parsed.address.partition(":")[0].lower()
    port = parsed.port if parsed.port is not None else _DEFAULT_SIP_PORTS[scheme]
    entries = [normalise_host_entry(entry) for entry in policy.sip_host_allowlist]
    if not any(entry.matches(parsed.host, port) for entry in entries):
        raise DestinationNotAllowed(
            f"SIP host {format_host(parsed.host)}:{port} is not on this workspace's "
            "SIP host allow-list"
        )
    if _is_private_literal(parsed.host) and not allow_private_hosts:
        raise DestinationNotAllowed(
            f"SIP host {format_host(parsed.host)} is a private address, which apps may not dial"
        )
    return parsed


def play_url_allowed(policy: PlayPolicy, url: str) -> bool:
    """Whether the ``play`` verb may fetch ``url``.

    Only ``http`` and ``https`` URLs are fetched. An empty allow-list lets any host through
    (the SSRF guard still refuses private addresses when the audio is fetched), as apps
    expect from other platforms; once a workspace lists hosts, only those are played.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    if not policy.play_host_allowlist:
        return True
    port = port if port is not None else (443 if parts.scheme == "https" else 80)
    entries = [normalise_host_entry(entry) for entry in policy.play_host_allowlist]
    return any(entry.matches(parts.hostname, port) for entry in entries)
