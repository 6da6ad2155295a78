"""SIP over WebSocket (RFC 7118): the connection browsers (JsSIP, SIP.js) register over.

A :class:`WebSocketConnection` is one accepted TCP (``ws``) or TLS (``wss``) connection
carrying the RFC 6455 handshake and frames, driven by the sans-I/O
:class:`websockets.server.ServerProtocol` (no threads, no second event loop; it works on
uvloop like the other transports). The transport layer
(:mod:`sautikit.sip.transport`) owns the listeners and registers each open connection
beside its TCP and TLS ones; this module only turns bytes into SIP messages and back.

* §4.1 — the handshake must offer the ``sip`` subprotocol; one that offers none or another
  is refused with HTTP 400 and the connection closed. Any ``Origin`` is accepted: the
  browser proves who it is with a token in its SIP requests (docs/pbx.md "Browser
  calling"), not with cookies a hostile page could ride on.
* §5.1 — each SIP message is exactly one WebSocket message, text or binary; fragmented
  messages are reassembled. A message larger than the SIP size limit closes the
  connection (1009), as does a frame that breaks RFC 6455 (1002: an unmasked frame from a
  client, a bad opcode, binary garbage): a stream cannot be resynchronised.
* §5 — the server never opens a WebSocket connection: requests to a browser go over the
  connection it opened, and when that is gone the browser is unreachable until it
  reconnects and registers again.
* A handshake must finish within :data:`HANDSHAKE_TIMEOUT` seconds, so idle sockets
  cannot hold descriptors.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol, cast

from websockets.frames import Frame, Opcode
from websockets.http11 import Request as HandshakeRequest
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.typing import Subprotocol

from sautikit.sip.message import MAX_MESSAGE_SIZE
from sautikit.sip.peer import Peer, SipTransportError

__all__ = [
    "HANDSHAKE_TIMEOUT",
    "SIP_SUBPROTOCOL",
    "WebSocketConnection",
    "WebSocketListeners",
    "WebSocketName",
]

logger = logging.getLogger(__name__)

WebSocketName = Literal["ws", "wss"]

#: RFC 7118 §4.1: the WebSocket subprotocol of SIP.
SIP_SUBPROTOCOL = Subprotocol("sip")
#: Seconds a new connection has to complete the WebSocket handshake.
HANDSHAKE_TIMEOUT = 10.0


@dataclass(frozen=True)
class WebSocketListeners:
    """Where SIP over WebSocket listens: ``ws_port`` for plain ``ws`` and ``wss_port`` for
    ``wss`` (TLS with the SIP edge's certificate), each None when off, 0 for any free
    port; on ``host`` (None: the SIP listen host)."""

    ws_port: int | None = None
    wss_port: int | None = None
    host: str | None = None


class ConnectionOwner(Protocol):
    """What a connection needs from the transport layer that accepted it."""

    def _register_connection(self, connection: WebSocketConnection) -> bool: ...

    def _forget_connection(self, connection: WebSocketConnection) -> None: ...

    def _receive_from(self, data: bytes, connection: WebSocketConnection) -> None: ...


class WebSocketConnection(asyncio.Protocol):
    """One SIP-over-WebSocket connection; see the module docstring.

    It joins the owner's connections only once the handshake succeeded, so a half-open or
    refused handshake is never a place to send SIP to.
    """

    def __init__(
        self,
        owner: ConnectionOwner,
        transport_name: WebSocketName,
        *,
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
        on_open: Callable[[WebSocketConnection, HandshakeRequest], None] | None = None,
    ) -> None:
        self._owner = owner
        self.transport_name: WebSocketName = transport_name
        self._protocol = ServerProtocol(
            subprotocols=[SIP_SUBPROTOCOL], max_size=MAX_MESSAGE_SIZE, logger=logger
        )
        self._handshake_timeout = handshake_timeout
        self._timer: asyncio.TimerHandle | None = None
        self._fragments: list[bytes] = []
        self._registered = False
        self._on_open = on_open
        self.transport: asyncio.Transport | None = None
        self.peer: Peer | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        address = transport.get_extra_info("peername")
        self.peer = Peer(self.transport_name, address[0], address[1])
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._handshake_timeout, self._handshake_expired)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        if self._registered:
            self._owner._forget_connection(self)
            self._registered = False

    def data_received(self, data: bytes) -> None:
        protocol = self._protocol
        protocol.receive_data(data)
        for event in protocol.events_received():
            if isinstance(event, HandshakeRequest):
                self._handshake(event)
            elif isinstance(event, Frame):
                self._frame(event)
        self._flush()
        if protocol.parser_exc is not None:
            logger.debug("closing the WebSocket from %s: %s", self.peer, protocol.parser_exc)

    def eof_received(self) -> bool | None:
        self._protocol.receive_eof()
        self._flush()
        return None

    def _handshake(self, request: HandshakeRequest) -> None:
        protocol = self._protocol
        response = protocol.accept(request)
        protocol.send_response(response)
        self._cancel_timer()
        if response.status_code != 101:
            logger.info(
                "refused a WebSocket handshake from %s: %d (%s)",
                self.peer,
                response.status_code,
                protocol.handshake_exc,
            )
            return
        if not self._owner._register_connection(self):
            logger.warning("refusing a WebSocket from %s: too many connections", self.peer)
            protocol.fail(1013, "too many connections")  # 1013: try again later
            return
        self._registered = True
        if self._on_open is not None:
            self._on_open(self, request)

    def _frame(self, frame: Frame) -> None:
        if frame.opcode not in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
            return  # ping, pong and close are the protocol's own
        self._fragments.append(bytes(frame.data))
        if not frame.fin:
            return
        message = b"".join(self._fragments)
        self._fragments.clear()
        self._owner._receive_from(message, self)

    def _flush(self) -> None:
        if self.transport is None:
            return
        for data in self._protocol.data_to_send():
            if data:
                self.transport.write(data)
            else:  # the protocol's end of stream: a server closes the TCP connection
                self.transport.close()
                return
        if self._protocol.state is State.CLOSED:
            self.transport.close()

    def _handshake_expired(self) -> None:
        self._timer = None
        if self._protocol.state is State.CONNECTING and self.transport is not None:
            logger.info("closing a WebSocket from %s: no handshake in time", self.peer)
            self.transport.abort()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    @property
    def is_open(self) -> bool:
        return (
            self.transport is not None
            and not self.transport.is_closing()
            and self._protocol.state is State.OPEN
        )

    def write(self, data: bytes) -> None:
        """Send one SIP message as one text frame (RFC 7118 §5.1: browsers expect text)."""
        if not self.is_open:
            raise SipTransportError(f"WebSocket to {self.peer} is closed")
        self._protocol.send_text(data)
        self._flush()

    def close(self) -> None:
        if self.transport is None:
            return
        if self._protocol.state is State.OPEN:
            self._protocol.send_close(1001, "going away")
            self._flush()
        self.transport.close()
