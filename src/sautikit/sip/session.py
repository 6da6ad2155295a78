"""SIP sessions: the calls of a user agent, UAS and UAC, as explicit state machines.

In the style of libre's ``sip/`` session code and pjsip's ``sip_inv``: a :class:`Call`
owns one INVITE dialog (:mod:`sautikit.sip.dialog`) and what the owner sees of it.

* :class:`IncomingCall` (UAS, §13.3): ring (180), early media (183 with SDP), answer (200,
  re-sent until the ACK per §13.3.1.4; BYE when it never comes), reject (with extra
  headers such as Retry-After); a CANCEL (§9.2) or an early BYE (§15.1.2) ends it 487.
  An INVITE without an offer gets our offer in the 200 and its answer from the ACK
  (§13.2.1, RFC 3264 §5).
* :class:`OutgoingCall` (UAC, §13.2): provisional answers and early media, the 2xx
  acknowledged (re-ACKed for each retransmission, §13.2.2.4), a forked second 2xx
  acknowledged and hung up, a 401/407 answered once (:mod:`sautikit.sip.client_auth`).
  Cancelling follows :class:`CancelState`: no CANCEL before a provisional answer (§9.1),
  then one, and the INVITE is given up 64·T1 later without a final answer.
* re-INVITEs both ways (§14) follow :class:`ReinviteState`: one at a time; an incoming one
  while ours is out gets 491, a second incoming one 500 with Retry-After (§14.2). The
  default answer is RFC 3264 negotiation at our current media address (488 when nothing
  matches).
* BYE both ways ends the call (§15).
* The extensions carriers and phones expect, each in its own module: reliable
  provisional responses and PRACK (RFC 3262, :mod:`sautikit.sip.prack`), UPDATE (RFC
  3311: answered like a re-INVITE, early or confirmed, and sent as a session refresh),
  session timers (RFC 4028, :mod:`sautikit.sip.session_timer`: a call nobody refreshes
  ends with BYE, :attr:`EndReason.SESSION_EXPIRED`) and DTMF in INFO
  (:mod:`sautikit.sip.info`, handed to ``on_dtmf``); blind transfer by REFER with NOTIFY
  progress (RFC 3515, :mod:`sautikit.sip.refer`, carried out by ``on_refer``).

The :class:`~sautikit.sip.useragent.UserAgent` creates the calls and routes each request
of a dialog to its call; calls reach the transaction layer through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from sautikit.sip.client_auth import answer_challenge
from sautikit.sip.dialog import Dialog, DialogId, DialogState, SuccessRetransmitter, new_tag
from sautikit.sip.errors import SipParseError
from sautikit.sip.info import DTMF_CONTENT_TYPES, InfoDtmfError, content_type_of, info_digit
from sautikit.sip.message import CSeq, Request, Response
from sautikit.sip.option_tags import OUR_OPTION_TAGS
from sautikit.sip.prack import PrackState, RAck, ReliableProvisionals
from sautikit.sip.refer import (
    SIPFRAG_CONTENT_TYPE,
    AttendedTransfer,
    ReferHandler,
    notify_headers,
    refer_target,
    sipfrag,
)
from sautikit.sip.sdp import (
    NegotiatedMedia,
    SdpNegotiationError,
    SdpParseError,
    SessionDescription,
    negotiate_answer,
    parse_answer,
    parse_sdp,
)
from sautikit.sip.session_timer import (
    SessionExpires,
    SessionTimer,
    add_to_response,
    min_se_of,
    negotiate_as_uas,
)
from sautikit.sip.transaction import (
    InviteServerTransaction,
    ServerTransaction,
    TransactionState,
    TransactionStateError,
    new_branch,
)
from sautikit.sip.transport import Peer
from sautikit.sip.uri import NameAddress

if TYPE_CHECKING:
    from sautikit.sip.useragent import UserAgent

__all__ = [
    "SDP_CONTENT_TYPE",
    "Call",
    "CallEnd",
    "CallError",
    "CallFailed",
    "CallState",
    "CancelState",
    "EndReason",
    "IncomingCall",
    "IncomingCallHandler",
    "OutgoingCall",
    "ReinviteHandler",
    "ReinviteState",
    "parse_body_sdp",
    "respond",
    "with_body",
]

logger = logging.getLogger(__name__)

SDP_CONTENT_TYPE = "application/sdp"


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


class ReinviteState(enum.Enum):
    """A call's in-dialog INVITE exchange (§14): at most one at a time, either way."""

    IDLE = "idle"
    #: Our re-INVITE is out; an incoming one meanwhile gets 491 (glare, §14.2).
    OFFERING = "offering"
    #: We are answering the far end's re-INVITE; another one gets 500 with Retry-After.
    ANSWERING = "answering"


