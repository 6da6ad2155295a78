"""Locating SIP servers (RFC 3263): NAPTR, SRV and A/AAAA, in the order to try them.

A carrier publishes ``sip.carrier.example`` and its DNS says which hosts, ports and
transports serve it, in which order, and which take over when one fails. §4:

* an IP literal is its own target (port 5060 unless given);
* a name with an explicit port is looked up as A/AAAA only, with that port;
* otherwise, without a transport, NAPTR records (``SIP+D2U``, ``SIP+D2T``, ``SIPS+D2T``)
  order the transports and name the SRV records; with a transport, or without NAPTR
  records, ``_sip._udp`` / ``_sip._tcp`` / ``_sips._tcp`` SRV records are asked for;
* SRV targets are tried by priority, and by weight within one priority (RFC 2782: a
  weighted random order), each target's A/AAAA addresses in turn;
* with no SRV record, the name's own A/AAAA addresses on 5060.

:class:`SipResolver` answers the whole ordered list of :class:`SipTarget` at once; the
caller tries them in turn (:mod:`sautikit.sip.session` fails over on 503, a timeout or
a transport error). ``nameservers`` points it at given servers (tests run one on
loopback), else the system's resolver settings are used.
"""

from __future__ import annotations

import ipaddress
import logging
import random
from dataclasses import dataclass
from typing import Literal, cast

import dns.asyncresolver
import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver
from dns.rdtypes.IN.NAPTR import NAPTR
from dns.rdtypes.IN.SRV import SRV

__all__ = ["SipResolver", "SipTarget", "order_srv"]

log = logging.getLogger(__name__)

Transport = Literal["udp", "tcp", "tls"]

#: NAPTR services (RFC 3263 §4.1) and the SRV prefixes (§4.2) of each transport.
_NAPTR_SERVICES: dict[str, Transport] = {"SIP+D2U": "udp", "SIP+D2T": "tcp", "SIPS+D2T": "tls"}
_SRV_PREFIX: dict[Transport, str] = {"udp": "_sip._udp", "tcp": "_sip._tcp", "tls": "_sips._tcp"}
_DEFAULT_PORT: dict[Transport, int] = {"udp": 5060, "tcp": 5060, "tls": 5061}


@dataclass(frozen=True)
class SipTarget:
    """One address to send to: an IP address, its port and transport."""

    host: str
    port: int
    transport: Transport


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def order_srv(records: list[SRV], rng: random.Random | None = None) -> list[SRV]:
    """RFC 2782: lowest priority first; within one priority a random order weighted by
    ``weight`` (a weight-0 record is picked last unless alone)."""
    chooser = rng or random.Random()
    ordered: list[SRV] = []
    for priority in sorted({record.priority for record in records}):
        group = [record for record in records if record.priority == priority]
        while group:
            total = sum(record.weight for record in group)
            if total == 0:
                ordered.extend(group)
                break
            pick = chooser.uniform(0, total)
            running = 0
            for index, record in enumerate(group):
                running += record.weight
                if record.weight and running >= pick:
                    ordered.append(group.pop(index))
                    break
    return ordered


class SipResolver:
    """RFC 3263 §4 resolution; see the module docstring. ``supported`` are the transports
    we can use, in our order of preference when NAPTR leaves a choice."""

    def __init__(
        self,
        nameservers: list[tuple[str, int]] | None = None,
        *,
        timeout: float = 2.0,
        supported: tuple[Transport, ...] = ("udp", "tcp"),
    ) -> None:
        if nameservers:
            resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.nameservers = [host for host, _ in nameservers]
            resolver.port = nameservers[0][1]
        else:
            resolver = dns.asyncresolver.Resolver()
        resolver.lifetime = timeout
        self._resolver = resolver
        self.supported = supported

    async def resolve(
        self, host: str, port: int | None = None, transport: Transport | None = None
    ) -> list[SipTarget]:
        """Every target for ``host`` in the order to try them; empty when DNS knows none."""
        if _is_ip(host):
            chosen = transport or "udp"
            return [SipTarget(host, port or _DEFAULT_PORT[chosen], chosen)]
        if port:
            chosen = transport or "udp"
            return [SipTarget(address, port, chosen) for address in await self._addresses(host)]
        services: list[tuple[Transport, str]]
        if transport is not None:
            services = [(transport, f"{_SRV_PREFIX[transport]}.{host}")]
        else:
            services = await self._naptr(host) or [
                (kind, f"{_SRV_PREFIX[kind]}.{host}") for kind in self.supported
            ]
        targets: list[SipTarget] = []
        for kind, srv_name in services:
            for record in order_srv(await self._srv(srv_name)):
                target = record.target.to_text(omit_final_dot=True)
                for address in await self._addresses(target):
                    targets.append(SipTarget(address, record.port, kind))
        if targets:
            return list(dict.fromkeys(targets))
        chosen = transport or self.supported[0]
        return [
            SipTarget(address, _DEFAULT_PORT[chosen], chosen)
            for address in await self._addresses(host)
        ]

    async def _query(self, name: str, rdtype: dns.rdatatype.RdataType) -> list[object]:
        try:
            answer = await self._resolver.resolve(name, rdtype, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.NoNameservers):
            return []
        except dns.exception.Timeout:
            log.info("DNS %s %s timed out", rdtype.name, name)
            return []
        return list(answer)

    async def _naptr(self, host: str) -> list[tuple[Transport, str]]:
        """§4.1: the NAPTR records of transports we support, by order then preference."""
        records = cast(list[NAPTR], await self._query(host, dns.rdatatype.NAPTR))
        usable: list[tuple[int, int, Transport, str]] = []
        for record in records:
            service = record.service.decode("ascii", "replace").upper()
            kind = _NAPTR_SERVICES.get(service)
            if kind is None or kind not in self.supported or record.flags.lower() != b"s":
                continue
            replacement = record.replacement.to_text(omit_final_dot=True)
            usable.append((record.order, record.preference, kind, replacement))
        return [(kind, name) for _, _, kind, name in sorted(usable)]

    async def _srv(self, name: str) -> list[SRV]:
        records = cast(list[SRV], await self._query(name, dns.rdatatype.SRV))
        # RFC 2782: a lone "." target says the service is decidedly not available.
        return [record for record in records if record.target != dns.name.root]

    async def _addresses(self, host: str) -> list[str]:
        if _is_ip(host):
            return [host]
        found: list[str] = []
        for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            found += [str(record) for record in await self._query(host, rdtype)]
        return found
