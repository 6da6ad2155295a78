"""``Pbx``: one process's SIP user agent and media engine, handing out call legs."""

from __future__ import annotations

import ipaddress
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from sautikit.media import MediaEngine, PortsExhausted, TextToSpeech
from sautikit.pbx.leg import CallLeg, InboundLeg, OutboundLeg
from sautikit.sip import CallState, IncomingCall, NameAddress, SdpSession, SipUri, UserAgent
from sautikit.sip.addresses import advertised_address
from sautikit.sip.sdp import DEFAULT_CODECS, Codec, SrtpMode
from sautikit.sip.tls import DEFAULT_SIPS_PORT
from sautikit.sip.transport import Peer
from sautikit.sip.websocket import WebSocketListeners

__all__ = ["InboundHandler", "Pbx", "Screen"]


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


log = logging.getLogger(__name__)

#: Receives each inbound leg, already negotiated; it rings, answers or rejects it.
InboundHandler = Callable[[InboundLeg], Awaitable[None]]

#: Asked for each new INVITE before anything is set up for it (no media, no call logic):
#: None lets it in; ``(status, reason, headers)`` refuses it at once — an overload's 503
#: with Retry-After. Its retransmissions get the same answer from the transaction.
Answer = tuple[int, str, Sequence[tuple[str, str]]]
Screen = Callable[[], Answer | None]

#: Asked for the answer to a new INVITE that found no free RTP port pair (the detail says
#: why): the same 503 with Retry-After the screen gives when overloaded.
OutOfPorts = Callable[[str], Answer]

_SETTING_UP = frozenset({CallState.INCOMING, CallState.RINGING, CallState.EARLY_MEDIA})