class CancelState(enum.Enum):
    """Cancelling an outgoing call's INVITE (§9.1)."""

    NONE = "none"
    #: Cancelling was asked for before any provisional answer: the CANCEL waits for one.
    WAITING_FOR_PROVISIONAL = "waiting_for_provisional"
    #: The CANCEL is out; without a final answer 64·T1 later the INVITE is given up.
    SENT = "sent"


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
    #: No session refresh came (RFC 4028 §10): the far end is gone, we sent BYE.
    SESSION_EXPIRED = "session_expired"


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


def parse_body_sdp(message: Request | Response) -> SessionDescription | None:
    """The message's SDP, or None when it has no SDP body. Raises ``SdpParseError``."""
    if not message.body:
        return None
    content_type = (message.content_type or SDP_CONTENT_TYPE).split(";", 1)[0].strip().lower()
    if content_type != SDP_CONTENT_TYPE:
        return None
    return parse_sdp(message.body)


def with_body(message: Request | Response, description: SessionDescription | None) -> None:
    if description is not None:
        message.headers.set("Content-Type", SDP_CONTENT_TYPE)
        message.body = description.encode()


def _allows(message: Request | Response, method: str) -> bool:
    return any(
        method in (part.strip().upper() for part in value.split(","))
        for value in message.headers.get_all("Allow")
    )


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
        self.reinvite_state = ReinviteState.IDLE
        self._retransmitters: dict[int, SuccessRetransmitter] = {}
        self._acks: dict[int, asyncio.Future[Request]] = {}
        #: The ACK we sent for each 2xx, by CSeq number, re-sent when the 2xx repeats.
        self._sent_acks: dict[int, Request] = {}
        #: (username, password) answering a 401/407 to our requests (a carrier's trunk).
        self._credentials: tuple[str, str] | None = None
        #: Hears each DTMF key that came in an INFO (:mod:`sautikit.sip.info`).
        self.on_dtmf: Callable[[str], None] | None = None
        #: The RFC 4028 timer, once a 2xx agreed one.
        self.session_timer: SessionTimer | None = None
        #: Carries out a REFER's blind transfer (:mod:`sautikit.sip.refer`); None: 603.
        self.on_refer: ReferHandler | None = None
        #: The far end's Allow listed UPDATE: session refreshes use it, not re-INVITE.
        self.remote_allows_update = _allows(invite, "UPDATE")

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
        if self.session_timer is not None:
            self.session_timer.stop()
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

    def answer_challenges_with(self, credentials: tuple[str, str] | None) -> None:
        """The login to answer a 401/407 to our in-dialog requests with (a trunk that
        brought the call in challenging our BYE); a call we placed has its own already."""
        self._credentials = credentials

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
            retry = answer_challenge(request, response, self._credentials, dialog.local_cseq + 1)
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
        if self.reinvite_state is not ReinviteState.IDLE:
            raise CallError("another INVITE of this call is in progress")
        self.reinvite_state = ReinviteState.OFFERING
        try:
            request = self.dialog.create_request(
                "INVITE", body=sdp.encode(), headers=self._refresh_headers()
            )
            self._agent._decorate(request)
            request, response = await self._send_in_dialog(request)
            if response.is_success:
                self._timer_from_response(response)
                # The 2xx's Contact is the new remote target (§12.2.1.2), ACK included.
                with contextlib.suppress(SipParseError):
                    self.dialog.refresh_target(response)
                self._send_ack(request, response)
                answer = parse_body_sdp(response)
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
            self.reinvite_state = ReinviteState.IDLE

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
        if self.reinvite_state is ReinviteState.OFFERING:
            respond(transaction, request.create_response(491))
            return
        if self.reinvite_state is ReinviteState.ANSWERING or self.state is not CallState.ANSWERED:
            response = request.create_response(500)
            response.headers.add("Retry-After", str(secrets.randbelow(10)))
            respond(transaction, response)
            return
        self.reinvite_state = ReinviteState.ANSWERING
        try:
            try:
                offer = parse_body_sdp(request)
            except SdpParseError as error:
                respond(transaction, request.create_response(400, f"Bad SDP: {error}"[:120]))
                return
            try:
                answer = await self.on_reinvite(offer)
            except SdpNegotiationError:
                respond(transaction, request.create_response(488))
                return
            except Exception:
                logger.exception("on_reinvite failed for call %s", self.call_id)
                respond(transaction, request.create_response(500))
                return
            if self.ended:
                respond(transaction, request.create_response(481))
                return
            self.dialog.refresh_target(request)
            response = self._agent._success(request, self.dialog, answer)
            self._timer_for_response(request, response)
            self.local_sdp = answer
            if offer is not None:
                self.remote_sdp = offer
            ack = await self._send_success(transaction, response)
            if offer is None and ack is not None:
                with contextlib.suppress(SdpParseError):
                    self.remote_sdp = parse_body_sdp(ack) or self.remote_sdp
        finally:
            self.reinvite_state = ReinviteState.IDLE

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
            reliable=transaction.reliable,
        )
        self._retransmitters[number] = retransmitter
        if not respond(transaction, response):
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
        respond(transaction, transaction.request.create_response(200))
        self._end(EndReason.REMOTE_HANGUP)

    # -- INFO, UPDATE and PRACK -----------------------------------------------------------

    def _on_info(self, transaction: ServerTransaction) -> None:
        """INFO: a DTMF key goes to ``on_dtmf``; an empty INFO (a keep-alive) gets 200; a
        body we cannot use 415 with what we accept (RFC 6086 §4.2.2)."""
        request = transaction.request
        try:
            digit = info_digit(request)
        except InfoDtmfError as error:
            respond(transaction, request.create_response(400, f"Bad DTMF: {error}"[:120]))
            return
        if digit is None and request.body and content_type_of(request) not in DTMF_CONTENT_TYPES:
            response = request.create_response(415)
            response.headers.add("Accept", ", ".join(sorted(DTMF_CONTENT_TYPES)))
            respond(transaction, response)
            return
        respond(transaction, request.create_response(200))
        if digit is not None and self.on_dtmf is not None:
            self._agent._run_callback(self.on_dtmf, digit)

    async def _handle_update(self, transaction: ServerTransaction) -> None:
        """RFC 3311 §5.2: an UPDATE's offer is answered like a re-INVITE's, early or
        confirmed, without an ACK; one without SDP is a session refresh (RFC 4028)."""
        request = transaction.request
        assert self.dialog is not None
        try:
            offer = parse_body_sdp(request)
        except SdpParseError as error:
            respond(transaction, request.create_response(400, f"Bad SDP: {error}"[:120]))
            return
        answer: SessionDescription | None = None
        if offer is not None:
            if self.reinvite_state is ReinviteState.OFFERING:
                respond(transaction, request.create_response(491))
                return
            if self.reinvite_state is ReinviteState.ANSWERING:
                response = request.create_response(500)
                response.headers.add("Retry-After", str(secrets.randbelow(10)))
                respond(transaction, response)
                return
            self.reinvite_state = ReinviteState.ANSWERING
            try:
                answer = await self.on_reinvite(offer)
            except SdpNegotiationError:
                respond(transaction, request.create_response(488))
                return
            except Exception:
                logger.exception("on_reinvite failed for the UPDATE of call %s", self.call_id)
                respond(transaction, request.create_response(500))
                return
            finally:
                self.reinvite_state = ReinviteState.IDLE
        if self.ended:
            respond(transaction, request.create_response(481))
            return
        self.dialog.refresh_target(request)
        response = request.create_response(200)
        response.headers.add("Contact", str(self.dialog.local_contact))
        with_body(response, answer)
        if self.state is CallState.ANSWERED:
            self._timer_for_response(request, response)
        if answer is not None:
            self.local_sdp, self.remote_sdp = answer, offer
        respond(transaction, response)

    async def update(self, sdp: SessionDescription | None = None) -> SessionDescription | None:
        """Send an UPDATE (RFC 3311), offering ``sdp`` or, without one, refreshing the
        session; returns the answer's SDP. Raises :class:`CallFailed` like :meth:`reinvite`."""
        if self.dialog is None or self.ended:
            raise CallError(f"cannot UPDATE a call in state {self.state.value}")
        if sdp is not None and self.reinvite_state is not ReinviteState.IDLE:
            raise CallError("another offer of this call is in progress")
        if sdp is not None:
            self.reinvite_state = ReinviteState.OFFERING
        try:
            request = self.dialog.create_request(
                "UPDATE", body=sdp.encode() if sdp else b"", headers=self._refresh_headers()
            )
            self._agent._decorate(request)
            _, response = await self._send_in_dialog(request)
            if not response.is_success:
                if response.status in (408, 481):
                    self._end(EndReason.DIALOG_LOST, response.status, response.reason)
                raise CallFailed(response.status, response.reason)
            self._timer_from_response(response)
            with contextlib.suppress(SipParseError):
                self.dialog.refresh_target(response)
            if sdp is None:
                return None
            answer = parse_body_sdp(response)
            if answer is None:
                raise CallFailed(response.status, "the 2xx carried no SDP answer")
            self.local_sdp, self.remote_sdp = sdp, answer
            with contextlib.suppress(SdpNegotiationError):
                self.media = parse_answer(sdp, answer)
            return answer
        except SdpParseError as error:
            raise CallFailed(488, f"unreadable SDP answer: {error}") from error
        finally:
            if sdp is not None:
                self.reinvite_state = ReinviteState.IDLE

    async def _handle_refer(self, transaction: ServerTransaction) -> None:
        """RFC 3515 §2.4: 202 and NOTIFYs of the transfer's progress; ``on_refer`` does it."""
        request = transaction.request
        handler = self.on_refer
        if handler is None or self.state is not CallState.ANSWERED:
            respond(transaction, request.create_response(603))
            return
        try:
            target = refer_target(request)
        except AttendedTransfer as error:
            respond(transaction, request.create_response(501, str(error)[:120]))
            return
        except ValueError as error:
            respond(transaction, request.create_response(400, f"Bad Refer-To: {error}"[:120]))
            return
        assert self.dialog is not None
        self.dialog.refresh_target(request)
        accepted = request.create_response(202)
        accepted.headers.add("Contact", str(self.dialog.local_contact))
        respond(transaction, accepted)
        await self._notify_refer(100, final=False)
        try:
            status = await handler(target)
        except Exception:
            logger.exception("the transfer of call %s to %s failed", self.call_id, target)
            status = 500
        await self._notify_refer(status, final=True)

    async def _notify_refer(self, status: int, *, final: bool) -> None:
        """A NOTIFY with the transfer's status; none once the transferor has hung up."""
        if self.dialog is None or self.ended:
            return
        try:
            notify = self.dialog.create_request(
                "NOTIFY",
                body=sipfrag(status),
                content_type=SIPFRAG_CONTENT_TYPE,
                headers=notify_headers(final),
            )
        except ValueError:
            return
        self._agent._decorate(notify)
        _, response = await self._send_in_dialog(notify)
        if not response.is_success:
            logger.info("call %s: refer NOTIFY answered %d", self.call_id, response.status)

    def _on_prack(self, transaction: ServerTransaction) -> None:
        """A PRACK for no reliable provisional of ours: 481 (RFC 3262 §3)."""
        respond(transaction, transaction.request.create_response(481))

    # -- session timers (RFC 4028) --------------------------------------------------------

    def _timer(self) -> SessionTimer:
        if self.session_timer is None:
            self.session_timer = SessionTimer(self._refresh_session, self._session_expired)
        return self.session_timer

    def _refresh_headers(self) -> list[tuple[str, str]]:
        """What our re-INVITEs and UPDATEs carry while a timer runs: we refresh (§7.4)."""
        timer = self.session_timer
        config = self._agent.session_timers
        if timer is None or not timer.running or config is None:
            return []
        return [
            ("Session-Expires", str(SessionExpires(timer.seconds or config.expires, "uac"))),
            ("Min-SE", str(config.min_se)),
            ("Supported", ", ".join(OUR_OPTION_TAGS)),
        ]

    def _timer_for_response(self, request: Request, response: Response) -> None:
        """We answer ``request`` 2xx: agree the interval and who refreshes (§9), start."""
        config = self._agent.session_timers
        if config is None:
            return
        expires = negotiate_as_uas(request, config)
        add_to_response(response, request, expires)
        self._timer().restart(expires.seconds, expires.refresher == "uas")

    def _timer_from_response(self, response: Response) -> None:
        """The 2xx to our INVITE, re-INVITE or UPDATE: a Session-Expires there starts or
        restarts the timer (§7.2); without one there is none, unless one already runs
        and we keep refreshing it ourselves."""
        if self._agent.session_timers is None:
            return
        if _allows(response, "UPDATE"):
            self.remote_allows_update = True
        expires = SessionExpires.of(response)
        if expires is not None:
            self._timer().restart(expires.seconds, expires.refresher != "uas")
        elif self.session_timer is not None and self.session_timer.seconds is not None:
            self.session_timer.restart(self.session_timer.seconds, True)

    async def _refresh_session(self) -> tuple[int, bool] | None:
        """One refresh: an UPDATE when the far end allows it, else a re-INVITE with the
        description we sent last (no change, same version: RFC 4028 §7.4). Answers
        ``(interval, we refresh)`` or None to try again."""
        if self.ended or self.state is not CallState.ANSWERED:
            return None
        try:
            if self.remote_allows_update:
                await self.update()
            elif self.local_sdp is not None and self.reinvite_state is ReinviteState.IDLE:
                await self.reinvite(self.local_sdp)
            else:
                return None
        except CallFailed as error:
            logger.info("call %s: session refresh answered %s", self.call_id, error)
            if error.status in (408, 481, 491) or self.ended:
                return None  # gone (the call has ended), or crossed ours: try again
            # Any other answer (405, 501, 488…) still shows the far end is alive: a
            # carrier that refuses refreshes must not have its calls cut at expiry.
        except CallError as error:
            logger.info("call %s: session refresh not sent: %s", self.call_id, error)
            return None
        timer = self.session_timer
        if timer is None or timer.seconds is None:
            return None
        return timer.seconds, timer.we_refresh

    def _session_expired(self) -> None:
        logger.info("call %s: no session refresh in time: hanging up", self.call_id)
        if self.dialog is not None and not self.ended:
            self._agent._spawn(self._send_bye(EndReason.SESSION_EXPIRED), "BYE at session expiry")

    def _on_in_dialog_response(self, response: Response) -> None:
        """A 2xx to an INVITE of ours seen again (from its transaction in Accepted, or
        stray after timer M): our ACK was lost, send it again (§13.2.2.4)."""
        if response.is_success and response.cseq.method == "INVITE":
            self._resend_ack(response)

    def _resend_ack(self, response: Response) -> None:
        ack = self._sent_acks.get(response.cseq.number)
        if ack is not None and self.dialog is not None:
            self._agent._send_stateless(ack, self.dialog.next_hop())


