"""The SIP user agent core: incoming and outgoing calls, OPTIONS, and a registrar.

:class:`UserAgent` is the :class:`~sautikit.sip.transaction.TransactionUser` a PBX puts on
top of one :class:`~sautikit.sip.transport.SipTransportLayer`. It owns the dialogs
(:mod:`sautikit.sip.dialog`) and turns them into calls. It follows RFC 3261:

* §8.2 / §12.2.2 — requests are checked before the call logic sees them: unknown methods
  get 405 with Allow (§8.2.1), in-dialog requests matching no dialog 481, an in-dialog
  request with a lower CSeq than the last one 500; OPTIONS is answered 200 with Allow,
  Accept and Supported (§11.2).
* §13.3 — an incoming INVITE becomes an :class:`IncomingCall` handed to the owner's
  ``on_incoming_call`` coroutine: ring (180), early media (183 with SDP), answer (200,
  re-sent until the ACK per §13.3.1.4; BYE when it never comes), reject. An INVITE
  without an offer gets our offer in the 200 and its answer from the ACK (§13.2.1,
  RFC 3264 §5).
* §9.2 — a CANCEL for a pending INVITE is answered 200, and the INVITE 487.
* §13.2 / §9.1 — :meth:`UserAgent.place_call` sends an INVITE and returns an
  :class:`OutgoingCall`: provisional answers and early media (183 SDP), the 2xx
  acknowledged by the dialog layer (re-ACKed for each retransmission, §13.2.2.4), a
  forked second 2xx acknowledged and hung up, CANCEL once a provisional answer has come,
  a ring timeout that cancels, and 401/407 challenges answered once with digest
  credentials (§22.2, CSeq incremented and Call-ID kept), for the INVITE and for the
  call's later BYE and re-INVITEs.
* §14 — re-INVITEs both ways (hold, unhold, codec change); an incoming one is answered by
  the call's ``on_reinvite`` hook, by default RFC 3264 negotiation at our current media
  address (488 when nothing matches); 491 / 500 with Retry-After when INVITEs cross
  (§14.2).
* §15 — BYE both ways ends the call; §10.3 and §22 — with ``lookup_ha1`` given, REGISTER
  is served by a :class:`~sautikit.sip.registrar.Registrar` behind digest authentication
  (401 with the configured algorithms' challenges, the same 401 again for a wrong password
  and an unknown user, 423 with Min-Expires), and
  an ``authenticate_invite`` policy can demand digest credentials on INVITE (407).

Record-Route and Route are honoured in both roles; rport is the transport's job. A peer
that misbehaves never raises out of the user agent: everything the wire hands in is
parsed inside handlers that answer 400 or drop, and the owner's coroutines are watched.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from typing import Any, cast

from sautikit.sip.dialog import Dialog, DialogId, DialogState, SuccessRetransmitter, new_tag
from sautikit.sip.digest import (
    DEFAULT_CHALLENGE_ALGORITHMS,
    DigestAuthenticator,
    DigestError,
    DigestParseError,
    Ha1Lookup,
    VerifyStatus,
    build_authorization,
    parse_challenge,
    parse_credentials,
)
from sautikit.sip.errors import SipParseError
from sautikit.sip.message import CSeq, Request, Response
from sautikit.sip.registrar import Binding, ContactRequest, Registrar, Source
from sautikit.sip.sdp import (
    NegotiatedMedia,
    SdpNegotiationError,
    SdpParseError,
    SessionDescription,
    negotiate_answer,
    parse_answer,
    parse_sdp,
)
from sautikit.sip.transaction import (
    InviteServerTransaction,
    ServerTransaction,
    TimerConfig,
    TransactionLayer,
    TransactionState,
    TransactionStateError,
    new_branch,
)
from sautikit.sip.transport import DEFAULT_SIP_PORT, Peer, SipTransportLayer, TransportName
from sautikit.sip.uri import NameAddress, SipUri

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

_SDP = "application/sdp"
_BASE_METHODS = ("INVITE", "ACK", "CANCEL", "BYE", "OPTIONS")


class CallState(enum.Enum):
    """Where a call stands, as its owner sees it."""

    #: UAS: the INVITE arrived and nothing has been answered yet.
    INCOMING = "incoming"
    #: UAC: the INVITE is out and nothing has come back yet.
    CALLING = "calling"
    #: UAC: 100 Trying (or another provisional answer without ringing) arrived.
    PROCEEDING = "proceeding"
    #: 180 sent (UAS) or received (UAC).
    RINGING = "ringing"
    #: 183 with SDP sent or received: the early media stream flows.
    EARLY_MEDIA = "early_media"
    #: UAS: the 200 went out and its ACK is awaited.
    CONNECTING = "connecting"
    #: The 2xx was exchanged and acknowledged: the call is up.
    ANSWERED = "answered"
    TERMINATED = "terminated"


class EndReason(enum.Enum):
    """Why a call ended."""

    LOCAL_HANGUP = "local_hangup"
    REMOTE_HANGUP = "remote_hangup"
    #: We cancelled our own outgoing call before it was answered.
    LOCAL_CANCEL = "local_cancel"
    #: The caller cancelled the INVITE before we answered.
    REMOTE_CANCEL = "remote_cancel"
    #: Our outgoing call rang longer than its ``ring_timeout`` and was cancelled.
    RING_TIMEOUT = "ring_timeout"
    #: We rejected the incoming call with a final status.
    REJECTED = "rejected"
    #: The far end (or our transaction layer, e.g. 408 or 503) answered a final failure.
    FAILED = "failed"
    #: We answered and the ACK never came within 64·T1: we sent BYE (§13.3.1.4).
    ACK_TIMEOUT = "ack_timeout"
    #: An in-dialog request got 481 or 408: the dialog is gone (§12.2.1.2).
    DIALOG_LOST = "dialog_lost"
    #: The user agent was closed with the call up.
    SHUTDOWN = "shutdown"


@dataclasses.dataclass(frozen=True)
class CallEnd:
    """How a call ended: ``status`` is the SIP final status that ended it, where one did
    (486 for busy, 487 for a cancelled INVITE), else ``None``."""

    reason: EndReason
    status: int | None = None
    phrase: str = ""


class CallError(Exception):
    """The call cannot do what was asked in its present state (e.g. answer after CANCEL)."""


class CallFailed(CallError):
    """A request of the call got a final failure; ``status`` and ``phrase`` are the answer's."""

    def __init__(self, status: int, phrase: str, end: CallEnd | None = None) -> None:
        super().__init__(f"{status} {phrase}")
        self.status = status
        self.phrase = phrase
        self.end = end


