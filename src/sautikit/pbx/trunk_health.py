"""Trunk health: OPTIONS pings to each carrier address, and calls kept off dead ones.

A carrier's SBC that stopped answering should not cost each call 32 s of INVITE
retransmissions before failover. :class:`TrunkHealth` sends an OPTIONS (RFC 3261 §11) to
every address of every outbound trunk (its RFC 3263 targets, :mod:`sautikit.sip.dns`)
each ``interval`` seconds: any answer, even 404 or 405, says the host is alive (as
Kamailio's dispatcher and Asterisk's ``qualify`` take it); none within ``timeout`` seconds
marks it down. A trunk is down while every address of it is; the router
(:mod:`sautikit.calls.routing`) skips it for another trunk with a matching prefix, and
within a trunk the live addresses are tried first. ``on_change`` hears each trunk's
``up``/``down`` change (the call manager stores it for ``sautikit trunks list``, the
console and the API).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from sautikit.sip import Peer, SipUri, UserAgent
from sautikit.sip.dns import SipResolver, SipTarget

__all__ = ["Health", "TrunkAddress", "TrunkHealth"]

log = logging.getLogger(__name__)

Health = Literal["up", "down", "unknown"]


@dataclass(frozen=True)
class TrunkAddress:
    """What is pinged for one trunk: its name and where it is (port 0: ask SRV)."""

    name: str
    host: str
    port: int
    transport: Literal["udp", "tcp", "tls"]


@dataclass
class _TrunkState:
    health: Health = "unknown"
    targets: list[SipTarget] = field(default_factory=list)
    down: set[SipTarget] = field(default_factory=set)
    checked_at: float | None = None


class TrunkHealth:
    """See the module docstring. ``agent`` answers the user agent to ping from (None
    while SIP is not started)."""

    def __init__(
        self,
        agent: Callable[[], UserAgent | None],
        resolver: SipResolver,
        *,
        interval: float = 30.0,
        timeout: float = 5.0,
        on_change: Callable[[str, Health], Awaitable[None]] | None = None,
    ) -> None:
        self._agent = agent
        self.resolver = resolver
        self.interval = interval
        self.timeout = timeout
        self.on_change = on_change
        self._states: dict[str, _TrunkState] = {}

    def health(self, name: str) -> Health:
        state = self._states.get(name)
        return state.health if state is not None else "unknown"

    def is_down(self, name: str) -> bool:
        return self.health(name) == "down"

    def order(self, name: str, targets: Sequence[SipTarget]) -> list[SipTarget]:
        """``targets`` with the addresses found dead last (kept: the pings may be stale)."""
        state = self._states.get(name)
        down = state.down if state is not None else set()
        return [t for t in targets if t not in down] + [t for t in targets if t in down]

    async def check(self, trunks: Sequence[TrunkAddress]) -> None:
        """One round: ping every address of every trunk at once, then record the result."""
        await asyncio.gather(*(self._check_trunk(trunk) for trunk in trunks))
        for name in set(self._states) - {trunk.name for trunk in trunks}:
            del self._states[name]  # removed trunks

    async def _check_trunk(self, trunk: TrunkAddress) -> None:
        state = self._states.setdefault(trunk.name, _TrunkState())
        targets = await self.resolver.resolve(trunk.host, trunk.port or None, trunk.transport)
        answers = await asyncio.gather(*(self._ping(trunk, target) for target in targets))
        state.targets = targets
        state.down = {target for target, alive in zip(targets, answers, strict=True) if not alive}
        state.checked_at = time.time()
        health: Health = "up" if any(answers) else "down"
        if health != state.health:
            log.warning(
                "trunk %s is %s (%d of %d addresses answer OPTIONS)",
                trunk.name,
                health,
                sum(answers),
                len(targets),
            )
            state.health = health
            if self.on_change is not None:
                try:
                    await self.on_change(trunk.name, health)
                except Exception:
                    log.exception("recording trunk %s as %s failed", trunk.name, health)

    async def _ping(self, trunk: TrunkAddress, target: SipTarget) -> bool:
        agent = self._agent()
        if agent is None:
            return False
        uri = SipUri("sip", None, trunk.host, trunk.port or None)
        peer = Peer(target.transport, target.host, target.port)
        return await agent.ping(uri, peer, within=self.timeout)

    async def run(self, trunks: Callable[[], Sequence[TrunkAddress]]) -> None:
        """Check every ``interval`` seconds until cancelled."""
        while True:
            try:
                await self.check(trunks())
            except Exception:
                log.exception("trunk health check failed")
            await asyncio.sleep(self.interval)