def respond(transaction: ServerTransaction, response: Response) -> bool:
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
        #: RFC 3262: provisionals sent reliably when the caller supports ``100rel``.
        self.reliable = ReliableProvisionals(
            transaction.request,
            lambda response: respond(transaction, response),
            agent.timers,
            self._no_prack,
        )

    def _no_prack(self) -> None:
        """RFC 3262 §3: a reliable provisional unacknowledged for 64·T1 ends the INVITE."""
        self._fail_unanswered(504)

    def _on_prack(self, transaction: ServerTransaction) -> None:
        request = transaction.request
        status = 200 if self.reliable.on_prack(request) else 481
        respond(transaction, request.create_response(status))

    def _on_transaction_failure(self, transaction: ServerTransaction, reason: str) -> None:
        logger.info("INVITE transaction of call %s failed: %s", self.call_id, reason)
        if self.state not in (CallState.ANSWERED, CallState.CONNECTING):
            self._end(EndReason.FAILED, None, reason)

    def _response(self, status: int, reason: str | None = None) -> Response:
        response = self.request.create_response(status, reason, to_tag=self.local_tag)
        if 100 < status < 300:
            for value in self.request.headers.get_all("Record-Route"):
                response.headers.add("Record-Route", value)
            response.headers.add("Contact", str(self._local_contact()))
        return response

    def _local_contact(self) -> NameAddress:
        """RFC 5630 §3.1.3: a request to a ``sips:`` URI is answered with a ``sips:``
        Contact (its dialog stays on TLS); others with our Contact for the transport."""
        sips = self.request.uri.scheme == "sips" and self.source.transport == "tls"
        return self._agent.contact(self.source.transport, sips=sips)

    def _ensure_dialog(self, response: Response) -> Dialog:
        if self.dialog is None:
            self.dialog = Dialog.from_uas(
                self.request,
                response,
                self._local_contact(),
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
        with_body(response, sdp)
        self._ensure_dialog(response)
        # Early media must arrive: sent reliably whenever the caller can PRACK; ringing
        # only when the caller requires every provisional to be (RFC 3262 §3).
        if self.reliable.required or (self.reliable.enabled and sdp is not None):
            self.reliable.send(response)
        else:
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
        response.headers.add("Supported", ", ".join(OUR_OPTION_TAGS))
        with_body(response, sdp)
        self._ensure_dialog(response)
        self.reliable.stop()
        self._timer_for_response(self.request, response)
        self.local_sdp = sdp
        self._set_state(CallState.CONNECTING)
        ack = await self._send_success(self._transaction, response)
        if ack is None:
            end = self.terminated.result() if self.terminated.done() else None
            raise CallError(f"the call ended before its ACK: {end.reason.value if end else ''}")
        # The ACK came: the call was answered, even if its BYE followed before we woke
        # (a phone that hangs up at once made a call of 0 s, not a cancelled one).
        self._set_state(CallState.ANSWERED)
        if self.offer is not None:
            return None
        try:
            self.remote_sdp = parse_body_sdp(ack)
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
        self.reliable.stop()
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
            respond(self._transaction, self._response(487))
        super()._on_bye(transaction)

    def _on_cancel(self) -> None:
        """§9.2: the CANCEL was answered 200; the INVITE gets 487 if still pending."""
        if self._transaction.state is TransactionState.PROCEEDING:
            respond(self._transaction, self._response(487))
            self._end(EndReason.REMOTE_CANCEL, 487, "Request Terminated")

    def _fail_unanswered(self, status: int) -> None:
        """The owner's handler failed: answer for it if nothing final went out."""
        if not self.ended and self._transaction.state is TransactionState.PROCEEDING:
            self.reject(status)

    def _on_ended(self) -> None:
        self.reliable.stop()


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
        alternates: Sequence[Peer] = (),
    ) -> None:
        super().__init__(agent, invite)
        #: Where to send the INVITE next if this destination fails (RFC 3263 §4.3).
        self.alternates = list(alternates)
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
        self._retried_min_se = False
        self._prack = PrackState()
        self._late_answer = late_answer
        self._got_provisional = False
        #: Why the call is being cancelled, once it is (the end reason it will get).
        self._cancel_reason: EndReason | None = None
        self.cancel_state = CancelState.NONE
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
                # The early dialog takes requests too: a carrier's UPDATE, our PRACK's
                # answer path (RFC 3311 §5.1, RFC 3262 §4).
                self._agent._remember_dialog(self.dialog, self)
            if _allows(response, "UPDATE"):
                self.remote_allows_update = True
            rack = self._prack.rack_for(response, self.invite)
            dialog = self.dialog
            if rack is not None and dialog is not None and dialog.remote_tag == response.to.tag:
                self._agent._spawn(self._send_prack(rack), "PRACK")
        try:
            sdp = parse_body_sdp(response)
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
            if self.dialog is not None:
                self._agent._forget_dialog(self.dialog)  # an early dialog of another fork
            self.dialog = self._new_dialog(response)
        self.dialog.confirm(response)
        self._agent._remember_dialog(self.dialog, self)
        self.final_status, self.final_reason = response.status, response.reason
        self._stop_timers()
        try:
            remote = parse_body_sdp(response)
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
        if _allows(response, "UPDATE"):
            self.remote_allows_update = True
        self._timer_from_response(response)
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

    async def _send_prack(self, rack: RAck) -> None:
        """RFC 3262 §7.2: acknowledge a reliable provisional in its early dialog."""
        if self.dialog is None or self.ended:
            return
        try:
            prack = self.dialog.create_request("PRACK", headers=[("RAck", str(rack))])
        except ValueError:
            return
        self._agent._decorate(prack)
        _, response = await self._send_in_dialog(prack)
        if not response.is_success:
            logger.info("call %s: PRACK answered %d", self.call_id, response.status)

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
        if response.status == 422 and self._retry_with_min_se(response):
            return
        if response.status in (408, 503) and self._fail_over():
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
        invite = answer_challenge(
            self.invite, response, self._credentials, self.invite.cseq.number + 1
        )
        if invite is None:
            return False
        self._authenticated = True
        self.invite = invite
        self._got_provisional = False  # CANCEL waits for the new INVITE's own 1xx
        self._prack.forget()
        self._send_invite()
        return True

    def _retry_with_min_se(self, response: Response) -> bool:
        """RFC 4028 §7.4: a 422 names the far end's Min-SE; ask once more with it."""
        asked = min_se_of(response)
        if self._retried_min_se or asked <= 0 or self._cancel_reason is not None:
            return False
        self._retried_min_se = True
        invite = self._next_invite(("Session-Expires", "Min-SE"))
        invite.headers.add("Session-Expires", str(asked))
        invite.headers.add("Min-SE", str(asked))
        self._resend_as(invite)
        return True

    def _fail_over(self) -> bool:
        """RFC 3263 §4.3: no answer, a transport error or 503 from this destination before
        any provisional answer: the same call goes to the next one, if there is one."""
        if not self.alternates or self._got_provisional or self._cancel_reason is not None:
            return False
        failed, self.destination = self.destination, self.alternates.pop(0)
        logger.info("call %s: %s failed, trying %s", self.call_id, failed, self.destination)
        self._resend_as(self._next_invite())
        return True

    def _next_invite(self, without: Iterable[str] = ()) -> Request:
        """Our INVITE again with the next CSeq and no Via (a new transaction)."""
        dropped = {"Via", *without}
        invite = Request(method="INVITE", uri=self.invite.uri, body=self.invite.body)
        for name, value in self.invite.headers:
            if name not in dropped:
                invite.headers.add(name, value)
        invite.headers.set("CSeq", str(CSeq(self.invite.cseq.number + 1, "INVITE")))
        return invite

    def _resend_as(self, invite: Request) -> None:
        self.invite = invite
        self._got_provisional = False
        self._prack.forget()
        self._send_invite()

    # -- ending ---------------------------------------------------------------------------

    def _ring_timeout(self) -> None:
        if not self.ended and not self._answered.done():
            self._request_cancel(EndReason.RING_TIMEOUT)

    def _request_cancel(self, reason: EndReason) -> None:
        if self._cancel_reason is not None:
            return
        self._cancel_reason = reason
        self.cancel_state = CancelState.WAITING_FOR_PROVISIONAL
        if self._got_provisional:
            self._send_cancel()
        # else §9.1: no CANCEL before a provisional answer; _on_provisional sends it.

    def _send_cancel(self) -> None:
        if self.cancel_state is not CancelState.WAITING_FOR_PROVISIONAL:
            return
        self.cancel_state = CancelState.SENT
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