#: The owner's answer to a re-INVITE's offer (or ``None`` for an offerless re-INVITE,
#: which is answered with our current description). Raise ``SdpNegotiationError`` for 488.
ReinviteHandler = Callable[["SessionDescription | None"], Awaitable["SessionDescription"]]
IncomingCallHandler = Callable[["IncomingCall"], Awaitable[None]]
#: ``(request, source) -> True`` when this INVITE must carry digest credentials.
InvitePolicy = Callable[[Request, Peer], bool]
#: The digest realm a request is authenticated in (e.g. the tenant's SIP domain).
RealmResolver = Callable[[Request], str]


def _parse_body_sdp(message: Request | Response) -> SessionDescription | None:
    """The message's SDP, or None when it has no SDP body. Raises ``SdpParseError``."""
    if not message.body:
        return None
    content_type = (message.content_type or _SDP).split(";", 1)[0].strip().lower()
    if content_type != _SDP:
        return None
    return parse_sdp(message.body)


def _answer_challenge(
    request: Request, response: Response, credentials: tuple[str, str], cseq: int
) -> Request | None:
    """§22.2: ``request`` again, with CSeq ``cseq``, no Via yet and credentials answering
    the first challenge of the 401/407 ``response`` we can answer; None when none fits."""
    proxy = response.status == 407
    username, password = credentials
    for value in response.headers.get_all("Proxy-Authenticate" if proxy else "WWW-Authenticate"):
        try:
            authorization = build_authorization(
                parse_challenge(value),
                method=request.method,
                uri=str(request.uri),
                username=username,
                password=password,
                body=request.body,
            )
        except DigestError:
            continue
        retry = Request(method=request.method, uri=request.uri, body=request.body)
        for name, header_value in request.headers:
            if name != "Via":
                retry.headers.add(name, header_value)
        retry.headers.set("CSeq", str(CSeq(cseq, request.method)))
        retry.headers.set("Proxy-Authorization" if proxy else "Authorization", authorization)
        return retry
    return None


def _with_body(message: Request | Response, description: SessionDescription | None) -> None:
    if description is not None:
        message.headers.set("Content-Type", _SDP)
        message.body = description.encode()


