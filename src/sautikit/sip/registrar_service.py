"""The registrar service (RFC 3261 §10.3): REGISTER requests in, bindings out.

It sits between the user agent's dispatch and the pure binding store of
:mod:`sautikit.sip.registrar`: each REGISTER is authenticated (:mod:`sautikit.sip.server_auth`,
401 until the digest is right), must name the caller's own address-of-record (403
otherwise), and is answered with the bindings now held (423 with Min-Expires for a too
brief expiry). A Path (RFC 3327) that proxies in front added is kept with the bindings and
echoed in the 200 (§5.3): requests to the phone are sent back along it.

With ``persist`` the bindings are shared storage's too (a database, so that they survive
a restart and every process sees them): after a change the AoR's bindings are handed to
``persist`` and the 200 goes out only once it has them; :meth:`RegistrarService.reload`
takes storage's view back.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any

from sautikit.sip.dialog import new_tag
from sautikit.sip.message import Request, Response
from sautikit.sip.registrar import (
    Binding,
    ContactRequest,
    Registrar,
    Source,
    received_elsewhere,
)
from sautikit.sip.server_auth import ServerAuth
from sautikit.sip.session import respond
from sautikit.sip.transaction import ServerTransaction
from sautikit.sip.uri import NameAddress, SipUri

__all__ = ["BindingSink", "RegistrarService", "address_of_record", "contact_requests"]

logger = logging.getLogger(__name__)

#: ``(aor, its bindings now, now on the registrar's clock)``: store an AoR's bindings.
BindingSink = Callable[[str, list[Binding], float], Awaitable[None]]
Spawn = Callable[[Coroutine[Any, Any, Any], str], None]


class RegistrarService:
    """Serves REGISTER into ``registrar`` behind ``auth``, aging bindings by ``clock``."""

    def __init__(
        self,
        registrar: Registrar,
        auth: ServerAuth,
        clock: Callable[[], float],
        *,
        persist: BindingSink | None = None,
        spawn: Spawn | None = None,
    ) -> None:
        if persist is not None and spawn is None:
            raise ValueError("persisting bindings needs a way to run the write")
        self.registrar = registrar
        self.auth = auth
        self._clock = clock
        self._persist = persist
        self._spawn = spawn
        #: AoRs whose change is being written: a reload must not undo it meanwhile.
        self._writing: set[str] = set()

    def natted(self) -> list[Binding]:
        """Live bindings whose REGISTER came from elsewhere than their Contact names: the
        phone is behind NAT, and only its traffic keeps the router's mapping open."""
        found = []
        for binding in self.registrar.all_bindings(self._clock()):
            source = binding.source
            if source is None or source.transport != "udp" or binding.path:
                continue  # behind a proxy, the proxy keeps the NAT open (RFC 5626 edge)
            if received_elsewhere(binding.contact, source):
                found.append(binding)
        return found

    def reload(self, bindings: Iterable[Binding]) -> None:
        """Storage's bindings become ours (another process registered or unregistered)."""
        self.registrar.replace_all(bindings, keep=self._writing)

    def lookup(self, aor: str | SipUri) -> list[Binding]:
        """The registered contacts of an address-of-record (``sip:alice@example.com``)."""
        uri = SipUri.parse(aor) if isinstance(aor, str) else aor
        return self.registrar.lookup(address_of_record(uri), self._clock())

    def on_register(self, transaction: ServerTransaction) -> None:
        request = transaction.request
        authenticated = self.auth.authenticate_request(transaction, proxy=False)
        if authenticated is None:
            return
        username = authenticated.username
        to_uri = request.to.uri
        if to_uri.user != username:
            respond(transaction, request.create_response(403, "Forbidden (not your AoR)"))
            return
        try:
            expires_header = request.headers.get("Expires")
            expires = int(expires_header) if expires_header is not None else None
            contacts = contact_requests(request)
            path = [str(NameAddress.parse(value)) for value in request.headers.get_all("Path")]
        except ValueError as error:
            respond(transaction, request.create_response(400, f"Bad Request: {error}"[:120]))
            return
        peer = transaction.peer
        aor = address_of_record(to_uri)
        result = self.registrar.register(
            aor,
            contacts,
            call_id=request.call_id,
            cseq=request.cseq.number,
            now=self._clock(),
            expires=expires,
            source=Source(peer.host, peer.port, peer.transport),
            path=path,
            # A binding made with a token ends with it: the browser refreshes with a new one.
            max_lifetime=authenticated.valid_for,
        )
        response = request.create_response(result.status_code, result.reason, to_tag=new_tag())
        if result.min_expires is not None:
            response.headers.add("Min-Expires", str(result.min_expires))
        if result.ok and path:
            for hop in path:
                response.headers.add("Path", hop)
        now = self._clock()
        for binding in result.bindings:
            response.headers.add(
                "Contact", f"<{binding.contact}>;expires={binding.expires_in(now)}"
            )
        asked = {contact.uri for contact in contacts}
        granted = [b.expires_in(now) for b in result.bindings if b.contact in asked]
        if result.ok and contacts:
            response.headers.add("Expires", str(granted[0] if granted else 0))
        if self._persist is None or not (result.ok and contacts) or self._spawn is None:
            respond(transaction, response)
            return
        self._writing.add(aor)
        self._spawn(self._store_then_respond(transaction, response, aor, now), "REGISTER")

    async def _store_then_respond(
        self, transaction: ServerTransaction, response: Response, aor: str, now: float
    ) -> None:
        assert self._persist is not None
        try:
            await self._persist(aor, self.registrar.lookup(aor, now), now)
        except Exception:
            logger.exception("storing the bindings of %s failed", aor)
            response = transaction.request.create_response(500, to_tag=new_tag())
            response.headers.add("Retry-After", "5")
        finally:
            self._writing.discard(aor)
        respond(transaction, response)


def address_of_record(uri: SipUri) -> str:
    """The key of a URI's bindings: scheme and user, without the host.

    A digest username is unique across the installation and REGISTER is only accepted
    for the caller's own user, so the host adds nothing, and leaving it out means a phone
    that registered to ``sip:alice@203.0.113.5`` (the public address), to a DNS name or
    to the listen address is found the same way. A URI without a user keys by its host.
    ``sips:alice`` is alice too (RFC 5630: the same resource, reached over TLS; the
    binding's own Contact says how to reach the phone).
    """
    scheme = "sip" if uri.scheme == "sips" else uri.scheme
    if uri.user:
        return f"{scheme}:{uri.user}"
    return f"{scheme}:{uri.host.lower()}"


def contact_requests(request: Request) -> list[ContactRequest]:
    """The REGISTER's Contacts as registrar input; raises ValueError on a bad parameter."""
    if any(value.strip() == "*" for value in request.headers.get_all("Contact")):
        return [ContactRequest("*")]
    contacts = []
    for contact in request.contacts:
        expires = contact.params.get("expires")
        q = contact.params.get("q")
        contacts.append(
            ContactRequest(
                str(contact.uri),
                int(expires) if expires is not None else None,
                float(q) if q is not None else None,
            )
        )
    return contacts
