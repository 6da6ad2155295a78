"""SIP dialogs: the state two user agents share for the length of a call.

Bookkeeping over :mod:`sautikit.sip.message` with no I/O of its own: what to send and
when is decided here, sending it is the caller's job (the user agent core,
:mod:`sautikit.sip.useragent`, hands in a send function). It follows RFC 3261:

* §12.1.1 / §12.1.2 — :meth:`Dialog.from_uas` and :meth:`Dialog.from_uac` build a dialog
  from an INVITE and a 1xx-with-tag (early) or 2xx (confirmed) answer: Call-ID, local and
  remote tags and URIs, the route set from Record-Route (reversed on the UAC side), the
  remote target from Contact and the CSeq numbers; §13.2.2.4 recomputes a UAC's route set
  and target when the 2xx confirms an early dialog.
* §12.2.1.1 — :meth:`Dialog.create_request` makes in-dialog requests (loose routing: the
  Request-URI is the remote target and the route set goes into Route headers; strict
  routing is not supported), with the local CSeq incremented; :meth:`Dialog.next_hop`
  is where they go (the first Route, else the remote target).
* §12.2.2 — :meth:`Dialog.accept_remote_cseq` detects an out-of-order request (lower CSeq:
  answer 500); a request matching no dialog is the caller's 481.
* §13.2.2.4 — :meth:`Dialog.create_ack` builds the ACK for a 2xx: same CSeq number, the
  route set, the INVITE's credentials; the caller gives it a Via with a new branch.
* §13.3.1.4 — :class:`SuccessRetransmitter` re-sends a UAS's 2xx over unreliable
  transports at T1, doubling up to T2, until the ACK arrives, and reports when 64·T1 pass
  without one (the UA then sends BYE, §13.3.1.4 last paragraph).
* §12.2.1.2 / §14 — :meth:`Dialog.refresh_target` applies the Contact of a re-INVITE or
  of its 2xx (a target refresh).
"""

from __future__ import annotations

import asyncio
import enum
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from sautikit.sip.message import CSeq, Headers, Request, Response
from sautikit.sip.transaction import TimerConfig
from sautikit.sip.transport import Peer, TransportName, default_port, uri_transport
from sautikit.sip.uri import NameAddress, SipUri

__all__ = [
    "Dialog",
    "DialogId",
    "DialogState",
    "SuccessRetransmitter",
    "new_tag",
]

#: Methods whose requests carry a Contact and refresh the remote target (§12.2.1.1, §14).
_TARGET_REFRESH_METHODS = frozenset({"INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER"})


def new_tag() -> str:
    """A fresh From/To tag with at least 32 bits of randomness (§19.3)."""
    return secrets.token_hex(8)


class DialogState(enum.Enum):
    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


class DialogId(NamedTuple):
    """Call-ID, local tag and remote tag: what identifies a dialog at each end (§12)."""

    call_id: str
    local_tag: str
    remote_tag: str

    @classmethod
    def of_request(cls, request: Request) -> DialogId:
        """The id, seen from us, of the dialog a request we received belongs to."""
        return cls(request.call_id, request.to.tag or "", request.from_.tag or "")

    @classmethod
    def of_response(cls, response: Response) -> DialogId:
        """The id, seen from us, of the dialog a response to our request belongs to."""
        return cls(response.call_id, response.from_.tag or "", response.to.tag or "")


def _without_tag(address: NameAddress) -> NameAddress:
    params = {name: value for name, value in address.params.items() if name != "tag"}
    return NameAddress(address.uri, address.display_name, params)


def _contact_uri(message: Request | Response, fallback: SipUri) -> SipUri:
    contacts = message.contacts
    return contacts[0].uri if contacts else fallback


