"""Where a call goes: a carrier trunk chosen by prefix, or an allow-listed SIP URI; and
which source addresses are carriers. Numbers from the network are written in E.164 here.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from sautikit.crypto import decrypt_secret
from sautikit.db.models import Trunk
from sautikit.sip import SipUri

__all__ = [
    "NoRoute",
    "Route",
    "Trunks",
    "choose_trunk",
    "normalise_number",
    "route_destination",
    "trunk_trusts",
]


def normalise_number(user: str) -> str:
    """A carrier's or phone's idea of a number, in E.164: ``254700…`` → ``+254700…``."""
    digits = user.strip()
    if digits.startswith("+"):
        return digits
    if digits.isdigit() and digits.startswith("254"):
        return "+" + digits
    if digits.isdigit() and digits.startswith("0") and len(digits) == 10:
        return "+254" + digits[1:]  # a Kenyan national number
    return digits


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


class Trunks:
    """The carrier trunks as this process last read them (the CLI and the API change them)."""

    def __init__(self, secret_key: bytes) -> None:
        self._secret_key = secret_key
        self._trunks: list[Trunk] = []

    async def reload(self, session: AsyncSession) -> None:
        self._trunks = list((await session.scalars(select(Trunk))).all())

    def trusts(self, host: str) -> bool:
        """Whether INVITEs from ``host`` come from a carrier trunk (no digest needed)."""
        return trunk_trusts(self._trunks, host)

    def route(self, to: str) -> Route:
        """Where a leg to ``to`` (E.164 or a SIP URI) goes; raises :class:`NoRoute`."""
        kind = "e164" if to.startswith("+") else "sip"
        return route_destination(self._trunks, kind, to, secret_key=self._secret_key)
