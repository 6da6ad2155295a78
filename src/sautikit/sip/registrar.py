"""The registrar's binding store: which contacts an address-of-record reaches right now.

Pure bookkeeping for REGISTER (RFC 3261 §10.3), with no transport, no parsing and no clock
of its own: the caller passes the parsed Contact values, Call-ID, CSeq, Expires and the
current time, and answers with the status this module returns. Authentication happens
before (see :mod:`sautikit.sip.digest`).

Followed from RFC 3261 §10.3:

* step 6: ``Contact: *`` with ``Expires: 0`` removes every binding, ``*`` in any other
  form is a 400; an expiry of 0 removes one binding;
* step 7: per-contact ``expires`` over the ``Expires`` header over the registrar default;
  too short is 423 with ``Min-Expires`` (§10.3 and §21.4.17), too long is shortened;
  per Call-ID, a CSeq not above the stored one aborts the whole request, and the update
  is applied all or nothing;
* step 8: the answer lists every current binding with its remaining time.

Each binding also keeps the source address and transport the REGISTER came from: a device
behind NAT is reached there, not at the private address in its Contact; and the Path
(RFC 3327) the proxies in front added: a device registered through one is reached back
through the same proxies.

AoRs and contact URIs are compared as exact strings, so the caller passes them in one
canonical form (RFC 3261 §19.1.4 comparison is the URI layer's job).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from sautikit.sip.uri import SipUri

__all__ = [
    "Binding",
    "ContactRequest",
    "RegisterResult",
    "Registrar",
    "Source",
    "received_elsewhere",
]

_WILDCARD = "*"


@dataclass(frozen=True)
class Source:
    """Where a REGISTER arrived from: the address that reaches the device through NAT."""

    host: str
    port: int
    transport: str = "udp"


def received_elsewhere(contact: str, source: Source | None) -> bool:
    """Whether a REGISTER came from another address than its Contact names (host and
    port): the phone is behind NAT, reachable only at ``source`` (Kamailio's
    ``nat_uac_test`` 2, "received differs from Contact")."""
    if source is None:
        return False
    try:
        uri = SipUri.parse(contact)
    except ValueError:
        return False
    return (uri.host, uri.port or 5060) != (source.host, source.port)


class ContactRequest(NamedTuple):
    """One Contact of a REGISTER: the URI, its ``expires`` and ``q`` parameters if given."""

    uri: str
    expires: int | None = None
    q: float | None = None


@dataclass(frozen=True)
class Binding:
    """One contact bound to an address-of-record until ``expires_at``."""

    aor: str
    contact: str
    expires_at: float
    registered_at: float
    call_id: str
    cseq: int
    q: float = 1.0
    source: Source | None = None
    path: tuple[str, ...] = ()
    """The REGISTER's Path values, nearest proxy first: the Route set to reach it by."""

    def expires_in(self, now: float) -> int:
        """Whole seconds left, rounded up, as the 200 OK's ``expires`` parameter."""
        return max(0, math.ceil(self.expires_at - now))

    def is_expired(self, now: float) -> bool:
        return self.expires_at <= now


@dataclass(frozen=True)
class RegisterResult:
    """The answer to send: status, and the bindings the 200 OK lists.

    ``min_expires`` is set with 423 Interval Too Brief: send it as ``Min-Expires``.
    """

    status_code: int
    reason: str
    bindings: tuple[Binding, ...] = ()
    min_expires: int | None = None

    @property
    def ok(self) -> bool:
        return self.status_code == 200


