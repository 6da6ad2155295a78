"""Where an outbound leg goes: a carrier trunk chosen by prefix, or an allow-listed SIP URI."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from sautikit.crypto import decrypt_secret
from sautikit.db.models import Trunk
from sautikit.sip import SipUri

__all__ = ["NoRoute", "Route", "choose_trunk", "route_destination", "trunk_trusts"]


class NoRoute(LookupError):
    """No trunk carries this destination."""


@dataclass(frozen=True)
class Route:
    target: str
    """The Request-URI."""
    destination: tuple[str, int, str] | None
    """Where the INVITE goes (host, port, transport); None: the target URI's own host."""
    credentials: tuple[str, str] | None


def choose_trunk(trunks: list[Trunk], e164: str) -> Trunk:
    """The trunk whose longest prefix matches ``e164``."""
    best: tuple[int, Trunk] | None = None
    for trunk in trunks:
        for prefix in trunk.prefixes:
            if e164.startswith(prefix) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), trunk)
    if best is None:
        raise NoRoute(f"no carrier trunk carries {e164}")
    return best[1]


def route_destination(trunks: list[Trunk], kind: str, address: str, *, secret_key: bytes) -> Route:
    """Route an E.164 number through its trunk, a SIP URI straight to its host."""
    if kind != "e164" and kind != "number":
        return Route(address, None, None)
    trunk = choose_trunk(trunks, address)
    user = address if trunk.dial_prefix in ("", "+") else trunk.dial_prefix + address[1:]
    credentials = None
    if trunk.username:
        password = (
            decrypt_secret(trunk.password_encrypted, secret_key, context=f"trunk:{trunk.name}")
            if trunk.password_encrypted
            else ""
        )
        credentials = (trunk.username, password)
    target = str(SipUri("sip", user, trunk.host, trunk.port))
    return Route(target, (trunk.host, trunk.port, trunk.transport), credentials)


def trunk_trusts(trunks: list[Trunk], address: str) -> bool:
    """Whether an INVITE from ``address`` comes from a carrier trunk (trusted by address)."""
    try:
        source = ipaddress.ip_address(address)
    except ValueError:
        return False
    for trunk in trunks:
        for entry in trunk.inbound_addresses:
            try:
                if source in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
    return False
