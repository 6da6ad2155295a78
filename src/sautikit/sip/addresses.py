"""Listen and advertised addresses: what we bind to and what others must reach.

A server binds ``0.0.0.0`` (every interface) or a private address behind 1:1 NAT, but
what goes into Via sent-by, Contact, Record-Route and SDP ``c=`` must be an address the
far end can reach: the *advertised* one. ``0.0.0.0`` in SDP reads as hold (RFC 3264 §8.4)
and in a Contact reaches nobody, so a wildcard is never advertised: without a configured
address the machine's primary address (the one its default route leaves by) is used.
"""

from __future__ import annotations

import ipaddress
import socket

__all__ = ["advertised_address", "is_wildcard", "primary_address"]

# TEST-NET addresses (RFC 5737 / RFC 3849): a UDP connect() to them picks the interface of
# the default route without sending a single packet.
_PROBE = {socket.AF_INET: "192.0.2.1", socket.AF_INET6: "2001:db8::1"}


def is_wildcard(host: str) -> bool:
    """True for the any-address of either family (``0.0.0.0``, ``::``, or empty)."""
    if not host:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False


def primary_address(family: socket.AddressFamily = socket.AF_INET) -> str:
    """The local address the default route leaves by; loopback when there is none."""
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((_PROBE[family], 9))
            address: str = probe.getsockname()[0]
        except OSError:
            return "127.0.0.1" if family == socket.AF_INET else "::1"
    return address


def advertised_address(listen: str, configured: str | None = None) -> str:
    """What to advertise for a socket bound to ``listen``: ``configured`` when set, else
    ``listen`` itself, else (for a wildcard) the machine's primary address."""
    if configured:
        if is_wildcard(configured):
            raise ValueError(f"{configured!r} cannot be advertised: nobody can reach it")
        return configured
    if not is_wildcard(listen):
        return listen
    family = socket.AF_INET6 if ":" in listen else socket.AF_INET
    return primary_address(family)