@dataclass(eq=False)
class Dialog:
    """One dialog (§12). Fields follow §12.1.1; ``local_cseq`` is the last number we used.

    ``transport`` is how in-dialog requests travel when the next hop's URI names none.
    ``remote_peer``, when set, is where in-dialog requests go when no route set names a
    hop, instead of the remote target's address: the source address of a far end behind
    NAT, whose Contact names a private address (the user agent sets it).
    """

    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: NameAddress
    remote_uri: NameAddress
    remote_target: SipUri
    local_contact: NameAddress
    local_cseq: int
    remote_cseq: int | None
    route_set: list[NameAddress] = field(default_factory=list)
    state: DialogState = DialogState.EARLY
    is_uac: bool = False
    transport: TransportName = "udp"
    remote_peer: Peer | None = None

    @classmethod
    def from_uas(
        cls,
        request: Request,
        response: Response,
        local_contact: NameAddress,
        transport: TransportName = "udp",
    ) -> Dialog:
        """The dialog an INVITE and our 1xx-with-tag or 2xx answer create (§12.1.1)."""
        local_tag = response.to.tag
        if not local_tag:
            raise ValueError("a dialog-creating response needs a To tag")
        return cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=request.from_.tag or "",
            local_uri=_without_tag(request.to),
            remote_uri=_without_tag(request.from_),
            remote_target=_contact_uri(request, request.from_.uri),
            local_contact=local_contact,
            # The local sequence space starts empty (§12.1.1): any number will do.
            local_cseq=secrets.randbelow(2**16),
            remote_cseq=request.cseq.number,
            route_set=request.record_routes,
            state=DialogState.CONFIRMED if response.is_success else DialogState.EARLY,
            is_uac=False,
            transport=transport,
        )

    @classmethod
    def from_uac(
        cls, request: Request, response: Response, transport: TransportName = "udp"
    ) -> Dialog:
        """The dialog our INVITE and its 1xx-with-tag or 2xx answer create (§12.1.2)."""
        remote_tag = response.to.tag
        if not remote_tag:
            raise ValueError("a dialog-creating response needs a To tag")
        contacts = request.contacts
        return cls(
            call_id=request.call_id,
            local_tag=request.from_.tag or "",
            remote_tag=remote_tag,
            local_uri=_without_tag(request.from_),
            remote_uri=_without_tag(response.to),
            remote_target=_contact_uri(response, request.uri),
            local_contact=contacts[0] if contacts else _without_tag(request.from_),
            local_cseq=request.cseq.number,
            remote_cseq=None,
            route_set=list(reversed(response.record_routes)),
            state=DialogState.CONFIRMED if response.is_success else DialogState.EARLY,
            is_uac=True,
            transport=transport,
        )

    @property
    def id(self) -> DialogId:
        return DialogId(self.call_id, self.local_tag, self.remote_tag)

    def confirm(self, response: Response | None = None) -> None:
        """Move to confirmed. A UAC passes the 2xx: its Record-Route and Contact replace
        what the early dialog learnt from a provisional answer (§13.2.2.4)."""
        if response is not None and self.is_uac:
            self.route_set = list(reversed(response.record_routes))
            self.remote_target = _contact_uri(response, self.remote_target)
        if self.state is not DialogState.TERMINATED:
            self.state = DialogState.CONFIRMED

    def terminate(self) -> None:
        self.state = DialogState.TERMINATED

    def refresh_target(self, message: Request | Response) -> None:
        """Take the Contact of a target-refresh request or of its 2xx (§12.2.1.2, §12.2.2)."""
        self.remote_target = _contact_uri(message, self.remote_target)

    def accept_remote_cseq(self, request: Request) -> bool:
        """Record an incoming in-dialog request's CSeq; False when it is out of order.

        §12.2.2: a number lower than the last one seen means the request arrived late and is
        answered 500. ACK and CANCEL reuse their INVITE's number and are not checked.
        """
        if request.method in ("ACK", "CANCEL"):
            return True
        number = request.cseq.number
        if self.remote_cseq is not None and number < self.remote_cseq:
            return False
        self.remote_cseq = number
        return True

    def _base_request(self, method: str, cseq: int) -> Request:
        headers = Headers()
        for route in self.route_set:
            headers.add("Route", str(route))
        local = NameAddress(
            self.local_uri.uri, self.local_uri.display_name, dict(self.local_uri.params)
        )
        local.params["tag"] = self.local_tag
        remote = NameAddress(
            self.remote_uri.uri, self.remote_uri.display_name, dict(self.remote_uri.params)
        )
        if self.remote_tag:
            remote.params["tag"] = self.remote_tag
        headers.add("From", str(local))
        headers.add("To", str(remote))
        headers.add("Call-ID", self.call_id)
        headers.add("CSeq", str(CSeq(cseq, method)))
        headers.add("Max-Forwards", "70")
        return Request(method=method, uri=SipUri.parse(str(self.remote_target)), headers=headers)

    def create_request(
        self,
        method: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> Request:
        """An in-dialog request (§12.2.1.1) with the next local CSeq, ready for a Via.

        ``body`` gets ``content_type`` (``application/sdp`` when a body has none named).
        Use :meth:`create_ack` for the ACK of a 2xx; a CANCEL is built from its INVITE.
        """
        if method in ("ACK", "CANCEL"):
            raise ValueError(f"{method} reuses its INVITE's CSeq: it is not a new request")
        if self.state is DialogState.TERMINATED:
            raise ValueError("the dialog has ended")
        self.local_cseq += 1
        request = self._base_request(method, self.local_cseq)
        if method in _TARGET_REFRESH_METHODS:
            request.headers.add("Contact", str(self.local_contact))
        for name, value in headers:
            request.headers.add(name, value)
        _attach_body(request, body, content_type)
        return request

    def create_ack(
        self, invite: Request, *, body: bytes = b"", content_type: str | None = None
    ) -> Request:
        """The ACK for a 2xx to ``invite`` (§13.2.2.4): same CSeq number, the route set,
        the INVITE's credentials (§22.1), and no Via yet: it needs a new branch."""
        request = self._base_request("ACK", invite.cseq.number)
        for name in ("Authorization", "Proxy-Authorization"):
            for value in invite.headers.get_all(name):
                request.headers.add(name, value)
        _attach_body(request, body, content_type)
        return request

    def next_hop(self) -> Peer:
        """Where in-dialog requests go: the first Route's URI, else ``remote_peer``, else
        the remote target.

        The URI's ``transport`` parameter (or a ``sips:`` scheme: TLS) wins over the
        dialog's transport; the port defaults to 5060 (5061 for TLS). Names are resolved by
        the transport when sending.
        """
        if not self.route_set and self.remote_peer is not None:
            return self.remote_peer
        uri = self.route_set[0].uri if self.route_set else self.remote_target
        transport = uri_transport(uri) or self.transport
        host = uri.params.get("maddr") or uri.host
        return Peer(transport, host, uri.port or default_port(transport))


def _attach_body(request: Request, body: bytes, content_type: str | None) -> None:
    if body:
        request.headers.set("Content-Type", content_type or "application/sdp")
        request.body = body


class SuccessRetransmitter:
    """Re-sends a UAS's 2xx to INVITE until the ACK arrives (§13.3.1.4).

    The first send is the transaction's; this sends again at T1, 2·T1, … capped at T2,
    over unreliable transports only. If 64·T1 pass without :meth:`acknowledge`,
    ``on_timeout`` runs once (over TCP too: the ACK is awaited either way).
    """

    def __init__(
        self,
        response: Response,
        send: Callable[[Response], None],
        timers: TimerConfig,
        on_timeout: Callable[[], None],
        *,
        reliable: bool = False,
    ) -> None:
        self.response = response
        self._send = send
        self._timers = timers
        self._on_timeout = on_timeout
        self._reliable = reliable
        self._interval = timers.t1
        self._loop = asyncio.get_running_loop()
        self._resend_handle: asyncio.TimerHandle | None = None
        self._timeout_handle: asyncio.TimerHandle | None = None
        self.active = False

    def start(self) -> None:
        self.active = True
        if not self._reliable:
            self._resend_handle = self._loop.call_later(self._interval, self._resend)
        self._timeout_handle = self._loop.call_later(
            self._timers.transaction_timeout, self._give_up
        )

    def acknowledge(self) -> None:
        """The ACK came: stop sending."""
        self.stop()

    def stop(self) -> None:
        self.active = False
        for handle in (self._resend_handle, self._timeout_handle):
            if handle is not None:
                handle.cancel()
        self._resend_handle = self._timeout_handle = None

    def _resend(self) -> None:
        if not self.active:
            return
        self._send(self.response)
        self._interval = min(2 * self._interval, self._timers.t2)
        self._resend_handle = self._loop.call_later(self._interval, self._resend)

    def _give_up(self) -> None:
        if self.active:
            self.stop()
            self._on_timeout()
