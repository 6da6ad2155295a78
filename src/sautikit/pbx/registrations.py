"""Device registrations in the database (``sip_registrations``).

The registrar (:mod:`sautikit.sip.registrar_service`) keeps bindings on a monotonic clock;
here they become wall-clock rows, so that a restarted process and every other process of
the deployment find the same phones. :meth:`RegistrationStore.save` is the registrar's
``persist`` hook (the 200 OK waits for it); :meth:`RegistrationStore.load` is what a
process reads back at start and on its maintenance timer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from sautikit.db import Database
from sautikit.db.models import SipRegistration
from sautikit.db.types import utcnow
from sautikit.sip.registrar import Binding, Source
from sautikit.sip.registrar_service import address_of_record
from sautikit.sip.transport import Peer, transport_named
from sautikit.sip.uri import NameAddress, SipUri

__all__ = ["DeviceReach", "RegistrationStore", "live_registrations", "reach", "source_of"]


@dataclass(frozen=True)
class DeviceReach:
    """How to send an INVITE to a registered device."""

    contact: str
    """The Request-URI: the binding's Contact."""
    destination: Peer | None
    """Where the INVITE goes: the first proxy of the Path, else the REGISTER's source
    (the NAT's mapping), else the Contact itself (None)."""
    route: tuple[str, ...] = ()
    """Route header values: the Path, so the proxies in front see the request again."""


def reach(binding: Binding) -> DeviceReach:
    """The one rule for calling a registered device (RFC 3327 §5.3, RFC 3581)."""
    if binding.path:
        first = NameAddress.parse(binding.path[0]).uri
        transport = transport_named(first.params.get("transport") or "udp")
        default_port = 5061 if transport == "tls" else 5060
        hop = Peer(transport, first.host.strip("[]"), first.port or default_port)
        return DeviceReach(binding.contact, hop, binding.path)
    source = binding.source
    if source is None:
        return DeviceReach(binding.contact, None)
    peer = Peer(transport_named(source.transport), source.host, source.port)
    return DeviceReach(binding.contact, peer)


class RegistrationStore:
    """Reads and writes one deployment's bindings; ``clock`` is the registrar's clock."""

    def __init__(
        self, database: Database, *, node: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.database = database
        self.node = node
        self._clock = clock

    async def save(self, aor: str, bindings: list[Binding], now: float) -> None:
        """Make the stored bindings of ``aor`` exactly ``bindings`` (none: unregistered)."""
        wall = utcnow()

        async def job(session: AsyncSession) -> None:
            await session.execute(delete(SipRegistration).where(SipRegistration.aor == aor))
            for binding in bindings:
                source = binding.source
                session.add(
                    SipRegistration(
                        aor=aor,
                        contact=binding.contact,
                        source_host=source.host if source else None,
                        source_port=source.port if source else None,
                        source_transport=source.transport if source else None,
                        call_id=binding.call_id,
                        cseq=binding.cseq,
                        q=binding.q,
                        path=list(binding.path) or None,
                        registered_at=wall - timedelta(seconds=now - binding.registered_at),
                        expires_at=wall + timedelta(seconds=binding.expires_at - now),
                        node=self.node,
                    )
                )

        await self.database.write(job, what="registration")

    async def load(self) -> list[Binding]:
        """Every binding that has not expired, on the registrar's clock."""
        wall = utcnow()
        now = self._clock()
        async with self.database.sessions() as session:
            rows = (
                await session.scalars(
                    select(SipRegistration).where(SipRegistration.expires_at > wall)
                )
            ).all()
        bindings = []
        for row in rows:
            source = source_of(row)
            bindings.append(
                Binding(
                    aor=row.aor,
                    contact=row.contact,
                    expires_at=now + (row.expires_at - wall).total_seconds(),
                    registered_at=now - (wall - row.registered_at).total_seconds(),
                    call_id=row.call_id,
                    cseq=row.cseq,
                    q=row.q,
                    source=source,
                    path=tuple(row.path or ()),
                )
            )
        return bindings


def source_of(row: SipRegistration) -> Source | None:
    """Where the stored binding's REGISTER came from (the received address)."""
    if row.source_host is None or row.source_port is None:
        return None
    return Source(row.source_host, row.source_port, row.source_transport or "udp")


async def live_registrations(
    session: AsyncSession, usernames: Iterable[str]
) -> dict[str, list[SipRegistration]]:
    """The unexpired stored bindings of each digest username (its AoR), newest first."""
    aors = {address_of_record(SipUri("sip", name, "registrar")): name for name in usernames}
    found: dict[str, list[SipRegistration]] = {name: [] for name in aors.values()}
    if not aors:
        return found
    rows = await session.scalars(
        select(SipRegistration)
        .where(SipRegistration.aor.in_(aors), SipRegistration.expires_at > utcnow())
        .order_by(SipRegistration.registered_at.desc())
    )
    for row in rows:
        found[aors[row.aor]].append(row)
    return found