class Call:
    """What incoming and outgoing calls share: the dialog, SDP, in-dialog requests, end.

    ``local_sdp`` / ``remote_sdp`` are the last descriptions each side sent; ``media`` is
    the negotiated stream where the user agent did the negotiation itself (our offer and
    their answer, or a default re-INVITE answer). ``on_terminated`` (optional) hears the
    :class:`CallEnd` once; ``terminated`` resolves to it.
    """

    def __init__(self, agent: UserAgent, invite: Request) -> None:
        self._agent = agent
        self.invite = invite
        self.call_id = invite.call_id
        self.state = CallState.INCOMING
        self.dialog: Dialog | None = None
        self.local_sdp: SessionDescription | None = None
        self.remote_sdp: SessionDescription | None = None
        self.media: NegotiatedMedia | None = None
        self.terminated: asyncio.Future[CallEnd] = agent._loop.create_future()
        self.on_terminated: Callable[[CallEnd], None] | None = None
        self.on_state_change: Callable[[CallState], None] | None = None
        self.on_reinvite: ReinviteHandler = self.answer_reinvite
        #: Set by an in-dialog INVITE in either direction, for glare detection (§14.2).
        self._outgoing_reinvite = False
        self._incoming_reinvite = False
        self._retransmitters: dict[int, SuccessRetransmitter] = {}
        self._acks: dict[int, asyncio.Future[Request]] = {}
        #: The ACK we sent for each 2xx, by CSeq number, re-sent when the 2xx repeats.
        self._sent_acks: dict[int, Request] = {}
        #: (username, password) answering a 401/407 to our requests (a carrier's trunk).
        self._credentials: tuple[str, str] | None = None

    # -- state ----------------------------------------------------------------------------

    @property
    def ended(self) -> bool:
        return self.state is CallState.TERMINATED

    @property
    def remote_on_hold(self) -> bool:
        """True when the far end's last description puts our stream on hold."""
        if self.remote_sdp is None or not self.remote_sdp.media:
            return False
        media = self.remote_sdp.media[0]
        connection = self.remote_sdp.media_connection(media)
        held = connection is not None and connection.is_hold
        return held or self.remote_sdp.media_direction(media) in ("sendonly", "inactive")

    def _set_state(self, state: CallState) -> None:
        if self.state is state or self.ended:
            return
        self.state = state
        if self.on_state_change is not None:
            self._agent._run_callback(self.on_state_change, state)

    def _end(self, reason: EndReason, status: int | None = None, phrase: str = "") -> None:
        if self.ended:
            return
        self._set_state(CallState.TERMINATED)
        for retransmitter in self._retransmitters.values():
            retransmitter.stop()
        self._retransmitters.clear()
        for waiter in self._acks.values():
            if not waiter.done():
                waiter.set_exception(CallError(f"the call ended: {reason.value}"))
                waiter.exception()  # nobody may be waiting: keep asyncio quiet
        if self.dialog is not None:
            self.dialog.terminate()
            self._agent._forget_dialog(self.dialog)
        end = CallEnd(reason, status, phrase)
        self.terminated.set_result(end)
        self._on_ended()
        if self.on_terminated is not None:
            self._agent._run_callback(self.on_terminated, end)

    def _on_ended(self) -> None:
        """Subclass hook: stop timers and resolve waiters when the call ends."""

    # -- in-dialog requests ---------------------------------------------------------------

    async def _send_in_dialog(self, request: Request) -> tuple[Request, Response]:
        """Send an in-dialog request; a 401/407 is answered once when we hold credentials
        (carriers challenge BYE and re-INVITE too). Returns the request finally sent."""
        assert self.dialog is not None
        dialog = self.dialog
        on_response = self._on_in_dialog_response if request.method == "INVITE" else None
        response = await self._agent._layer.send_request(
            request, dialog.next_hop(), on_response
        ).final_response
        if response.status in (401, 407) and self._credentials is not None:
            retry = _answer_challenge(request, response, self._credentials, dialog.local_cseq + 1)
            if retry is not None:
                dialog.local_cseq += 1
                request = retry
                response = await self._agent._layer.send_request(
                    request, dialog.next_hop(), on_response
                ).final_response
        return request, response

    async def hangup(self) -> CallEnd:
        """End the call: BYE when it is up (§15.1.1); before that, see the subclasses."""
        if self.ended:
            return self.terminated.result()
        if self.dialog is not None and self.state in (CallState.ANSWERED, CallState.CONNECTING):
            await self._send_bye(EndReason.LOCAL_HANGUP)
        return await asyncio.shield(self.terminated)

    async def _send_bye(self, reason: EndReason) -> None:
        """Send BYE and end the call whatever the answer (§15.1.1)."""
        assert self.dialog is not None
        try:
            bye = self.dialog.create_request("BYE")
        except ValueError:
            return
        # The dialog ends when BYE is sent; a late in-dialog request then gets 481.
        self._end(reason)
        self._agent._forget_dialog(self.dialog)  # also when answered after the call ended
        await self._send_in_dialog(bye)

    async def reinvite(self, sdp: SessionDescription) -> SessionDescription:
        """Send a re-INVITE offering ``sdp`` (hold: a ``sendonly`` offer) and return the
        answer. Raises :class:`CallFailed` on a failure answer (the call stays up, except
        after 481/408, which end it) and :class:`CallError` when INVITEs cross."""
        if self.dialog is None or self.state is not CallState.ANSWERED:
            raise CallError(f"cannot re-INVITE a call in state {self.state.value}")
        if self._outgoing_reinvite or self._incoming_reinvite:
            raise CallError("another INVITE of this call is in progress")
        self._outgoing_reinvite = True
        try:
            request = self.dialog.create_request("INVITE", body=sdp.encode())
            self._agent._decorate(request)
            request, response = await self._send_in_dialog(request)
            if response.is_success:
                # The 2xx's Contact is the new remote target (§12.2.1.2), ACK included.
                with contextlib.suppress(SipParseError):
                    self.dialog.refresh_target(response)
                self._send_ack(request, response)
                answer = _parse_body_sdp(response)
                if answer is None:
                    raise CallFailed(response.status, "the 2xx carried no SDP answer")
                self.local_sdp, self.remote_sdp = sdp, answer
                with contextlib.suppress(SdpNegotiationError):
                    self.media = parse_answer(sdp, answer)
                return answer
            if response.status in (408, 481):
                self._end(EndReason.DIALOG_LOST, response.status, response.reason)
            raise CallFailed(response.status, response.reason)
        except SdpParseError as error:
            raise CallFailed(488, f"unreadable SDP answer: {error}") from error
        finally:
            self._outgoing_reinvite = False

    def _send_ack(self, invite: Request, response: Response, body: bytes = b"") -> Request:
        """ACK a 2xx through the dialog layer (§13.2.2.4) and remember it for re-sends."""
        assert self.dialog is not None
        ack = self.dialog.create_ack(invite, body=body)
        hop = self.dialog.next_hop()
        ack.headers.prepend("Via", str(self._agent.transport.make_via(hop.transport, new_branch())))
        self._agent._send_stateless(ack, hop)
        self._sent_acks[invite.cseq.number] = ack
        return ack

    async def answer_reinvite(self, offer: SessionDescription | None) -> SessionDescription:
        """The default ``on_reinvite``: RFC 3264 negotiation at our current media address.

        Hold (``sendonly`` or ``c=0.0.0.0``) is answered ``recvonly``, unhold ``sendrecv``,
        a codec change with the new codec; an offer with nothing usable raises
        :class:`~sautikit.sip.sdp.NoCommonCodec` (488). The ``o=`` version goes up only
        when the answer differs from our last description (RFC 3264 §8).
        """
        local = self.local_sdp
        if local is None or not local.media:
            raise SdpNegotiationError("this call has no local media to answer with")
        if offer is None:
            return local
        connection = local.media_connection(local.media[0])
        origin = local.origin
        host = connection.address if connection is not None else origin.address
        answer, negotiated = negotiate_answer(
            offer,
            host,
            local.media[0].port,
            session_id=origin.session_id,
            version=origin.session_version,
            username=origin.username,
        )
        if answer.encode() != local.encode():
            answer.origin.session_version = origin.session_version + 1
        self.media = negotiated
        return answer

    async def _handle_reinvite(self, transaction: ServerTransaction) -> None:
        """§14.2: answer an in-dialog INVITE through ``on_reinvite``."""
        request = transaction.request
        assert self.dialog is not None
        if self._outgoing_reinvite:
            _respond(transaction, request.create_response(491))
            return
        if self._incoming_reinvite or self.state is not CallState.ANSWERED:
            response = request.create_response(500)
            response.headers.add("Retry-After", str(secrets.randbelow(10)))
            _respond(transaction, response)
            return
        self._incoming_reinvite = True
        try:
            try:
                offer = _parse_body_sdp(request)
            except SdpParseError as error:
                _respond(transaction, request.create_response(400, f"Bad SDP: {error}"[:120]))
                return
            try:
                answer = await self.on_reinvite(offer)
            except SdpNegotiationError:
                _respond(transaction, request.create_response(488))
                return
            except Exception:
                logger.exception("on_reinvite failed for call %s", self.call_id)
                _respond(transaction, request.create_response(500))
                return
            if self.ended:
                _respond(transaction, request.create_response(481))
                return
            self.dialog.refresh_target(request)
            response = self._agent._success(request, self.dialog, answer)
            self.local_sdp = answer
            if offer is not None:
                self.remote_sdp = offer
            ack = await self._send_success(transaction, response)
            if offer is None and ack is not None:
                with contextlib.suppress(SdpParseError):
                    self.remote_sdp = _parse_body_sdp(ack) or self.remote_sdp
        finally:
            self._incoming_reinvite = False

    async def _send_success(
        self, transaction: ServerTransaction, response: Response
    ) -> Request | None:
        """Send a 2xx to an INVITE, re-send it until the ACK (§13.3.1.4) and return the
        ACK; None when the call ended first. Without an ACK in 64·T1 the call gets BYE."""
        number = response.cseq.number
        waiter: asyncio.Future[Request] = self._agent._loop.create_future()
        self._acks[number] = waiter

        def ack_timeout() -> None:
            self._agent._spawn(self._send_bye(EndReason.ACK_TIMEOUT), "BYE after ACK timeout")

        retransmitter = SuccessRetransmitter(
            response,
            lambda resent: self._agent._send_stateless(resent, transaction.peer),
            self._agent.timers,
            ack_timeout,
            reliable=transaction.peer.transport == "tcp",
        )
        self._retransmitters[number] = retransmitter
        if not _respond(transaction, response):
            self._acks.pop(number, None)
            self._retransmitters.pop(number, None)
            return None
        retransmitter.start()
        try:
            return await waiter
        except CallError:
            return None
        finally:
            self._acks.pop(number, None)
            self._retransmitters.pop(number, None)

    def _on_ack(self, ack: Request) -> None:
        number = ack.cseq.number
        retransmitter = self._retransmitters.get(number)
        if retransmitter is not None:
            retransmitter.acknowledge()
        waiter = self._acks.get(number)
        if waiter is not None and not waiter.done():
            waiter.set_result(ack)

    def _on_bye(self, transaction: ServerTransaction) -> None:
        _respond(transaction, transaction.request.create_response(200))
        self._end(EndReason.REMOTE_HANGUP)

    def _on_in_dialog_response(self, response: Response) -> None:
        """A 2xx to an INVITE of ours seen again (from its transaction in Accepted, or
        stray after timer M): our ACK was lost, send it again (§13.2.2.4)."""
        if response.is_success and response.cseq.method == "INVITE":
            self._resend_ack(response)

    def _resend_ack(self, response: Response) -> None:
        ack = self._sent_acks.get(response.cseq.number)
        if ack is not None and self.dialog is not None:
            self._agent._send_stateless(ack, self.dialog.next_hop())


