"""Where a call goes, and which source addresses are carriers. Numbers from the network
are written in E.164 here.

The one routing rule, for every origin (``POST /v1/calls``, a ``dial`` action, a
registered device): a number that a workspace of this deployment holds is **on-net**
(:func:`is_on_net`, decided at admission and stored on the call) and stays on the
platform; only a number nobody holds goes to the carrier trunk whose longest prefix
matches it; a SIP URI goes straight to its (allow-listed) host.

An on-net call is sent to this deployment's own SIP listener (:func:`on_net_route`), so
it arrives as any inbound call to that number does — its ``voice_url`` app or its
registered devices, in whichever process — and is billed as two legs: the caller's at
the deck's ``on_net`` rate, the callee's as inbound. It carries an
``X-Sautikit-On-Net`` token (an HMAC under the deployment's secret key, bound to the
caller, the called number and a time) that lets it in without a device's digest.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from sautikit.billing.authorisation import DestinationError
from sautikit.crypto import decrypt_secret
from sautikit.db.models import Call, Number, Trunk
from sautikit.pbx.trunk_health import TrunkAddress, TrunkHealth
from sautikit.sip import Peer, Request, SipUri
from sautikit.sip.addresses import is_wildcard
from sautikit.sip.client_auth import ClientCredentials
from sautikit.sip.dns import SipResolver, Transport
from sautikit.sip.sdp import SrtpMode

__all__ = [
    "MAX_ON_NET_HOPS",
    "ON_NET_HEADER",
    "NoRoute",
    "OnNetLoop",
    "PlatformAddress",
    "Route",
    "Trunks",
    "choose_trunk",
    "is_on_net",
    "normalise_number",
    "on_net_hops",
    "on_net_route",
    "on_net_token",
    "route_destination",
    "trunk_trusts",
    "verify_on_net_token",
]

ON_NET_HEADER = "X-Sautikit-On-Net"
#: How long an on-net token is good for: it is checked as the INVITE arrives, a moment
#: after it was made (and a retransmission reuses the same INVITE).
ON_NET_TOKEN_SECONDS = 60


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
    headers: tuple[tuple[str, str], ...] = ()
    """Extra INVITE headers (an on-net call's token)."""
    srtp: SrtpMode = "optional"
    """``required``: the INVITE offers SRTP and a plain answer fails the leg."""
    trunk: str | None = None
    """The trunk's name, when one carries the call."""


@dataclass(frozen=True)
class PlatformAddress:
    """This deployment's own SIP listener, where on-net calls are sent."""

    listen_host: str
    port: int
    advertised_host: str


async def is_on_net(session: AsyncSession, destination: str) -> bool:
    """Whether ``destination`` is a number a workspace of this deployment holds.

    Held is enough (a suspended number too): such a number is ours, so a carrier would
    only bring the call back; on the platform it gets the number's own answer.
    """
    if not destination.startswith("+"):
        return False
    held = await session.scalar(
        select(Number.id).where(Number.e164 == destination, Number.workspace_id.is_not(None))
    )
    return held is not None


#: On-net hops a call may take before a ``dial`` that would add one more is refused: a
#: number whose app dials itself (or two that dial each other) would otherwise ring
#: itself without end, each hop a new call.
MAX_ON_NET_HOPS = 5


class OnNetLoop(DestinationError):
    """A ``dial`` would take a call through this deployment once more than allowed."""


async def on_net_hops(session: AsyncSession, call_id: str | None) -> int:
    """How many on-net hops brought call ``call_id`` here: each hop is an inbound call
    whose SIP Call-ID is that of an on-net outbound leg (this platform's own INVITE),
    whose parent may have come the same way. Counts up to :data:`MAX_ON_NET_HOPS`."""
    hops = 0
    while call_id is not None and hops < MAX_ON_NET_HOPS:
        call = await session.get(Call, call_id)
        if call is None or call.direction != "inbound" or call.sip_call_id is None:
            break
        feeder = await session.scalar(
            select(Call).where(
                Call.sip_call_id == call.sip_call_id, Call.on_net.is_(True), Call.id != call.id
            )
        )
        if feeder is None:
            break
        hops += 1
        call_id = feeder.parent_call_id
    return hops


def _token_mac(secret_key: bytes, issued: int, nonce: str, caller: str, called: str) -> str:
    message = f"on-net|{issued}|{nonce}|{caller}|{called}".encode()
    return hmac.new(secret_key, message, hashlib.sha256).hexdigest()


def on_net_token(secret_key: bytes, caller: str, called: str, *, now: float | None = None) -> str:
    """The ``X-Sautikit-On-Net`` value for a call from ``caller`` to ``called``."""
    issued = int(time.time() if now is None else now)
    nonce = secrets.token_hex(8)
    return f"t={issued},n={nonce},v1={_token_mac(secret_key, issued, nonce, caller, called)}"


def verify_on_net_token(
    secret_key: bytes, value: str, caller: str, called: str, *, now: float | None = None
) -> bool:
    """Whether ``value`` is a fresh token of this deployment for this caller and number."""
    fields = dict(part.partition("=")[::2] for part in value.replace(" ", "").split(","))
    issued, nonce, mac = fields.get("t", ""), fields.get("n", ""), fields.get("v1", "")
    if not issued.isdigit() or not nonce or not mac:
        return False
    age = (time.time() if now is None else now) - int(issued)
    if not -5 <= age <= ON_NET_TOKEN_SECONDS:
        return False
    expected = _token_mac(secret_key, int(issued), nonce, caller, called)
    return hmac.compare_digest(expected, mac)


def on_net_route(e164: str, caller: str, platform: PlatformAddress, *, secret_key: bytes) -> Route:
    """An on-net call: to our own listener (loopback when it listens on every address:
    the advertised address may not hairpin behind a cloud's NAT), with its token."""
    host = platform.listen_host
    if is_wildcard(host):
        host = "::1" if ":" in host else "127.0.0.1"
    target = str(SipUri("sip", e164, platform.advertised_host, platform.port))
    token = on_net_token(secret_key, caller, e164)
    return Route(target, (host, platform.port, "udp"), None, ((ON_NET_HEADER, token),))


def choose_trunk(
    trunks: list[Trunk], e164: str, is_down: Callable[[str], bool] = lambda _: False
) -> Trunk:
    """The trunk whose longest prefix matches ``e164``, among those not down (OPTIONS
    pings, :mod:`sautikit.pbx.trunk_health`); when every match is down, the best of them
    anyway (the pings may be behind)."""
    best: tuple[int, Trunk] | None = None
    best_up: tuple[int, Trunk] | None = None
    for trunk in trunks:
        for prefix in trunk.prefixes:
            if not e164.startswith(prefix):
                continue
            if best is None or len(prefix) > best[0]:
                best = (len(prefix), trunk)
            if not is_down(trunk.name) and (best_up is None or len(prefix) > best_up[0]):
                best_up = (len(prefix), trunk)
    chosen = best_up or best
    if chosen is None:
        raise NoRoute(f"no carrier trunk carries {e164}")
    return chosen[1]


def trunk_credentials(trunk: Trunk, secret_key: bytes) -> tuple[str, str] | None:
    """The trunk's digest login (username, password, and the algorithms it may answer
    with: :class:`ClientCredentials`), or None when it has none."""
    if not trunk.username:
        return None
    password = (
        decrypt_secret(trunk.password_encrypted, secret_key, context=f"trunk:{trunk.name}")
        if trunk.password_encrypted
        else ""
    )
    return ClientCredentials(trunk.username, password, trunk.digest_algorithms)


def route_destination(
    trunks: list[Trunk],
    kind: str,
    address: str,
    *,
    secret_key: bytes,
    is_down: Callable[[str], bool] = lambda _: False,
) -> Route:
    """Route an E.164 number through its trunk, a SIP URI straight to its host."""
    if kind != "e164" and kind != "number":
        return Route(address, None, None)
    trunk = choose_trunk(trunks, address, is_down)
    user = address if trunk.dial_prefix in ("", "+") else trunk.dial_prefix + address[1:]
    credentials = trunk_credentials(trunk, secret_key)
    params: dict[str, str | None] = {"transport": "tls"} if trunk.transport == "tls" else {}
    # Port 0: the trunk's host is a domain whose SRV records name ports (RFC 3263).
    target = str(SipUri("sip", user, trunk.host, trunk.port or None, params=params))
    srtp: SrtpMode = "required" if trunk.srtp == "required" else "optional"
    destination = (trunk.host, trunk.port, trunk.transport)
    return Route(target, destination, credentials, srtp=srtp, trunk=trunk.name)


def _trunk_sends_from(trunk: Trunk, source: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    for entry in trunk.inbound_addresses:
        try:
            if source in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def trunk_trusts(trunks: list[Trunk], address: str) -> bool:
    """Whether an INVITE from ``address`` comes from a carrier trunk (trusted by address)."""
    try:
        source = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(_trunk_sends_from(trunk, source) for trunk in trunks)


class Trunks:
    """The carrier trunks as this process last read them (the CLI and the API change them)."""

    def __init__(self, secret_key: bytes, resolver: SipResolver | None = None) -> None:
        self._secret_key = secret_key
        self._trunks: list[Trunk] = []
        self.resolver = resolver or SipResolver()
        #: The OPTIONS pings, when running: down trunks are skipped, dead addresses last.
        self.health: TrunkHealth | None = None

    async def reload(self, session: AsyncSession) -> None:
        self._trunks = list((await session.scalars(select(Trunk))).all())

    def trusts(self, host: str) -> bool:
        """Whether INVITEs from ``host`` come from a carrier trunk (no digest needed)."""
        return trunk_trusts(self._trunks, host)

    def credentials_for(self, host: str) -> tuple[str, str] | None:
        """The login of the trunk at ``host`` — the one calls go to there, or that brings
        calls in from there — for answering its digest challenge to a request of ours in
        a call (a BYE, a re-INVITE), whichever way the call went."""
        try:
            source: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(
                host
            )
        except ValueError:
            source = None
        for trunk in self._trunks:
            if trunk.host == host or (source is not None and _trunk_sends_from(trunk, source)):
                found = trunk_credentials(trunk, self._secret_key)
                if found is not None:
                    return found
        return None

    def requires_srtp_from(self, host: str) -> bool:
        """Whether a trunk that brings calls in from ``host`` requires SRTP."""
        try:
            source = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(
            trunk.srtp == "required" and _trunk_sends_from(trunk, source) for trunk in self._trunks
        )

    def route(self, to: str, *, caller: str = "", on_net: PlatformAddress | None = None) -> Route:
        """Where a leg to ``to`` (E.164 or a SIP URI) goes: with ``on_net`` (the call was
        found on-net at admission) this platform at that address, else a trunk or the
        URI's host; raises :class:`NoRoute`."""
        if on_net is not None:
            return on_net_route(to, caller, on_net, secret_key=self._secret_key)
        kind = "e164" if to.startswith("+") else "sip"
        health = self.health
        return route_destination(
            self._trunks,
            kind,
            to,
            secret_key=self._secret_key,
            is_down=health.is_down if health is not None else lambda _: False,
        )

    async def peers(self, route: Route) -> list[Peer]:
        """Where a trunk's call goes, in the order to try (RFC 3263: NAPTR, SRV, A;
        addresses the pings found dead last); empty for other routes. Raises ``OSError``
        when DNS knows no address for the trunk."""
        if route.trunk is None or route.destination is None:
            return []
        host, port, transport = route.destination
        if transport == "tls" and port:
            return []  # the TLS transport connects by name: it checks the certificate by it
        targets = await self.resolver.resolve(host, port or None, cast(Transport, transport))
        if self.health is not None:
            targets = self.health.order(route.trunk, targets)
        if not targets:
            raise OSError(f"trunk {route.trunk}: DNS has no address for {host}")
        return [Peer(target.transport, target.host, target.port) for target in targets]

    def addresses(self) -> list[TrunkAddress]:
        """The trunks that carry calls out, as the pings see them."""
        return [
            TrunkAddress(trunk.name, trunk.host, trunk.port, cast(Transport, trunk.transport))
            for trunk in self._trunks
            if trunk.prefixes
        ]

    def on_net_caller(self, request: Request) -> bool:
        """Whether ``request`` is an on-net call from this deployment (a valid token for
        its From and Request-URI users): no digest is asked of it."""
        token = request.headers.get(ON_NET_HEADER)
        if token is None:
            return False
        caller = request.from_.uri.user or ""
        called = normalise_number(request.uri.user or "")
        return verify_on_net_token(self._secret_key, token, caller, called)
