"""Call legs: one SIP call and its media channel, kept in step.

A leg owns the offer/answer bookkeeping between the two layers: it negotiates SDP at the
channel's RTP address, configures the channel with what was agreed (again on every
re-INVITE, including hold), and closes the channel when the SIP call ends, whichever side
ends it. The SIP layer knows nothing of media and the media layer nothing of SIP.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from sautikit.media import MediaChannel
from sautikit.media.srtp import SrtpContext
from sautikit.sip import (
    CallEnd,
    CallState,
    IncomingCall,
    NegotiatedMedia,
    OutgoingCall,
    SdpSession,
    SessionDescription,
    parse_answer,
)

__all__ = ["CallLeg", "InboundLeg", "OutboundLeg"]

log = logging.getLogger(__name__)

_HOLD_ADDRESSES = frozenset({"0.0.0.0", "::"})


class CallLeg:
    """What inbound and outbound legs share: the channel, the SDP session, the end."""

    sip: IncomingCall | OutgoingCall

    def __init__(
        self, call: IncomingCall | OutgoingCall, channel: MediaChannel, sdp: SdpSession
    ) -> None:
        self.sip = call
        self.channel = channel
        self.media: NegotiatedMedia | None = None
        self._sdp = sdp
        call.on_reinvite = self._answer_reinvite
        call.on_terminated = self._on_terminated
        # A key in a SIP INFO reaches call logic (and a bridge) like one from RTP.
        call.on_dtmf = channel.deliver_relayed_digit

    @property
    def call_id(self) -> str:
        """The SIP Call-ID."""
        return self.sip.call_id

    @property
    def answered(self) -> bool:
        return self.sip.state is CallState.ANSWERED

    @property
    def ended(self) -> bool:
        return self.sip.ended

    async def wait_ended(self) -> CallEnd:
        """Wait until the call is over, however it ends."""
        return await asyncio.shield(self.sip.terminated)

    async def hangup(self) -> CallEnd:
        """End the call (BYE once answered) and release its media."""
        end = await self.sip.hangup()
        await self.channel.close()
        return end

    async def hold(self) -> None:
        """Put the far end on hold with a ``sendonly`` re-INVITE (RFC 3264 §8.4)."""
        await self._reinvite("sendonly")

    async def unhold(self) -> None:
        await self._reinvite("sendrecv")

    async def _reinvite(self, direction: str) -> None:
        offer = self._sdp.offer(self.channel.local_address[1], direction=direction)
        answer = await self.sip.reinvite(offer)
        self._apply(parse_answer(offer, answer))

    async def _answer_reinvite(self, offer: SessionDescription | None) -> SessionDescription:
        if offer is None:  # an offerless re-INVITE: offer what we have (RFC 3261 §14.2)
            assert self.sip.local_sdp is not None
            return self.sip.local_sdp
        answer, media = self._sdp.answer(offer, self.channel.local_address[1])
        self._apply(media)
        return answer

    def _apply(self, media: NegotiatedMedia) -> None:
        """Point the channel at what the last offer/answer agreed."""
        self.media = media
        keys = media.srtp
        if media.remote_address not in _HOLD_ADDRESSES and media.remote_port:
            self.channel.configure(
                media.remote_address,
                media.remote_port,
                media.codec,
                media.payload_type,
                media.telephone_event_payload_type,
                media.ptime,
                SrtpContext(keys.suite, keys.local_key, keys.remote_key) if keys else None,
            )
        self.channel.set_direction(send=media.can_send, receive=media.can_receive)

    def _on_terminated(self, end: CallEnd) -> None:
        log.debug("call %s ended: %s", self.call_id, end.reason.value)
        self.channel.close_now()


class InboundLeg(CallLeg):
    """A call that reached us. Negotiated on arrival, so a bad offer is refused with 488
    before call logic sees it; the app then rings, plays early media, answers or rejects."""

    sip: IncomingCall

    def __init__(
        self, call: IncomingCall, channel: MediaChannel, *, sdp_address: str | None = None
    ) -> None:
        """``sdp_address`` is what our SDP names (the advertised media address); by
        default the channel's own, right only when it is bound to one address."""
        super().__init__(call, channel, SdpSession(sdp_address or channel.local_address[0]))
        port = channel.local_address[1]
        self._local: SessionDescription
        if call.offer is not None:
            # Raises NoCommonCodec, which the user agent answers with 488.
            self._local, media = self._sdp.answer(call.offer, port)
            self._apply(media)
        else:
            self._local = self._sdp.offer(port)

    @property
    def caller(self) -> str:
        """The caller's user part (a number for carrier calls), or the whole URI."""
        uri = self.sip.caller.uri
        return uri.user or str(uri)

    @property
    def called(self) -> str:
        """The number dialled: the Request-URI's user part, else the To header's (some
        devices send the INVITE to the server's bare address)."""
        return self.sip.called.user or self.sip.request.to.uri.user or str(self.sip.called)

    def ring(self) -> None:
        self.sip.ring()

    def early_media(self) -> None:
        """Send 183 with our SDP so prompts play before the answer (and before billing)."""
        if self.sip.offer is None:
            raise ValueError("early media needs the caller's offer")
        self.sip.progress(self._local)

    async def answer(self) -> None:
        """Answer with 200 OK and wait for the ACK (whose SDP answers an offerless INVITE)."""
        remote = await self.sip.answer(self._local)
        if self.sip.offer is None and remote is not None:
            self._apply(parse_answer(self._local, remote))

    def reject(
        self,
        status: int = 486,
        reason: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Refuse the call with ``status``; ``headers`` go on the response, e.g.
        ``("Retry-After", "5")`` on a 503 when overloaded (RFC 3261 §21.5.4)."""
        self.sip.reject(status, reason, headers=headers)


class OutboundLeg(CallLeg):
    """A call we placed. :meth:`wait_answer` returns once it is answered, or raises
    ``CallFailed`` with the final SIP status (486 busy, 487 cancelled, 408 timeout…)."""

    sip: OutgoingCall

    def __init__(
        self,
        call: OutgoingCall,
        channel: MediaChannel,
        sdp: SdpSession,
        offer: SessionDescription,
    ) -> None:
        super().__init__(call, channel, sdp)
        self._offer = offer
        self.on_ringing: Callable[[], None] | None = None
        """Called once, at the first 180 or 183: the far end is ringing."""
        self.on_early_media: Callable[[], None] | None = None
        """Called once, when a 183's SDP was applied: the far end's audio flows."""
        self.hearing_early_media = False
        """A 183's SDP was applied: the channel carries the far end's early media."""
        call.on_state_change = self._on_state_change

    async def wait_answer(self) -> None:
        try:
            remote = await self.sip.wait_answer()
        except BaseException:
            await self.channel.close()
            raise
        if remote is not None:
            self._apply(parse_answer(self._offer, remote))

    async def cancel(self) -> CallEnd:
        end = await self.sip.cancel()
        await self.channel.close()
        return end

    def _on_state_change(self, state: CallState) -> None:
        if state in (CallState.RINGING, CallState.EARLY_MEDIA) and self.on_ringing is not None:
            ringing, self.on_ringing = self.on_ringing, None
            ringing()
        # Early media (183 with SDP): hear the far end's ringback or announcements.
        if state is CallState.EARLY_MEDIA and self.sip.early_sdp is not None:
            try:
                self._apply(parse_answer(self._offer, self.sip.early_sdp))
            except ValueError as error:
                log.info("call %s: unusable early media SDP: %s", self.call_id, error)
                return
            self.hearing_early_media = True
            if self.on_early_media is not None:
                early, self.on_early_media = self.on_early_media, None
                early()
