"""Who a SIP message came from or goes to, apart from the transports that carry it.

:mod:`sautikit.sip.transport` (UDP, TCP, TLS) and :mod:`sautikit.sip.websocket` (WS, WSS)
both speak in these names; the rest of the stack imports them from the transport module.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

__all__ = ["Peer", "SipTransportError", "TransportName"]

#: RFC 3261 §18 transports, and RFC 7118's WebSocket ones (``ws`` over TCP, ``wss`` over
#: TLS).
TransportName = Literal["udp", "tcp", "tls", "ws", "wss"]


class Peer(NamedTuple):
    """Where a message came from (or goes to): transport name, IP address, port."""

    transport: TransportName
    host: str
    port: int


class SipTransportError(OSError):
    """A message could not be sent (not started, connection refused, unresolvable, too big,
    or a WebSocket client whose connection is gone)."""
