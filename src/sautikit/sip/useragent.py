"""The SIP user agent core: requests in, calls out, OPTIONS, and a registrar.

:class:`UserAgent` is the :class:`~sautikit.sip.transaction.TransactionUser` a PBX puts on
top of one :class:`~sautikit.sip.transport.SipTransportLayer`. Like libre's ``sip/`` and
pjsip's ``sip_ua``, it is the core the parts hang off; each part is its own module:

* :mod:`sautikit.sip.session` — the calls (UAS, UAC, re-INVITE and CANCEL as explicit
  state machines);
* :mod:`sautikit.sip.server_auth` and :mod:`sautikit.sip.client_auth` — digest, both
  halves;
* :mod:`sautikit.sip.registrar_service` — REGISTER (§10.3) into a
  :class:`~sautikit.sip.registrar.Registrar`.

What stays here is RFC 3261 §8.2 / §12.2.2: requests are checked before the call logic
sees them: unknown methods get 405 with Allow (§8.2.1), in-dialog requests matching no
dialog 481, an in-dialog request with a lower CSeq than the last one 500, a copy of an
INVITE we already have (same Call-ID, From tag and CSeq by another branch) 482
(§8.2.2.2); OPTIONS is answered 200 with Allow, Accept and Supported (§11.2). A new
INVITE becomes an :class:`~sautikit.sip.session.IncomingCall` handed to the owner's
``on_incoming_call`` coroutine (an ``authenticate_invite`` policy can demand digest
credentials first, 407); :meth:`UserAgent.place_call` sends one and returns an
:class:`~sautikit.sip.session.OutgoingCall`. A CANCEL for a pending INVITE is answered
200, and the INVITE 487 (§9.2).

Record-Route and Route are honoured in both roles; rport is the transport's job. A peer
that misbehaves never raises out of the user agent: everything the wire hands in is
parsed inside handlers that answer 400 or drop, and the owner's coroutines are watched.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import ssl
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any, cast, get_args

from sautikit.sip.auth_throttle import ThrottlePolicy
from sautikit.sip.dialog import Dialog, DialogId, new_tag
from sautikit.sip.digest import DEFAULT_CHALLENGE_ALGORITHMS, Ha1Lookup
from sautikit.sip.errors import SipParseError
from sautikit.sip.message import CSeq, Request, Response
from sautikit.sip.option_tags import OUR_OPTION_TAGS, unsupported
from sautikit.sip.registrar import Binding, Registrar
from sautikit.sip.registrar_service import BindingSink, RegistrarService
from sautikit.sip.sdp import SdpNegotiationError, SdpParseError, SessionDescription
from sautikit.sip.server_auth import (
    AlgorithmResolver,
    BearerVerifier,
    InvitePolicy,
    RealmResolver,
    ServerAuth,
)
from sautikit.sip.session import (
    SDP_CONTENT_TYPE,
    Call,
    CallEnd,
    CallError,
    CallFailed,
    CallState,
    EndReason,
    IncomingCall,
    IncomingCallHandler,
    OutgoingCall,
    ReinviteHandler,
    parse_body_sdp,
    respond,
    with_body,
)
from sautikit.sip.session_timer import SessionTimerConfig, request_headers, too_small
from sautikit.sip.tls import DEFAULT_SIPS_PORT
from sautikit.sip.transaction import (
    LOCAL_FAILURE_REASONS,
    InviteServerTransaction,
    ServerTransaction,
    TimerConfig,
    TransactionLayer,
)
from sautikit.sip.transport import (
    DEFAULT_SIP_PORT,
    Peer,
    SipTransportLayer,
    TransportName,
    default_port,
    is_websocket,
    uri_transport,
)
from sautikit.sip.uri import NameAddress, SipUri
from sautikit.sip.websocket import WebSocketListeners

__all__ = [
    "Call",
    "CallEnd",
    "CallError",
    "CallFailed",
    "CallState",
    "EndReason",
    "IncomingCall",
    "IncomingCallHandler",
    "InvitePolicy",
    "OutgoingCall",
    "RealmResolver",
    "ReinviteHandler",
    "UserAgent",
]

logger = logging.getLogger(__name__)

_BASE_METHODS = ("INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "INFO", "UPDATE", "PRACK", "REFER")
#: User-Agent fragments of SIP scanners seen on the internet (lower case).
_SCANNERS = (
    "friendly-scanner",
    "sipvicious",
    "sipcli",
    "sip-scan",
    "sipscan",
    "vaxsipuseragent",
    "pplsip",
    "iwar",
    "sundayddr",
)


class UserAgent:
    """A SIP user agent on one transport; see the module docstring.

    ``on_incoming_call`` receives each new :class:`IncomingCall` in its own task; it may
    answer, reject or keep the call waiting and return. If it raises
    ``SdpNegotiationError`` (``NoCommonCodec``) before answering, the INVITE gets 488; any
    other exception gets 500 (or BYE once answered). Without a handler INVITEs get 480.

    The registrar is on when ``lookup_ha1`` (``(username, realm, algorithm) -> HA1``) is
    given; ``realm_for`` picks the realm per request (default: the To host for REGISTER,
    the From host otherwise). ``authenticate_invite(request, source)`` returns True for
    INVITEs that must carry credentials (e.g. from devices; trunks are trusted by source).
    ``registrar`` (default: a new :class:`~sautikit.sip.registrar.Registrar`) keeps the
    bindings, aged by ``clock``; NATed phones get an OPTIONS every ``nat_keepalive``
    seconds (None: never), and ``persist_bindings`` stores the bindings (see
    :mod:`sautikit.sip.registrar_service`); ``auth_throttle`` sets when guessers are refused
    (:mod:`sautikit.sip.auth_throttle`); ``digest_algorithms`` are challenged in the order given
    (default MD5 alone, which every phone answers: see
    :data:`~sautikit.sip.digest.DEFAULT_CHALLENGE_ALGORITHMS`); processes sharing
    ``nonce_secret`` accept each other's nonces.

    With ``route_to_source`` (the default) a caller's in-dialog requests (BYE, re-INVITE)
    go back to the address its INVITE came from rather than to its Contact, unless a
    Record-Route names a hop: a phone behind NAT puts a private address in its Contact,
    and over TCP this reuses the caller's connection (the RFC 5626 flow idea).

    ``session_timers`` (RFC 4028, on by default: 1800 s asked, 90 s the least accepted;
    None turns them off) end calls whose far end stopped refreshing them.

    ``verify_bearer`` accepts a browser client's token over WebSocket in place of digest
    (:mod:`sautikit.sip.token_auth`).
    """

    def __init__(
        self,
        transport: SipTransportLayer,
        *,
        timers: TimerConfig | None = None,
        on_incoming_call: IncomingCallHandler | None = None,
        user: str = "sautikit",
        user_agent: str = "Sautikit",
        lookup_ha1: Ha1Lookup | None = None,
        realm_for: RealmResolver | None = None,
        registrar: Registrar | None = None,
        authenticate_invite: InvitePolicy | None = None,
        digest_algorithms: Sequence[str] = DEFAULT_CHALLENGE_ALGORITHMS,
        digest_algorithms_for: AlgorithmResolver | None = None,
        nonce_secret: bytes | None = None,
        clock: Callable[[], float] = time.monotonic,
        route_to_source: bool = True,
        auth_throttle: ThrottlePolicy | None = None,
        persist_bindings: BindingSink | None = None,
        nat_keepalive: float | None = 30.0,
        session_timers: SessionTimerConfig | None = SessionTimerConfig(),
        verify_bearer: BearerVerifier | None = None,
    ) -> None:
        self.transport = transport
        self._loop = asyncio.get_running_loop()
        self._layer = TransactionLayer(transport, self, timers)
        self.timers = self._layer.timers
        self.on_incoming_call = on_incoming_call
        self.user = user
        self.user_agent = user_agent
        self.auth = ServerAuth(
            lookup_ha1,
            realm_for=realm_for,
            algorithms=digest_algorithms,
            algorithms_for=digest_algorithms_for,
            nonce_secret=nonce_secret,
            throttle=auth_throttle,
            clock=clock,
            verify_bearer=verify_bearer,
        )
        #: Requests dropped unanswered because they came from a known scanner.
        self.scanner_requests_dropped = 0
        #: ``() -> True`` while new calls are refused (a drain): OPTIONS outside a dialog
        #: then answer 503, so a balancer probing with OPTIONS stops sending here.
        self.refusing_new_calls: Callable[[], bool] | None = None
        self._layer.ignore = self._is_scanner
        #: The registrar service, on when there is a user database to check REGISTER by.
        self.registrar_service = (
            RegistrarService(
                registrar or Registrar(),
                self.auth,
                clock,
                persist=persist_bindings,
                spawn=self._spawn,
            )
            if lookup_ha1 is not None
            else None
        )
        self.authenticate_invite = authenticate_invite
        self.route_to_source = route_to_source
        self.session_timers = session_timers
        self._calls: dict[DialogId, Call] = {}
        self._pending: dict[tuple[str, str, int], IncomingCall] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        if self.registrar_service is not None and nat_keepalive:
            self._spawn(self._keep_nat_open(nat_keepalive), "NAT keep-alive")
        #: Hears responses matching no call: answers to INVITEs a dead process sent
        #: (:class:`~sautikit.sip.teardown.Teardown` ACKs them).
        self.on_orphan_response: Callable[[Response, Peer], None] | None = None

    @classmethod
    async def listen(
        cls,
        host: str = "127.0.0.1",
        port: int = DEFAULT_SIP_PORT,
        *,
        udp: bool = True,
        tcp: bool = True,
        advertised_host: str | None = None,
        tcp_host: str | None = None,
        tls: ssl.SSLContext | None = None,
        tls_host: str | None = None,
        tls_port: int = DEFAULT_SIPS_PORT,
        tls_client: ssl.SSLContext | None = None,
        websocket: WebSocketListeners | None = None,
        **options: Any,
    ) -> UserAgent:
        """Start a transport on ``host:port`` (0: any free port) and a user agent on it;
        with a server context ``tls`` also TLS on ``tls_host:tls_port``, and SIP over
        WebSocket on ``websocket``'s ports (see :meth:`SipTransportLayer.start`)."""
        transport = SipTransportLayer()
        await transport.start(
            host,
            port,
            udp=udp,
            tcp=tcp,
            advertised_host=advertised_host,
            tcp_host=tcp_host,
            tls=tls,
            tls_host=tls_host,
            tls_port=tls_port,
            tls_client=tls_client,
            websocket=websocket,
        )
        return cls(transport, **options)

    async def close(self) -> None:
        """End every call without signalling, stop the transaction layer and transport."""
        self._closed = True
        for call in list(self._calls.values()) + list(self._pending.values()):
            call._end(EndReason.SHUTDOWN)
        for task in list(self._tasks):
            task.cancel()
        self._layer.close()
        await self.transport.close()

    # -- public helpers -------------------------------------------------------------------

    @property
    def registrar(self) -> Registrar | None:
        """The bindings, when REGISTER is served."""
        service = self.registrar_service
        return service.registrar if service is not None else None

    @property
    def allowed_methods(self) -> tuple[str, ...]:
        return _BASE_METHODS + (("REGISTER",) if self.registrar_service is not None else ())

    @property
    def calls(self) -> list[Call]:
        """Calls with a dialog (ringing with a tag, or up)."""
        return list(dict.fromkeys(self._calls.values()))

    def contact(self, transport: TransportName = "udp", *, sips: bool = False) -> NameAddress:
        """Our Contact: ``sip:user@advertised-host:port``, with ``transport=tcp`` over TCP
        and ``transport=tls`` (at the TLS port) over TLS, ``transport=ws`` (at the WS or
        WSS port, RFC 7118 §5.2) over WebSocket; ``sips`` makes it
        ``sips:user@host:tls-port`` (RFC 5630: TLS implied, no transport parameter)."""
        parameter = "ws" if is_websocket(transport) else transport
        params: dict[str, str | None] = {} if transport == "udp" else {"transport": parameter}
        if sips:
            transport, params = "tls", {}
        uri = SipUri(
            "sips" if sips else "sip",
            self.user,
            self.transport.advertised_host,
            self.transport.port_for(transport),
            params=params,
        )
        return NameAddress(uri)

    def lookup(self, aor: str | SipUri) -> list[Binding]:
        """The registered contacts of an address-of-record (``sip:alice@example.com``)."""
        if self.registrar_service is None:
            return []
        return self.registrar_service.lookup(aor)

    async def place_call(
        self,
        target: SipUri | str,
        *,
        from_uri: SipUri | NameAddress | str,
        offer: SessionDescription | None,
        destination: Peer | tuple[str, int, str] | None = None,
        credentials: tuple[str, str] | None = None,
        extra_headers: Iterable[tuple[str, str]] = (),
        ring_timeout: float | None = None,
        late_answer: Callable[[SessionDescription], SessionDescription] | None = None,
        alternates: Sequence[Peer] = (),
    ) -> OutgoingCall:
        """Send an INVITE to ``target`` and return the call at once (§13.2.1).

        ``destination`` (default: the target URI's host, port and transport) is where the
        INVITE goes, e.g. a carrier's SBC or a registered device's source address; the
        call's later requests go there too unless a Record-Route names a hop.
        ``credentials`` (username, password) answer one 401/407. ``ring_timeout`` seconds
        without an answer CANCEL the call. With ``offer=None`` the 2xx carries the far
        end's offer and ``late_answer`` makes the answer the ACK carries. ``alternates``
        are where the INVITE goes next when ``destination`` answers 503, nothing, or cannot
        be reached, before ringing (a carrier's other RFC 3263 targets,
        :mod:`sautikit.sip.dns`).
        """
        if offer is None and late_answer is None:
            raise ValueError("an offerless INVITE needs late_answer to answer in the ACK")
        target_uri = SipUri.parse(target) if isinstance(target, str) else target
        if isinstance(from_uri, NameAddress):
            local = NameAddress(from_uri.uri, from_uri.display_name, dict(from_uri.params))
        else:
            local = NameAddress(SipUri.parse(from_uri) if isinstance(from_uri, str) else from_uri)
        local.params["tag"] = new_tag()
        peer = _destination(target_uri, destination)
        invite = Request(method="INVITE", uri=target_uri)
        invite.headers.add("From", str(local))
        invite.headers.add("To", str(NameAddress(target_uri)))
        invite.headers.add("Call-ID", f"{secrets.token_hex(12)}@{self.transport.advertised_host}")
        invite.headers.add("CSeq", str(CSeq(1 + secrets.randbelow(2**16), "INVITE")))
        invite.headers.add("Contact", str(self.contact(peer.transport)))
        invite.headers.add("Allow", ", ".join(self.allowed_methods))
        invite.headers.add("Supported", ", ".join(OUR_OPTION_TAGS))
        if self.session_timers is not None:
            for name, value in request_headers(self.session_timers):
                invite.headers.add(name, value)
        self._decorate(invite)
        for name, value in extra_headers:
            invite.headers.add(name, value)
        with_body(invite, offer)
        call = OutgoingCall(
            self,
            invite,
            peer,
            offer,
            credentials=credentials,
            ring_timeout=ring_timeout,
            late_answer=late_answer,
            pinned=destination is not None,
            alternates=alternates,
        )
        call._send_invite()
        return call

    # -- TransactionUser ------------------------------------------------------------------

    def on_request(self, transaction: ServerTransaction) -> None:
        request = transaction.request
        if self._closed:
            respond(transaction, request.create_response(503))
            return
        try:
            self._dispatch(transaction)
        except (SipParseError, ValueError) as error:
            # A header our accessors could not read: the peer's fault, said as a 400.
            logger.info("bad %s from %s: %s", request.method, transaction.peer, error)
            respond(transaction, request.create_response(400, f"Bad Request: {error}"[:120]))

    def on_ack(self, ack: Request, source: Peer) -> None:
        try:
            call = self._calls.get(DialogId.of_request(ack))
        except SipParseError:
            return
        if call is not None:
            call._on_ack(ack)

    def on_stray_response(self, response: Response, source: Peer) -> None:
        try:
            call = self._calls.get(DialogId.of_response(response))
        except SipParseError:
            return
        if call is not None:
            call._on_in_dialog_response(response)
        elif self.on_orphan_response is not None:
            self.on_orphan_response(response, source)

    def _is_scanner(self, request: Request, source: Peer) -> bool:
        """Known scanners (sipvicious' ``friendly-scanner`` and kin) get silence: an
        answer would tell them a SIP server is here, and silence costs nothing."""
        agent = request.headers.get("User-Agent")
        if agent is None:
            return False
        lowered = agent.lower()
        if any(name in lowered for name in _SCANNERS):
            self.scanner_requests_dropped += 1
            return True
        return False

    async def _keep_nat_open(self, interval: float) -> None:
        """Every ``interval`` seconds an OPTIONS to each NATed phone's public address
        (the Kamailio nathelper way; RFC 5626 §3.5 keep-alives from the server side):
        most home routers forget a UDP mapping after 30-60 s of silence, and then calls
        to the phone no longer reach it. The answers are not needed; the traffic is."""
        service = self.registrar_service
        assert service is not None
        while not self._closed:
            await asyncio.sleep(interval)
            for binding in service.natted():
                source = binding.source
                assert source is not None
                options = self._options_request(SipUri.parse(binding.contact))
                peer = Peer("udp", source.host, source.port)
                with contextlib.suppress(ValueError):
                    self._layer.send_request(options, peer)

    def _options_request(self, target: SipUri) -> Request:
        """An OPTIONS outside any dialog (§11.1), for keep-alives and health pings."""
        options = Request(method="OPTIONS", uri=target)
        options.headers.add(
            "From", f"<sip:{self.user}@{self.transport.advertised_host}>;tag={new_tag()}"
        )
        options.headers.add("To", f"<{target}>")
        options.headers.add("Call-ID", f"{secrets.token_hex(12)}@{self.transport.advertised_host}")
        options.headers.add("CSeq", str(CSeq(1, "OPTIONS")))
        self._decorate(options)
        return options

    async def ping(self, target: SipUri, destination: Peer, *, within: float = 5.0) -> bool:
        """Send an OPTIONS to ``destination``: True when anything answers it within
        ``within`` seconds (any status: the host is alive), False otherwise."""
        try:
            transaction = self._layer.send_request(self._options_request(target), destination)
        except (ValueError, OSError):
            return False
        try:
            response = await asyncio.wait_for(asyncio.shield(transaction.final_response), within)
        except TimeoutError:
            return False
        return response.reason not in LOCAL_FAILURE_REASONS

    # -- dispatch -------------------------------------------------------------------------

    def _dispatch(self, transaction: ServerTransaction) -> None:
        request = transaction.request
        method = request.method
        # Read now every header a dialog will need, so a malformed one is a 400 here
        # rather than an error inside a call's handler later.
        _ = (request.from_, request.to, request.cseq, request.contacts, request.record_routes)
        if method not in self.allowed_methods:
            response = request.create_response(405)
            response.headers.add("Allow", ", ".join(self.allowed_methods))
            respond(transaction, response)
            return
        if method == "CANCEL":
            self._on_cancel(transaction)
            return
        missing = unsupported(request) if method != "ACK" else []
        if missing:
            response = request.create_response(420)  # §8.2.2.3
            response.headers.add("Unsupported", ", ".join(missing))
            respond(transaction, response)
            return
        if request.to.tag:
            self._on_in_dialog(transaction)
            return
        if method == "INVITE":
            self._on_invite(cast(InviteServerTransaction, transaction))
        elif method == "OPTIONS":
            if self.refusing_new_calls is not None and self.refusing_new_calls():
                respond(transaction, request.create_response(503, "Draining", to_tag=new_tag()))
            else:
                respond(transaction, self._options_response(request))
        elif method == "REGISTER" and self.registrar_service is not None:
            self.registrar_service.on_register(transaction)
        else:  # BYE, INFO, UPDATE, PRACK outside any dialog
            respond(transaction, request.create_response(481))

    def _on_in_dialog(self, transaction: ServerTransaction) -> None:
        request = transaction.request
        call = self._calls.get(DialogId.of_request(request))
        if call is None or call.dialog is None:
            respond(transaction, request.create_response(481))
            return
        if not call.dialog.accept_remote_cseq(request):
            respond(transaction, request.create_response(500, "Out Of Order CSeq"))
            return
        if request.method == "BYE":
            call._on_bye(transaction)
        elif request.method == "INVITE":
            self._spawn(call._handle_reinvite(transaction), "re-INVITE")
        elif request.method == "OPTIONS":
            respond(transaction, self._options_response(request))
        elif request.method == "INFO":
            call._on_info(transaction)
        elif request.method == "UPDATE":
            self._spawn(call._handle_update(transaction), "UPDATE")
        elif request.method == "PRACK":
            call._on_prack(transaction)
        elif request.method == "REFER":
            self._spawn(call._handle_refer(transaction), "REFER")
        else:
            response = request.create_response(405)
            response.headers.add("Allow", ", ".join(self.allowed_methods))
            respond(transaction, response)

    def _on_cancel(self, transaction: ServerTransaction) -> None:
        request = transaction.request
        invite = transaction.matched_invite
        call = self._pending.get(_pending_key(request)) if invite is not None else None
        if call is None:
            respond(transaction, request.create_response(481))
            return
        respond(transaction, request.create_response(200))
        call._on_cancel()

    def _on_invite(self, transaction: InviteServerTransaction) -> None:
        request = transaction.request
        if _pending_key(request) in self._pending:
            # §8.2.2.2: the INVITE of a call we already have, arriving by another path (or
            # after its transaction ended): a copy, never a second call.
            respond(transaction, request.create_response(482, to_tag=new_tag()))
            return
        if self.session_timers is not None:
            refusal = too_small(request, self.session_timers)
            if refusal is not None:
                respond(transaction, refusal)
                return
        authenticated_user = None
        policy = self.authenticate_invite
        if policy is not None and policy(request, transaction.peer):
            authenticated_user = self.auth.authenticate(transaction, proxy=True)
            if authenticated_user is None:
                return
        try:
            offer = parse_body_sdp(request)
        except SdpParseError as error:
            respond(transaction, request.create_response(400, f"Bad SDP: {error}"[:120]))
            return
        handler = self.on_incoming_call
        if handler is None:
            respond(transaction, request.create_response(480))
            return
        call = IncomingCall(self, transaction, offer, authenticated_user)
        key = _pending_key(request)
        self._pending[key] = call
        call.terminated.add_done_callback(lambda _: self._pending.pop(key, None))
        self._spawn(self._run_incoming(handler, call), f"incoming call {call.call_id}")

    async def _run_incoming(self, handler: IncomingCallHandler, call: IncomingCall) -> None:
        try:
            await handler(call)
        except SdpNegotiationError as error:
            logger.info("call %s: no acceptable media: %s", call.call_id, error)
            call._fail_unanswered(488)
        except CallError as error:
            logger.info("call %s: %s", call.call_id, error)
        except Exception:
            logger.exception("on_incoming_call failed for call %s", call.call_id)
            call._fail_unanswered(500)
            if call.state is CallState.ANSWERED:
                await call.hangup()

    def _options_response(self, request: Request) -> Response:
        response = request.create_response(200, to_tag=None if request.to.tag else new_tag())
        response.headers.add("Allow", ", ".join(self.allowed_methods))
        response.headers.add("Accept", SDP_CONTENT_TYPE)
        response.headers.add("Supported", ", ".join(OUR_OPTION_TAGS))
        response.headers.add("User-Agent", self.user_agent)
        return response

    # -- plumbing for calls ---------------------------------------------------------------

    def _decorate(self, request: Request) -> None:
        request.headers.set("User-Agent", self.user_agent)

    def _success(
        self, request: Request, dialog: Dialog, sdp: SessionDescription | None
    ) -> Response:
        """A 2xx to an in-dialog INVITE: our tag, Contact, Allow and the SDP."""
        response = request.create_response(200, to_tag=dialog.local_tag)
        response.headers.add("Contact", str(dialog.local_contact))
        response.headers.add("Allow", ", ".join(self.allowed_methods))
        with_body(response, sdp)
        return response

    def _remember_dialog(self, dialog: Dialog, call: Call) -> None:
        self._calls[dialog.id] = call

    def _forget_dialog(self, dialog: Dialog) -> None:
        self._calls.pop(dialog.id, None)

    def _send_stateless(self, message: Request | Response, destination: Peer) -> None:
        what = message.method if isinstance(message, Request) else str(message.status)
        self.transport.spawn(self._layer.send_stateless(message, destination), what)

    def _spawn(self, coroutine: Coroutine[Any, Any, Any], what: str) -> None:
        task = self._loop.create_task(coroutine)
        self._tasks.add(task)

        def finished(done: asyncio.Task[Any]) -> None:
            self._tasks.discard(done)
            if not done.cancelled() and done.exception() is not None:
                logger.error("%s failed", what, exc_info=done.exception())

        task.add_done_callback(finished)

    def _run_callback(self, callback: Callable[..., None], *args: object) -> None:
        try:
            callback(*args)
        except Exception:
            logger.exception("call callback %s failed", callback)


def _pending_key(request: Request) -> tuple[str, str, int]:
    """An INVITE (or its CANCEL) by Call-ID, From tag and CSeq number."""
    return request.call_id, request.from_.tag or "", request.cseq.number


def _destination(target: SipUri, destination: Peer | tuple[str, int, str] | None) -> Peer:
    if isinstance(destination, Peer):
        return destination
    if destination is not None:
        host, port, transport = destination
    else:
        host = target.params.get("maddr") or target.host
        transport = uri_transport(target) or "udp"
        port = target.port or default_port(transport)
    if transport not in get_args(TransportName):
        raise ValueError(f"unsupported transport {transport!r}")
    return Peer(cast(TransportName, transport), host, port)
