"""``Pbx``: one process's SIP user agent and media engine, handing out call legs."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from sautikit.media import MediaEngine, TextToSpeech
from sautikit.pbx.leg import InboundLeg, OutboundLeg
from sautikit.sip import IncomingCall, NameAddress, SdpSession, SipUri, UserAgent
from sautikit.sip.transport import Peer

__all__ = ["InboundHandler", "Pbx"]

log = logging.getLogger(__name__)

#: Receives each inbound leg, already negotiated; it rings, answers or rejects it.
InboundHandler = Callable[[InboundLeg], Awaitable[None]]


class Pbx:
    """The media plane of one process.

    ``on_inbound`` gets every INVITE as an :class:`InboundLeg`; when it returns without
    answering the call stays up for whoever holds the leg. ``media_host`` is the address
    RTP binds to and SDP names; ``user_agent_options`` go to :class:`UserAgent` (digest
    lookups for devices, the INVITE policy, timers).
    """

    def __init__(
        self,
        *,
        sip_host: str = "127.0.0.1",
        sip_port: int = 5080,
        media_host: str | None = None,
        rtp_ports: tuple[int, int] = (20000, 29999),
        tts: TextToSpeech | None = None,
        on_inbound: InboundHandler | None = None,
        sip_user: str = "sautikit",
        **user_agent_options: Any,
    ) -> None:
        self.sip_host = sip_host
        self.sip_port = sip_port
        self.media = MediaEngine(media_host or sip_host, rtp_ports, tts)
        self.on_inbound = on_inbound
        self._sip_user = sip_user
        self.user_agent_options = user_agent_options
        """Options for the :class:`UserAgent` made at :meth:`start` (digest lookups, the
        INVITE policy, timers); call logic may add to them before then."""
        self._agent: UserAgent | None = None

    @property
    def agent(self) -> UserAgent:
        if self._agent is None:
            raise RuntimeError("the PBX is not started")
        return self._agent

    @property
    def port(self) -> int:
        """The SIP port actually bound (useful with port 0)."""
        return self.agent.transport.port

    async def start(self) -> None:
        self.media.start()
        self._agent = await UserAgent.listen(
            self.sip_host,
            self.sip_port,
            on_incoming_call=self._incoming,
            user=self._sip_user,
            **self.user_agent_options,
        )
        log.info("PBX listening for SIP on %s:%d (UDP and TCP)", self.sip_host, self.port)

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
        channel = await self.media.open_channel()
        try:
            leg = InboundLeg(call, channel)
        except BaseException:
            await channel.close()
            raise  # NoCommonCodec: the user agent answers 488
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
    ) -> OutboundLeg:
        """Send an INVITE with our offer and return the leg at once; follow it with
        :meth:`OutboundLeg.wait_answer`."""
        channel = await self.media.open_channel()
        try:
            sdp = SdpSession(channel.local_address[0])
            offer = sdp.offer(channel.local_address[1])
            call = await self.agent.place_call(
                target,
                from_uri=from_uri,
                offer=offer,
                destination=destination,
                credentials=credentials,
                ring_timeout=ring_timeout,
                extra_headers=extra_headers,
            )
        except BaseException:
            await channel.close()
            raise
        return OutboundLeg(call, channel, sdp, offer)