def _respond(transaction: ServerTransaction, response: Response) -> bool:
    """Send a response; False when the transaction can no longer send it."""
    try:
        transaction.respond(response)
    except TransactionStateError:
        return False
    return True


class IncomingCall(Call):
    """A call someone placed to us (§13.3). Handed to ``on_incoming_call``.

    ``offer`` is the INVITE's SDP, or ``None`` for an offerless INVITE (then
    :meth:`answer` takes our offer and returns the answer the ACK carries). ``source`` is
    where the INVITE came from; ``authenticated_user`` is the digest username when the
    INVITE was authenticated.
    """

    def __init__(
        self,
        agent: UserAgent,
        transaction: InviteServerTransaction,
        offer: SessionDescription | None,
        authenticated_user: str | None,
    ) -> None:
        super().__init__(agent, transaction.request)
        self.request = transaction.request
        self.offer = offer
        self.remote_sdp = offer
        self.source = transaction.peer
        #: The From of the INVITE (caller ID) and its Request-URI (the number dialled).
        self.caller = transaction.request.from_
        self.called = transaction.request.uri
        self.authenticated_user = authenticated_user
        self.local_tag = new_tag()
        self._transaction = transaction
        transaction.on_failure = self._on_transaction_failure

    def _on_transaction_failure(self, transaction: ServerTransaction, reason: str) -> None:
        logger.info("INVITE transaction of call %s failed: %s", self.call_id, reason)
        if self.state not in (CallState.ANSWERED, CallState.CONNECTING):
            self._end(EndReason.FAILED, None, reason)

    def _response(self, status: int, reason: str | None = None) -> Response:
        response = self.request.create_response(status, reason, to_tag=self.local_tag)
        if 100 < status < 300:
            for value in self.request.headers.get_all("Record-Route"):
                response.headers.add("Record-Route", value)
            response.headers.add("Contact", str(self._agent.contact(self.source.transport)))
        return response

    def _ensure_dialog(self, response: Response) -> Dialog:
        if self.dialog is None:
            self.dialog = Dialog.from_uas(
                self.request,
                response,
                self._agent.contact(self.source.transport),
                self.source.transport,
            )
            if self._agent.route_to_source:
                self.dialog.remote_peer = self.source
            self._agent._remember_dialog(self.dialog, self)
        if response.is_success:
            self.dialog.confirm()
        return self.dialog

    def _provisional(self, status: int, sdp: SessionDescription | None) -> None:
        if self.ended or self._transaction.state is not TransactionState.PROCEEDING:
            raise CallError(f"cannot send {status} in call state {self.state.value}")
        response = self._response(status)
        _with_body(response, sdp)
        self._ensure_dialog(response)
        self._transaction.respond(response)

    def ring(self) -> None:
        """Send 180 Ringing."""
        self._provisional(180, None)
        self._set_state(CallState.RINGING)

    def progress(self, sdp: SessionDescription) -> None:
        """Send 183 Session Progress with ``sdp``: early media, e.g. a ringback tone."""
        self._provisional(183, sdp)
        self.local_sdp = sdp
        self._set_state(CallState.EARLY_MEDIA)

    async def answer(self, sdp: SessionDescription | None) -> SessionDescription | None:
        """Send 200 OK with ``sdp`` and wait for the ACK; the call is then ANSWERED.

        For an offerless INVITE ``sdp`` is our offer and the answer the ACK carries is
        returned (``None`` if it carried none); otherwise the return is ``None``.
        Raises :class:`CallError` when the call ended first (CANCEL, no ACK, BYE).
        """
        if sdp is None and self.offer is None:
            raise ValueError("an offerless INVITE needs our offer in the 200")
        if self.ended or self._transaction.state is not TransactionState.PROCEEDING:
            raise CallError(f"cannot answer a call in state {self.state.value}")
        response = self._response(200)
        response.headers.add("Allow", ", ".join(self._agent.allowed_methods))
        _with_body(response, sdp)
        self._ensure_dialog(response)
        self.local_sdp = sdp
        self._set_state(CallState.CONNECTING)
        ack = await self._send_success(self._transaction, response)
        if ack is None or self.ended:
            end = self.terminated.result() if self.terminated.done() else None
            raise CallError(f"the call ended before its ACK: {end.reason.value if end else ''}")
        self._set_state(CallState.ANSWERED)
        if self.offer is not None:
            return None
        try:
            self.remote_sdp = _parse_body_sdp(ack)
        except SdpParseError as error:
            logger.info("call %s: unreadable SDP answer in the ACK: %s", self.call_id, error)
            return None
        return self.remote_sdp

    def reject(
        self,
        status: int = 486,
        reason: str | None = None,
        *,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Answer the INVITE with a final failure (486 Busy Here by default); ``headers``
        are added to it, e.g. ``Retry-After`` on a 503 (§21.5.4) or ``Warning``."""
        if not 300 <= status <= 699:
            raise ValueError("a rejection is a 3xx-6xx status")
        if self.ended or self._transaction.state is not TransactionState.PROCEEDING:
            raise CallError(f"cannot reject a call in state {self.state.value}")
        response = self._response(status, reason)
        for name, value in headers:
            response.headers.add(name, value)
        self._transaction.respond(response)
        self._end(EndReason.REJECTED, status, response.reason)

    async def hangup(self) -> CallEnd:
        """BYE when the call is up; before the answer, reject it with 480."""
        if self.state in (CallState.INCOMING, CallState.RINGING, CallState.EARLY_MEDIA):
            with contextlib.suppress(CallError):
                self.reject(480)
        return await super().hangup()

    def _on_bye(self, transaction: ServerTransaction) -> None:
        """§15.1.2: a BYE in the early dialog also ends the pending INVITE with 487."""
        if self._transaction.state is TransactionState.PROCEEDING:
            _respond(self._transaction, self._response(487))
        super()._on_bye(transaction)

    def _on_cancel(self) -> None:
        """§9.2: the CANCEL was answered 200; the INVITE gets 487 if still pending."""
        if self._transaction.state is TransactionState.PROCEEDING:
            _respond(self._transaction, self._response(487))
            self._end(EndReason.REMOTE_CANCEL, 487, "Request Terminated")

    def _fail_unanswered(self, status: int) -> None:
        """The owner's handler failed: answer for it if nothing final went out."""
        if not self.ended and self._transaction.state is TransactionState.PROCEEDING:
            self.reject(status)


class OutgoingCall(Call):
    """A call we placed (§13.2). Follow it with :meth:`wait_answer`, ``state`` and
    ``on_state_change``; ``early_sdp`` is the far end's 183 description, ``provisional``
    the statuses of the 1xx answers in order, ``final_status``/``final_reason`` the final
    answer to the INVITE."""

    def __init__(
        self,
        agent: UserAgent,
        invite: Request,
        destination: Peer,
        offer: SessionDescription | None,
        *,
        credentials: tuple[str, str] | None,
        ring_timeout: float | None,
        late_answer: Callable[[SessionDescription], SessionDescription] | None,
        pinned: bool = False,
    ) -> None:
        super().__init__(agent, invite)
        #: True when the owner named the destination: the call's later requests go there
        #: too unless a Record-Route names a hop (a device's NAT address, a trunk's SBC).
        self._pinned = pinned
        self.state = CallState.CALLING
        self.destination = destination
        self.offer = offer
        self.local_sdp = offer
        self.early_sdp: SessionDescription | None = None
        self.provisional: list[int] = []
        self.final_status: int | None = None
        self.final_reason: str | None = None
        self._credentials = credentials
        self._authenticated = False
        self._late_answer = late_answer
        self._got_provisional = False
        self._cancel_reason: EndReason | None = None
        self._cancel_sent = False
        self._answered: asyncio.Future[SessionDescription | None] = agent._loop.create_future()
        self._timers: list[asyncio.TimerHandle] = []
        if ring_timeout is not None:
            self._timers.append(agent._loop.call_later(ring_timeout, self._ring_timeout))

    def _new_dialog(self, response: Response) -> Dialog:
        dialog = Dialog.from_uac(self.invite, response, self.destination.transport)
        if self._pinned:
            dialog.remote_peer = self.destination
        return dialog

    def _send_invite(self) -> None:
        self._agent._layer.send_request(self.invite, self.destination, self._on_response)

    async def wait_answer(self) -> SessionDescription | None:
        """Wait for the answer: the far end's SDP (``None`` if its 2xx had none). Raises
        :class:`CallFailed` with the final status when the call is not answered."""
        return await asyncio.shield(self._answered)

    # -- responses ------------------------------------------------------------------------

    def _on_response(self, response: Response) -> None:
        if response.cseq.number != self.invite.cseq.number:
            return  # an answer to the INVITE we replaced with an authenticated one
        try:
            if response.is_provisional:
                self._on_provisional(response)
            elif response.is_success:
                self._on_success(response)
            else:
                self._on_failure(response)
        except SipParseError as error:
            # A To, Contact or Record-Route we cannot read: no dialog can be built on it.
            logger.info("call %s: malformed %d answer: %s", self.call_id, response.status, error)
            if not response.is_provisional and not self.ended:
                self._fail(502, f"Bad Gateway: {error}"[:120], EndReason.FAILED)

    def _on_provisional(self, response: Response) -> None:
        if self.ended or self._answered.done():
            return
        self.provisional.append(response.status)
        if response.status > 100:
            self._got_provisional = True
            if response.to.tag and self.dialog is None:
                self.dialog = self._new_dialog(response)
        try:
            sdp = _parse_body_sdp(response)
        except SdpParseError as error:
            logger.info("call %s: unreadable early SDP: %s", self.call_id, error)
            sdp = None
        if sdp is not None:
            self.early_sdp = sdp
            self._set_state(CallState.EARLY_MEDIA)
        elif response.status == 180 and self.state is not CallState.EARLY_MEDIA:
            self._set_state(CallState.RINGING)
        elif self.state is CallState.CALLING:
            self._set_state(CallState.PROCEEDING)
        if self._cancel_reason is not None and response.status > 100:
            self._send_cancel()

    def _on_success(self, response: Response) -> None:
        dialog_id = DialogId.of_response(response)
        if self.dialog is not None and self.dialog.state is DialogState.CONFIRMED:
            if dialog_id == self.dialog.id:
                self._resend_ack(response)
            else:
                self._agent._spawn(self._hang_up_fork(response), "BYE to a forked answer")
            return
        if self.dialog is None or self.dialog.id != dialog_id:
            self.dialog = self._new_dialog(response)
        self.dialog.confirm(response)
        self._agent._remember_dialog(self.dialog, self)
        self.final_status, self.final_reason = response.status, response.reason
        self._stop_timers()
        try:
            remote = _parse_body_sdp(response)
        except SdpParseError as error:
            logger.info("call %s: unreadable SDP in the 2xx: %s", self.call_id, error)
            remote = None
        body = b""
        if self.offer is None and remote is not None and self._late_answer is not None:
            try:
                self.local_sdp = self._late_answer(remote)
                body = self.local_sdp.encode()
            except Exception:
                logger.exception("call %s: late_answer failed", self.call_id)
        self._send_ack(self.invite, response, body)
        self.remote_sdp = remote
        if self.offer is not None and remote is not None:
            with contextlib.suppress(SdpNegotiationError):
                self.media = parse_answer(self.offer, remote)
        if self._cancel_reason is not None or self.ended:
            # Answered while our CANCEL was on its way (§9.1): take it down at once.
            self._agent._spawn(self._send_bye(self._cancel_reason or EndReason.LOCAL_CANCEL), "BYE")
            return
        self._set_state(CallState.ANSWERED)
        if not self._answered.done():
            self._answered.set_result(remote)

    async def _hang_up_fork(self, response: Response) -> None:
        """§13.2.2.4: a second 2xx from another fork is ACKed, then the dialog gets BYE."""
        fork = self._new_dialog(response)
        ack = fork.create_ack(self.invite)
        ack.headers.prepend(
            "Via", str(self._agent.transport.make_via(fork.next_hop().transport, new_branch()))
        )
        self._agent._send_stateless(ack, fork.next_hop())
        bye = fork.create_request("BYE")
        await self._agent._layer.send_request(bye, fork.next_hop()).final_response

    def _on_failure(self, response: Response) -> None:
        if self.ended:
            return
        if response.status in (401, 407) and self._retry_with_credentials(response):
            return
        self._fail(response.status, response.reason, self._cancel_reason or EndReason.FAILED)

    def _fail(self, status: int, phrase: str, reason: EndReason) -> None:
        self.final_status, self.final_reason = status, phrase
        if not self._answered.done():
            self._answered.set_exception(
                CallFailed(status, phrase, CallEnd(reason, status, phrase))
            )
            self._answered.exception()
        self._end(reason, status, phrase)

    def _retry_with_credentials(self, response: Response) -> bool:
        """§22.2: answer a 401/407 once, with the next CSeq and the same Call-ID."""
        if self._credentials is None or self._authenticated or self._cancel_reason is not None:
            return False
        invite = _answer_challenge(
            self.invite, response, self._credentials, self.invite.cseq.number + 1
        )
        if invite is None:
            return False
        self._authenticated = True
        self.invite = invite
        self._got_provisional = False  # CANCEL waits for the new INVITE's own 1xx
        self._send_invite()
        return True

    # -- ending ---------------------------------------------------------------------------

    def _ring_timeout(self) -> None:
        if not self.ended and not self._answered.done():
            self._request_cancel(EndReason.RING_TIMEOUT)

    def _request_cancel(self, reason: EndReason) -> None:
        if self._cancel_reason is not None:
            return
        self._cancel_reason = reason
        if self._got_provisional:
            self._send_cancel()
        # else §9.1: no CANCEL before a provisional answer; _on_provisional sends it.

    def _send_cancel(self) -> None:
        if self._cancel_sent:
            return
        self._cancel_sent = True
        cancel = self.invite.create_cancel()
        self._agent._layer.send_request(cancel, self.destination)
        # §9.1: with no final answer 64·T1 after the CANCEL, the INVITE is given up.
        timeout = self._agent.timers.transaction_timeout
        self._timers.append(self._agent._loop.call_later(timeout, self._cancel_expired))

    def _cancel_expired(self) -> None:
        if not self.ended and not self._answered.done():
            self._fail(408, "Request Timeout", self._cancel_reason or EndReason.LOCAL_CANCEL)

    async def cancel(self) -> CallEnd:
        """Cancel the call before it is answered (§9.1) and wait for it to end; after the
        answer this hangs up instead."""
        if self.state is CallState.ANSWERED:
            return await self.hangup()
        if not self.ended:
            self._request_cancel(EndReason.LOCAL_CANCEL)
        return await asyncio.shield(self.terminated)

    async def hangup(self) -> CallEnd:
        """BYE when answered; CANCEL before that."""
        if self.state is CallState.ANSWERED:
            return await super().hangup()
        return await self.cancel()

    def _stop_timers(self) -> None:
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()

    def _on_ended(self) -> None:
        self._stop_timers()
        if not self._answered.done():
            self._answered.set_exception(CallError(f"the call ended: {self.state.value}"))
            self._answered.exception()

    def _on_in_dialog_response(self, response: Response) -> None:
        if response.is_success and response.cseq.number == self.invite.cseq.number:
            self._on_success(response)
        else:
            super()._on_in_dialog_response(response)


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
    bindings, aged by ``clock``; ``digest_algorithms`` are challenged in the order given
    (default MD5 alone, which every phone answers: see
    :data:`~sautikit.sip.digest.DEFAULT_CHALLENGE_ALGORITHMS`); processes sharing
    ``nonce_secret`` accept each other's nonces.

    With ``route_to_source`` (the default) a caller's in-dialog requests (BYE, re-INVITE)
    go back to the address its INVITE came from rather than to its Contact, unless a
    Record-Route names a hop: a phone behind NAT puts a private address in its Contact,
    and over TCP this reuses the caller's connection (the RFC 5626 flow idea).
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
        nonce_secret: bytes | None = None,
        clock: Callable[[], float] = time.monotonic,
        route_to_source: bool = True,
    ) -> None:
        self.transport = transport
        self._loop = asyncio.get_running_loop()
        self._layer = TransactionLayer(transport, self, timers)
        self.timers = self._layer.timers
        self.on_incoming_call = on_incoming_call
        self.user = user
        self.user_agent = user_agent
        self._lookup_ha1 = lookup_ha1
        self._realm_for = realm_for or _default_realm
        self.registrar = (registrar or Registrar()) if lookup_ha1 is not None else None
        self.authenticate_invite = authenticate_invite
        self._digest_algorithms = tuple(digest_algorithms)
        self._nonce_secret = nonce_secret or secrets.token_bytes(32)
        self._authenticators: dict[str, DigestAuthenticator] = {}
        self._clock = clock
        self.route_to_source = route_to_source
        self._calls: dict[DialogId, Call] = {}
        self._pending: dict[tuple[str, str, int], IncomingCall] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
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
        **options: Any,
    ) -> UserAgent:
        """Start a transport on ``host:port`` (0: any free port) and a user agent on it."""
        transport = SipTransportLayer()
        await transport.start(host, port, udp=udp, tcp=tcp, advertised_host=advertised_host)
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
    def allowed_methods(self) -> tuple[str, ...]:
        return _BASE_METHODS + (("REGISTER",) if self.registrar is not None else ())

    @property
    def calls(self) -> list[Call]:
        """Calls with a dialog (ringing with a tag, or up)."""
        return list(dict.fromkeys(self._calls.values()))

    def contact(self, transport: TransportName = "udp") -> NameAddress:
        """Our Contact: ``sip:user@advertised-host:port``, with ``transport=tcp`` over TCP."""
        params: dict[str, str | None] = {"transport": "tcp"} if transport == "tcp" else {}
        uri = SipUri(
            "sip", self.user, self.transport.advertised_host, self.transport.port, params=params
        )
        return NameAddress(uri)

    def lookup(self, aor: str | SipUri) -> list[Binding]:
        """The registered contacts of an address-of-record (``sip:alice@example.com``)."""
        if self.registrar is None:
            return []
        uri = SipUri.parse(aor) if isinstance(aor, str) else aor
        return self.registrar.lookup(_aor(uri), self._clock())

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
    ) -> OutgoingCall:
        """Send an INVITE to ``target`` and return the call at once (§13.2.1).

        ``destination`` (default: the target URI's host, port and transport) is where the
        INVITE goes, e.g. a carrier's SBC or a registered device's source address; the
        call's later requests go there too unless a Record-Route names a hop.
        ``credentials`` (username, password) answer one 401/407. ``ring_timeout`` seconds
        without an answer CANCEL the call. With ``offer=None`` the 2xx carries the far
        end's offer and ``late_answer`` makes the answer the ACK carries.
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
        self._decorate(invite)
        for name, value in extra_headers:
            invite.headers.add(name, value)
        _with_body(invite, offer)
        call = OutgoingCall(
            self,
            invite,
            peer,
            offer,
            credentials=credentials,
            ring_timeout=ring_timeout,
            late_answer=late_answer,
            pinned=destination is not None,
        )
        call._send_invite()
        return call

    # -- TransactionUser ------------------------------------------------------------------

    def on_request(self, transaction: ServerTransaction) -> None:
        request = transaction.request
        if self._closed:
            _respond(transaction, request.create_response(503))
            return
        try:
            self._dispatch(transaction)
        except (SipParseError, ValueError) as error:
            # A header our accessors could not read: the peer's fault, said as a 400.
            logger.info("bad %s from %s: %s", request.method, transaction.peer, error)
            _respond(transaction, request.create_response(400, f"Bad Request: {error}"[:120]))

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
            _respond(transaction, response)
            return
        if method == "CANCEL":
            self._on_cancel(transaction)
            return
        if request.to.tag:
            self._on_in_dialog(transaction)
            return
        if method == "INVITE":
            self._on_invite(cast(InviteServerTransaction, transaction))
        elif method == "OPTIONS":
            _respond(transaction, self._options_response(request))
        elif method == "REGISTER":
            self._on_register(transaction)
        else:  # BYE outside any dialog
            _respond(transaction, request.create_response(481))

    def _on_in_dialog(self, transaction: ServerTransaction) -> None:
        request = transaction.request
        call = self._calls.get(DialogId.of_request(request))
        if call is None or call.dialog is None:
            _respond(transaction, request.create_response(481))
            return
        if not call.dialog.accept_remote_cseq(request):
            _respond(transaction, request.create_response(500, "Out Of Order CSeq"))
            return
        if request.method == "BYE":
            call._on_bye(transaction)
        elif request.method == "INVITE":
            self._spawn(call._handle_reinvite(transaction), "re-INVITE")
        elif request.method == "OPTIONS":
            _respond(transaction, self._options_response(request))
        else:
            response = request.create_response(405)
            response.headers.add("Allow", ", ".join(self.allowed_methods))
            _respond(transaction, response)

    def _on_cancel(self, transaction: ServerTransaction) -> None:
        request = transaction.request
        invite = transaction.matched_invite
        call = self._pending.get(_pending_key(request)) if invite is not None else None
        if call is None:
            _respond(transaction, request.create_response(481))
            return
        _respond(transaction, request.create_response(200))
        call._on_cancel()

    def _on_invite(self, transaction: InviteServerTransaction) -> None:
        request = transaction.request
        if _pending_key(request) in self._pending:
            # §8.2.2.2: the INVITE of a call we already have, arriving by another path (or
            # after its transaction ended): a copy, never a second call.
            _respond(transaction, request.create_response(482, to_tag=new_tag()))
            return
        authenticated_user = None
        policy = self.authenticate_invite
        if policy is not None and policy(request, transaction.peer):
            authenticated_user = self._authenticate(transaction, proxy=True)
            if authenticated_user is None:
                return
        try:
            offer = _parse_body_sdp(request)
        except SdpParseError as error:
            _respond(transaction, request.create_response(400, f"Bad SDP: {error}"[:120]))
            return
        handler = self.on_incoming_call
        if handler is None:
            _respond(transaction, request.create_response(480))
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
        response.headers.add("Accept", _SDP)
        response.headers.add("Supported", "")
        response.headers.add("User-Agent", self.user_agent)
        return response

    # -- registrar ------------------------------------------------------------------------

    def _on_register(self, transaction: ServerTransaction) -> None:
        request = transaction.request
        assert self.registrar is not None
        username = self._authenticate(transaction, proxy=False)
        if username is None:
            return
        to_uri = request.to.uri
        if to_uri.user != username:
            _respond(transaction, request.create_response(403, "Forbidden (not your AoR)"))
            return
        try:
            expires_header = request.headers.get("Expires")
            expires = int(expires_header) if expires_header is not None else None
            contacts = _contact_requests(request)
        except ValueError as error:
            _respond(transaction, request.create_response(400, f"Bad Request: {error}"[:120]))
            return
        peer = transaction.peer
        result = self.registrar.register(
            _aor(to_uri),
            contacts,
            call_id=request.call_id,
            cseq=request.cseq.number,
            now=self._clock(),
            expires=expires,
            source=Source(peer.host, peer.port, peer.transport),
        )
        response = request.create_response(result.status_code, result.reason, to_tag=new_tag())
        if result.min_expires is not None:
            response.headers.add("Min-Expires", str(result.min_expires))
        now = self._clock()
        for binding in result.bindings:
            response.headers.add(
                "Contact", f"<{binding.contact}>;expires={binding.expires_in(now)}"
            )
        asked = {contact.uri for contact in contacts}
        granted = [b.expires_in(now) for b in result.bindings if b.contact in asked]
        if result.ok and contacts:
            response.headers.add("Expires", str(granted[0] if granted else 0))
        _respond(transaction, response)

    def _authenticator(self, realm: str) -> DigestAuthenticator:
        authenticator = self._authenticators.get(realm)
        if authenticator is None:
            authenticator = DigestAuthenticator(realm, self._nonce_secret)
            self._authenticators[realm] = authenticator
        return authenticator

    def _authenticate(self, transaction: ServerTransaction, *, proxy: bool) -> str | None:
        """The verified digest username, or None once the request was answered 401/407
        (no, wrong or stale credentials, an unknown user, or a nonce from before a
        restart)."""
        request = transaction.request
        lookup = self._lookup_ha1
        if lookup is None:
            _respond(transaction, request.create_response(403, "Forbidden (no user database)"))
            return None
        realm = self._realm_for(request)
        authenticator = self._authenticator(realm)
        stale = False
        for value in request.headers.get_all("Proxy-Authorization" if proxy else "Authorization"):
            try:
                credentials = parse_credentials(value)
                same_uri = SipUri.parse(credentials.uri) == request.uri
            except (DigestParseError, SipParseError):
                continue
            if credentials.realm != realm:
                continue
            if not same_uri:
                break
            result = authenticator.verify(credentials, request.method, lookup, body=request.body)
            if result.ok:
                return result.username
            if result.status is VerifyStatus.STALE:
                stale = True
                break
            # An unknown user is challenged again exactly like a wrong password, so the
            # answers never tell a guesser which usernames exist.
            break
        status = 407 if proxy else 401
        response = request.create_response(status, to_tag=new_tag())
        header = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
        for challenge in authenticator.challenge(self._digest_algorithms, stale=stale):
            response.headers.add(header, challenge)
        _respond(transaction, response)
        return None

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
        _with_body(response, sdp)
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


def _default_realm(request: Request) -> str:
    uri = request.to.uri if request.method == "REGISTER" else request.from_.uri
    return uri.host


def _aor(uri: SipUri) -> str:
    """The canonical address-of-record of a URI: scheme, user and lower-cased host."""
    user = f"{uri.user}@" if uri.user else ""
    return f"{uri.scheme}:{user}{uri.host.lower()}"


def _contact_requests(request: Request) -> list[ContactRequest]:
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


def _destination(target: SipUri, destination: Peer | tuple[str, int, str] | None) -> Peer:
    if isinstance(destination, Peer):
        return destination
    if destination is not None:
        host, port, transport = destination
    else:
        host = target.params.get("maddr") or target.host
        port = target.port or DEFAULT_SIP_PORT
        transport = target.transport or "udp"
    if transport not in ("udp", "tcp"):
        raise ValueError(f"unsupported transport {transport!r}")
    return Peer(cast(TransportName, transport), host, port)