class Pbx:
    """The media plane of one process.

    ``on_inbound`` gets every INVITE as an :class:`InboundLeg`; when it returns without
    answering the call stays up for whoever holds the leg.

    Addresses (see :mod:`sautikit.sip.addresses`): SIP listens on ``sip_host`` (``0.0.0.0``
    for every interface) and advertises ``sip_advertised_host`` in Via, Contact and the
    URIs it builds (default: ``sip_host``, or the primary address for a wildcard);
    :attr:`sip_host` is that advertised name. RTP binds to ``media_host`` (default
    ``sip_host``) and SDP names ``media_advertised_address`` (default: the SIP advertised
    address when it is an IP literal, else as for SIP), never a wildcard.
    ``user_agent_options`` go to :class:`UserAgent` (digest lookups for devices, the
    INVITE policy, timers). ``one_way_audio_after`` seconds without RTP from a leg report
    one-way audio on it (0: not watched). With a server context ``sip_tls`` SIP also
    listens for TLS on ``sip_tls_host`` (default ``sip_host``) at ``sip_tls_port``; TCP
    listens on ``sip_tcp_host`` (default ``sip_host``, which UDP listens on);
    ``sip_tls_client`` verifies the servers (trunks) it connects to over TLS.
    ``sip_websocket`` adds SIP over WebSocket for browsers (WSS with ``sip_tls``).
    """

    def __init__(
        self,
        *,
        sip_host: str = "127.0.0.1",
        sip_port: int = 5080,
        sip_advertised_host: str | None = None,
        media_host: str | None = None,
        media_advertised_address: str | None = None,
        rtp_ports: tuple[int, int] = (20000, 29999),
        tts: TextToSpeech | None = None,
        on_inbound: InboundHandler | None = None,
        sip_user: str = "sautikit",
        one_way_audio_after: float = 0.0,
        sip_tcp_host: str | None = None,
        sip_tls: ssl.SSLContext | None = None,
        sip_tls_host: str | None = None,
        sip_tls_port: int = DEFAULT_SIPS_PORT,
        sip_tls_client: ssl.SSLContext | None = None,
        sip_websocket: WebSocketListeners | None = None,
        **user_agent_options: Any,
    ) -> None:
        #: The address SIP binds to; :attr:`sip_host` is the one others are told.
        self.listen_host = sip_host
        self.sip_host = advertised_address(sip_host, sip_advertised_host)
        self.sip_port = sip_port
        self._tcp_host = sip_tcp_host
        self._tls = (sip_tls, sip_tls_host, sip_tls_port, sip_tls_client)
        self._websocket = sip_websocket
        media_bind = media_host or sip_host
        if not media_advertised_address and _is_ip(self.sip_host) and sip_advertised_host:
            media_advertised_address = self.sip_host
        #: The address every SDP we send names for RTP.
        self.media_address = advertised_address(media_bind, media_advertised_address)
        self.media = MediaEngine(
            media_bind, rtp_ports, tts, one_way_audio_after=one_way_audio_after
        )
        self.on_inbound = on_inbound
        self._sip_user = sip_user
        self.user_agent_options = user_agent_options
        """Options for the :class:`UserAgent` made at :meth:`start` (digest lookups, the
        INVITE policy, timers); call logic may add to them before then."""
        self._agent: UserAgent | None = None
        self.screen: Screen | None = None
        self.out_of_ports: OutOfPorts | None = None
        self._setting_up: set[InboundLeg] = set()
        self._opening = 0  # let in by the screen, media not yet open
        self._legs: dict[CallLeg, float] = {}

    @property
    def calls_in_setup(self) -> int:
        """Inbound calls neither answered nor ended yet: the setup queue."""
        done = [leg for leg in self._setting_up if leg.sip.state not in _SETTING_UP]
        self._setting_up.difference_update(done)
        return len(self._setting_up) + self._opening

    @property
    def free_rtp_ports(self) -> int:
        """RTP/RTCP port pairs left for new legs."""
        return self.media.ports.capacity - self.media.ports.in_use

    @property
    def agent(self) -> UserAgent:
        if self._agent is None:
            raise RuntimeError("the PBX is not started")
        return self._agent

    @property
    def started_agent(self) -> UserAgent | None:
        """The user agent once started, else None (for readers that may come first)."""
        return self._agent

    @property
    def port(self) -> int:
        """The SIP port actually bound (useful with port 0)."""
        return self.agent.transport.port

    async def start(self) -> None:
        self.media.start()
        self._agent = await UserAgent.listen(
            self.listen_host,
            self.sip_port,
            advertised_host=self.sip_host,
            tcp_host=self._tcp_host,
            tls=self._tls[0],
            tls_host=self._tls[1],
            tls_port=self._tls[2],
            tls_client=self._tls[3],
            websocket=self._websocket,
            on_incoming_call=self._incoming,
            user=self._sip_user,
            **self.user_agent_options,
        )
        transport = self._agent.transport
        tls_port = transport.tls_port
        ws_host = (self._websocket.host if self._websocket else None) or self.listen_host
        websockets = "".join(
            f", {name.upper()} on {ws_host}:{port}"
            for name, port in (("ws", transport.ws_port), ("wss", transport.wss_port))
            if port
        )
        log.info(
            "PBX listening for SIP on %s:%d (UDP and TCP)%s%s, advertising %s; media at %s",
            self.listen_host,
            self.port,
            f", TLS on {self._tls[1] or self.listen_host}:{tls_port}" if tls_port else "",
            websockets,
            self.sip_host,
            self.media_address,
        )

    async def close(self) -> None:
        if self._agent is not None:
            await self._agent.close()
        await self.media.close()

    async def __aenter__(self) -> Pbx:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _incoming(self, call: IncomingCall) -> None:
        refusal = self.screen() if self.screen is not None else None
        if refusal is not None:
            status, reason, headers = refusal
            call.reject(status, reason, headers=headers)
            return
        self._opening += 1
        try:
            channel = await self.media.open_channel()
        except PortsExhausted as error:
            log.warning("call %s refused: %s", call.call_id, error)
            answer = self.out_of_ports(str(error)) if self.out_of_ports else None
            status, reason, headers = answer or (503, "Service Unavailable", ())
            call.reject(status, reason, headers=headers)
            return
        finally:
            self._opening -= 1
        try:
            leg = InboundLeg(call, channel, sdp_address=self.media_address)
        except BaseException:
            await channel.close()
            raise  # NoCommonCodec: the user agent answers 488
        self._setting_up.add(leg)
        self._track(leg)
        if self.on_inbound is None:
            leg.reject(480, "Temporarily Unavailable")
            return
        await self.on_inbound(leg)

    async def dial(
        self,
        target: SipUri | str,
        *,
        from_uri: SipUri | NameAddress | str,
        destination: Peer | tuple[str, int, str] | None = None,
        credentials: tuple[str, str] | None = None,
        ring_timeout: float | None = 30.0,
        extra_headers: Iterable[tuple[str, str]] = (),
        srtp: SrtpMode = "optional",
        alternates: Sequence[Peer] = (),
        codecs: Sequence[Codec] = DEFAULT_CODECS,
    ) -> OutboundLeg:
        """Send an INVITE with our offer and return the leg at once; follow it with
        :meth:`OutboundLeg.wait_answer`. With ``srtp="required"`` the offer is SRTP (SDES)
        and an answer without a key fails the leg. ``codecs`` is the offer's list: G.711
        for carriers, :data:`~sautikit.sip.sdp.WIDEBAND_CODECS` for a registered device."""
        channel = await self.media.open_channel()
        try:
            sdp = SdpSession(self.media_address, srtp=srtp, codecs=codecs)
            offer = sdp.offer(channel.local_address[1])
            call = await self.agent.place_call(
                target,
                from_uri=from_uri,
                offer=offer,
                destination=destination,
                credentials=credentials,
                ring_timeout=ring_timeout,
                extra_headers=extra_headers,
                alternates=alternates,
            )
        except BaseException:
            await channel.close()
            raise
        leg = OutboundLeg(call, channel, sdp, offer)
        self._track(leg)
        return leg

    @property
    def legs(self) -> dict[CallLeg, float]:
        """The legs not ended yet, each with when it began (``time.monotonic``): what the
        reaper (``sautikit.calls.reaper``) checks against the calls that own them."""
        return dict(self._legs)

    def _track(self, leg: CallLeg) -> None:
        self._legs[leg] = time.monotonic()
        leg.sip.terminated.add_done_callback(lambda _end: self._legs.pop(leg, None))