class Registrar:
    """In-memory bindings for every AoR, updated by REGISTER and aged by an injected clock.

    ``now`` is any monotonic seconds value the caller keeps consistent across calls.
    """

    def __init__(
        self,
        *,
        min_expires: int = 60,
        max_expires: int = 3600,
        default_expires: int = 3600,
        max_contacts_per_aor: int = 10,
    ) -> None:
        if not 0 < min_expires <= default_expires <= max_expires:
            raise ValueError("need 0 < min_expires <= default_expires <= max_expires")
        self.min_expires = min_expires
        self.max_expires = max_expires
        self.default_expires = default_expires
        self.max_contacts_per_aor = max_contacts_per_aor
        self._bindings: dict[str, dict[str, Binding]] = {}

    def register(
        self,
        aor: str,
        contacts: Sequence[ContactRequest | tuple[str, int | None]],
        *,
        call_id: str,
        cseq: int,
        now: float,
        expires: int | None = None,
        source: Source | None = None,
        path: Sequence[str] = (),
        max_lifetime: float | None = None,
    ) -> RegisterResult:
        """Apply one REGISTER for ``aor``; ``expires`` is its ``Expires`` header, if any;
        no binding lives past ``max_lifetime`` seconds (a token's end), when given.

        No contacts is a query. Either every change applies or none does.
        """
        requests = [ContactRequest(*contact) for contact in contacts]
        current = self._live(aor, now)
        if any(request.uri == _WILDCARD for request in requests):
            return self._remove_all(aor, requests, current, call_id, cseq, expires, now)
        staged = dict(current)
        ceiling = math.inf if max_lifetime is None else max_lifetime
        for request in requests:
            lifetime = request.expires if request.expires is not None else expires
            lifetime = self.default_expires if lifetime is None else lifetime
            if lifetime < 0:
                return RegisterResult(400, "Bad Request (negative expires)")
            if 0 < lifetime < self.min_expires:
                return RegisterResult(423, "Interval Too Brief", min_expires=self.min_expires)
            q = 1.0 if request.q is None else request.q
            if not 0.0 <= q <= 1.0:
                return RegisterResult(400, "Bad Request (q out of range)")
            existing = current.get(request.uri)
            if existing is not None and existing.call_id == call_id and cseq <= existing.cseq:
                return RegisterResult(400, "Bad Request (CSeq not above the last REGISTER)")
            if lifetime == 0:
                staged.pop(request.uri, None)
                continue
            staged[request.uri] = Binding(
                aor=aor,
                contact=request.uri,
                expires_at=now + min(lifetime, self.max_expires, ceiling),
                registered_at=now,
                call_id=call_id,
                cseq=cseq,
                q=q,
                source=source,
                path=tuple(path),
            )
        if len(staged) > self.max_contacts_per_aor:
            return RegisterResult(403, "Forbidden (too many contacts)")
        self._store(aor, staged)
        return RegisterResult(200, "OK", tuple(_ordered(staged.values())))

    def _remove_all(
        self,
        aor: str,
        requests: list[ContactRequest],
        current: dict[str, Binding],
        call_id: str,
        cseq: int,
        expires: int | None,
        now: float,
    ) -> RegisterResult:
        """RFC 3261 §10.3 step 6: ``Contact: *`` removes every binding of the AoR."""
        [wildcard, *others] = requests
        lifetime = wildcard.expires if wildcard.expires is not None else expires
        if others or wildcard.uri != _WILDCARD or lifetime != 0:
            return RegisterResult(400, "Bad Request (Contact: * needs Expires: 0 and no other)")
        for binding in current.values():
            if binding.call_id == call_id and cseq <= binding.cseq:
                return RegisterResult(400, "Bad Request (CSeq not above the last REGISTER)")
        self._store(aor, {})
        return RegisterResult(200, "OK")

    def lookup(self, aor: str, now: float) -> list[Binding]:
        """The AoR's live bindings, preferred (highest q, then newest) first."""
        return _ordered(self._live(aor, now).values())

    def all_bindings(self, now: float) -> list[Binding]:
        """Every live binding of every AoR."""
        return [b for aor in self._bindings for b in self._live(aor, now).values()]

    def expire(self, now: float) -> list[Binding]:
        """Drop every binding whose time is up and return them (for logs and events)."""
        dropped: list[Binding] = []
        for aor in list(self._bindings):
            bindings = self._bindings[aor]
            dropped += [b for b in bindings.values() if b.is_expired(now)]
            self._store(aor, {c: b for c, b in bindings.items() if not b.is_expired(now)})
        return dropped

    def replace_all(self, bindings: Iterable[Binding], *, keep: Collection[str] = ()) -> None:
        """Take ``bindings`` (read from shared storage) as the whole store, except for the
        AoRs in ``keep``, whose bindings here are newer than storage (a write on its way)."""
        store: dict[str, dict[str, Binding]] = {
            aor: self._bindings[aor] for aor in keep if aor in self._bindings
        }
        for binding in bindings:
            if binding.aor not in keep:
                store.setdefault(binding.aor, {})[binding.contact] = binding
        self._bindings = store

    def _live(self, aor: str, now: float) -> dict[str, Binding]:
        bindings = self._bindings.get(aor, {})
        return {contact: b for contact, b in bindings.items() if not b.is_expired(now)}

    def _store(self, aor: str, bindings: dict[str, Binding]) -> None:
        if bindings:
            self._bindings[aor] = bindings
        else:
            self._bindings.pop(aor, None)


def _ordered(bindings: Iterable[Binding]) -> list[Binding]:
    return sorted(bindings, key=lambda b: (-b.q, -b.registered_at))
