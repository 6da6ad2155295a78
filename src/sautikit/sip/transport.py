"""SIP over UDP, TCP, TLS and WebSocket on asyncio (RFC 3261 §18, §26.2, RFC 3581, RFC 7118).

:class:`SipTransportLayer` listens on one host and port for both UDP and TCP, and with a
server TLS context on a second port (5061 by default) for TLS, and hands each parsed
message, with the :class:`Peer` it came from, to one handler (normally the transaction
layer). TLS is a stream transport like TCP (same framing, same connection reuse); outbound
TLS connections verify the peer with the client context (:mod:`sautikit.sip.tls`). SIP over
WebSocket (``ws``, and ``wss`` with the TLS server context) listens on ports of its own
(:class:`~sautikit.sip.websocket.WebSocketListeners`); its connections
(:mod:`sautikit.sip.websocket`) are reliable like TCP's but are never opened from here
(RFC 7118 §5): a request to a WebSocket peer goes over the connection the peer opened, or
fails at once. It follows:

* §18.2.1 / RFC 3581 §4 — on every received request the top Via gets ``received`` when the
  source IP differs from sent-by, and a valueless ``rport`` is filled with the source port
  (which also forces ``received``).
* §18.1.2 — a response whose top Via sent-by is not ours is dropped silently.
* §18.2.2 / RFC 3581 §4 — :meth:`SipTransportLayer.send_response` answers on the TCP
  connection the request came in on while it lives; otherwise to ``maddr``, or to
  ``received`` (or the sent-by host) at ``rport`` (or the sent-by port, or 5060).
* §18.3 — TCP is framed by Content-Length out of a per-connection stream buffer; CRLF
  keep-alives between messages (RFC 5626 §3.5.1) are skipped; a connection, whichever side
  opened it, is reused for later messages to the same address.
* Bad input never stops a listener: unparseable datagrams and frames are logged at debug
  level and dropped, except that a request that still shows its Via, From, To, Call-ID and
  CSeq is answered 400 (§21.4.1). A TCP stream whose framing is broken or oversized is
  closed, since it cannot be resynchronised.

Only uvloop-compatible asyncio APIs are used (protocols and ``create_*`` calls, no threads).
Names are resolved with ``loop.getaddrinfo``; RFC 3263 (NAPTR/SRV) is not done here.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import re
import socket
import ssl
from collections.abc import Callable, Coroutine
from typing import Any, Literal, cast

from sautikit.sip.addresses import advertised_address
from sautikit.sip.errors import SipParseError
from sautikit.sip.message import (
    MAX_MESSAGE_SIZE,
    Request,
    Response,
    best_effort_bad_request_response,
    parse_message,
)
from sautikit.sip.peer import Peer, SipTransportError, TransportName
from sautikit.sip.tls import DEFAULT_SIPS_PORT, client_context
from sautikit.sip.uri import SipUri, Via
from sautikit.sip.websocket import WebSocketConnection, WebSocketListeners, WebSocketName

__all__ = [
    "DEFAULT_SIP_PORT",
    "MAX_TCP_CONNECTIONS",
    "MessageHandler",
    "Peer",
    "SipTransportError",
    "SipTransportLayer",
    "TransportName",
    "default_port",
    "is_stream",
    "is_websocket",
    "transport_named",
    "uri_transport",
]

logger = logging.getLogger(__name__)

DEFAULT_SIP_PORT = 5060
#: Connections accepted beyond this are closed at once, against descriptor exhaustion.
MAX_TCP_CONNECTIONS = 1024

StreamName = Literal["tcp", "tls"]
#: RFC 7118 leaves WebSocket ports to the deployment; these are the URI defaults (RFC 6455).
_WEBSOCKET_DEFAULT_PORTS = {"ws": 80, "wss": 443}

_STREAM_CONTENT_LENGTH = re.compile(
    rb"^(?:content-length|l)[ \t]*:[ \t]*([0-9]+)[ \t]*\r?$", re.IGNORECASE | re.MULTILINE
)


MessageHandler = Callable[[Request | Response, Peer], None]


def is_stream(transport: str) -> bool:
    """TCP, TLS and WebSocket are reliable: no retransmission timers, connection reuse."""
    return transport in ("tcp", "tls", "ws", "wss")


def is_websocket(transport: str) -> bool:
    """RFC 7118 transports: reached only over the connection the peer opened."""
    return transport in ("ws", "wss")


_TRANSPORTS: dict[str, TransportName] = {
    "udp": "udp",
    "tcp": "tcp",
    "tls": "tls",
    "ws": "ws",
    "wss": "wss",
}


def transport_named(value: str) -> TransportName:
    """A stored transport name (a binding's source, a trunk's setting) as ours; UDP when
    unknown."""
    return _TRANSPORTS.get(value.lower(), "udp")


def uri_transport(uri: SipUri) -> TransportName | None:
    """The transport a URI asks for: TLS for ``sips:`` (RFC 5630 §3) or ``transport=tls``,
    else its ``transport`` parameter when we speak it (``ws``, RFC 7118 §5.2), else None
    (the caller's default)."""
    if uri.scheme == "sips":
        return "tls"
    value = uri.transport
    return _TRANSPORTS.get(value) if value else None


def default_port(transport: str) -> int:
    """§19.1.2: 5061 for TLS (and ``sips:``), 5060 for UDP and TCP; 80 and 443 for WS
    and WSS (RFC 7118 §5.2)."""
    if transport == "tls":
        return DEFAULT_SIPS_PORT
    return _WEBSOCKET_DEFAULT_PORTS.get(transport, DEFAULT_SIP_PORT)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _same_ip(a: str, b: str) -> bool:
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return a.lower() == b.lower()


def _stamp_received(message: Request | Response, source: Peer) -> None:
    """Add ``received`` / fill ``rport`` on the top Via as §18.2.1 and RFC 3581 §4 ask.

    Also applied to the Via copied into a 400 built before the request was accepted.
    """
    via = message.top_via
    if via.rport_requested:
        via.params["rport"] = str(source.port)
        via.params["received"] = source.host
    elif not _same_ip(via.host, source.host):
        via.params["received"] = source.host
    else:
        return
    message.headers.remove_first("Via")
    message.headers.prepend("Via", str(via))


# Linux: queue ICMP errors (port or host unreachable) on the socket, with the address the
# failed datagram went to, instead of dropping them (ip(7), IP_RECVERR).
_RECVERR = {
    socket.AF_INET: (socket.IPPROTO_IP, getattr(socket, "IP_RECVERR", 11)),
    socket.AF_INET6: (socket.IPPROTO_IPV6, getattr(socket, "IPV6_RECVERR", 25)),
}


class _DatagramProtocol(asyncio.DatagramProtocol):
    """UDP, with ICMP unreachable reported: an INVITE to a port where nothing listens
    fails at once (the layer's ``on_unreachable``) instead of after timer B's 32 s."""

    def __init__(self, layer: SipTransportLayer) -> None:
        self._layer = layer
        self._errors: socket.socket | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        sock = transport.get_extra_info("socket")
        option = _RECVERR.get(sock.family) if sock is not None else None
        if option is None:
            return
        try:
            # A duplicate of the descriptor, because uvloop's transport hands out a
            # stand-in socket object that cannot recvmsg.
            errors = socket.socket(sock.family, socket.SOCK_DGRAM, fileno=os.dup(sock.fileno()))
            errors.setsockopt(*option, 1)
            errors.setblocking(False)
        except OSError as error:
            logger.debug("no ICMP error reports on this socket: %s", error)
            return
        self._errors = errors

    def connection_lost(self, exc: Exception | None) -> None:
        if self._errors is not None:
            self._errors.close()
            self._errors = None

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self._layer._receive(data, Peer("udp", addr[0], addr[1]))

    def error_received(self, exc: Exception) -> None:
        logger.debug("UDP socket error: %s", exc)
        if self._errors is None:
            return
        while True:  # drain the queue: a queued error keeps the socket signalling
            try:
                _, _, _, address = self._errors.recvmsg(1, 1024, socket.MSG_ERRQUEUE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:
                logger.debug("reading the socket's error queue failed: %s", error)
                return
            if isinstance(address, tuple) and len(address) >= 2:
                self._layer._unreachable(Peer("udp", str(address[0]), int(address[1])))


class _StreamConnection(asyncio.Protocol):
    """One TCP or TLS connection: a stream buffer cut into messages by Content-Length
    (§18.3); asyncio's SSL layer has decrypted what reaches :meth:`data_received`."""

    def __init__(self, layer: SipTransportLayer, transport_name: StreamName = "tcp") -> None:
        self._layer = layer
        self.transport_name: StreamName = transport_name
        self._buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.peer: Peer | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, hence a cast, not a check.
        self.transport = cast(asyncio.Transport, transport)
        address = transport.get_extra_info("peername")
        self.peer = Peer(self.transport_name, address[0], address[1])
        if not self._layer._register_connection(self):
            logger.warning("refusing a connection from %s: too many connections", self.peer)
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self._layer._forget_connection(self)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        try:
            while (frame := self._next_frame()) is not None:
                assert self.peer is not None
                self._layer._receive(frame, self.peer)
        except SipParseError as error:
            logger.debug("closing the connection from %s: %s", self.peer, error)
            self.close()

    def _next_frame(self) -> bytes | None:
        buffer = self._buffer
        keepalive = len(buffer) - len(buffer.lstrip(b"\r\n"))
        del buffer[:keepalive]
        head_end = buffer.find(b"\r\n\r\n")
        if head_end < 0:
            if len(buffer) > MAX_MESSAGE_SIZE:
                raise SipParseError("no end of headers within the message size limit")
            return None
        match = _STREAM_CONTENT_LENGTH.search(bytes(buffer[:head_end]))
        # §18.3 makes Content-Length mandatory on streams; without it the body is empty.
        digits = match.group(1) if match else b"0"
        if len(digits) > 10:
            raise SipParseError("absurd Content-Length on a stream")
        length = int(digits)
        total = head_end + 4 + length
        if total > MAX_MESSAGE_SIZE:
            raise SipParseError(f"framed message of {total} bytes exceeds {MAX_MESSAGE_SIZE}")
        if len(buffer) < total:
            return None
        frame = bytes(buffer[:total])
        del buffer[:total]
        return frame

    @property
    def is_open(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def write(self, data: bytes) -> None:
        if not self.is_open:
            raise SipTransportError(f"connection to {self.peer} is closed")
        assert self.transport is not None
        self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class SipTransportLayer:
    """UDP and TCP SIP transports sharing one local address, and TLS on its own port; see
    the module docstring.

    ``handler`` receives every parsed message with its source :class:`Peer`; it runs
    synchronously in the event loop and an exception it raises is logged, never propagated
    into the listener.
    """

    def __init__(self, handler: MessageHandler | None = None) -> None:
        self.handler = handler
        self.on_unreachable: Callable[[Peer], None] | None = None
        """Called when ICMP says a UDP destination is unreachable (nothing listens)."""
        self.host = ""
        self.port = 0
        self.advertised_host = ""
        #: The TLS port (0 while TLS is off); Via and Contact over TLS name it.
        self.tls_port = 0
        self._tls_server: asyncio.Server | None = None
        self._tls_client: ssl.SSLContext | None = None
        # The address family of our sockets: names resolve to addresses we can reach.
        self._family = socket.AF_UNSPEC
        self._udp: asyncio.DatagramTransport | None = None
        self._server: asyncio.Server | None = None
        #: The WS and WSS ports (0 while off); Via and Contact over them name these.
        self.ws_port = 0
        self.wss_port = 0
        self._ws_servers: list[asyncio.Server] = []
        self._connections: dict[tuple[str, str, int], _StreamConnection | WebSocketConnection] = {}
        self._connecting: dict[tuple[str, str, int], asyncio.Future[_StreamConnection]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(
        self,
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
    ) -> None:
        """Listen on ``host:port`` (TCP on ``tcp_host``, default ``host``); port 0 picks
        one free port shared by UDP and TCP.

        ``advertised_host`` is what goes into Via sent-by and Contact (default ``host``, or
        for a wildcard such as ``0.0.0.0`` the machine's primary address: see
        :mod:`sautikit.sip.addresses`). With a server context ``tls``, TLS listens on
        ``tls_host`` (default ``host``) at ``tls_port`` (0: any free port). ``tls_client``
        verifies the servers we connect to over TLS (default: the system's trust store).
        ``websocket`` adds SIP over WebSocket listeners (WSS needs ``tls``).
        """
        if not udp and not tcp and tls is None:
            raise ValueError("start at least one of UDP, TCP and TLS")
        if websocket is not None and websocket.wss_port is not None and tls is None:
            raise ValueError("WSS needs the TLS server context")
        self._tls_client = tls_client
        if tls is not None:
            loop = asyncio.get_running_loop()
            self._tls_server = await loop.create_server(
                lambda: _StreamConnection(self, "tls"),
                tls_host or host,
                tls_port,
                ssl=tls,
                reuse_address=True,
            )
            tls_socket = self._tls_server.sockets[0]
            self.tls_port, self._family = tls_socket.getsockname()[1], tls_socket.family
        try:
            if udp or tcp:
                await self._start_plain(
                    host, port, udp=udp, tcp=tcp, advertised_host=advertised_host, tcp_host=tcp_host
                )
            else:
                self.host, self.port = host, self.tls_port
                self.advertised_host = advertised_address(host, advertised_host)
            if websocket is not None:
                await self._start_websockets(websocket, host, tls)
        except BaseException:
            await self.close()  # a taken port: release the ones already bound
            raise

    async def _start_websockets(
        self, listeners: WebSocketListeners, host: str, tls: ssl.SSLContext | None
    ) -> None:
        loop = asyncio.get_running_loop()
        bind = listeners.host or host
        wanted: list[tuple[WebSocketName, int, ssl.SSLContext | None]] = []
        if listeners.ws_port is not None:
            wanted.append(("ws", listeners.ws_port, None))
        if listeners.wss_port is not None:
            wanted.append(("wss", listeners.wss_port, tls))
        for name, port, context in wanted:

            def accept(name: WebSocketName = name) -> WebSocketConnection:
                return WebSocketConnection(self, name)

            server = await loop.create_server(accept, bind, port, ssl=context, reuse_address=True)
            self._ws_servers.append(server)
            bound = server.sockets[0].getsockname()[1]
            if name == "ws":
                self.ws_port = bound
            else:
                self.wss_port = bound

    async def _start_plain(
        self,
        host: str,
        port: int,
        *,
        udp: bool,
        tcp: bool,
        advertised_host: str | None,
        tcp_host: str | None = None,
    ) -> None:
        loop = asyncio.get_running_loop()
        attempts = 5 if port == 0 and udp and tcp else 1
        for attempt in range(attempts):
            bound_port = port
            if udp:
                self._udp, _ = await loop.create_datagram_endpoint(
                    lambda: _DatagramProtocol(self), local_addr=(host, port)
                )
                udp_socket = self._udp.get_extra_info("socket")
                bound_port, self._family = udp_socket.getsockname()[1], udp_socket.family
            if tcp:
                try:
                    self._server = await loop.create_server(
                        lambda: _StreamConnection(self),
                        tcp_host or host,
                        bound_port,
                        reuse_address=True,
                    )
                except OSError:
                    # The ephemeral UDP port may be taken for TCP: try another pair.
                    if self._udp is not None:
                        self._udp.close()
                        self._udp = None
                    if attempt + 1 == attempts:
                        raise
                    continue
                tcp_socket = self._server.sockets[0]
                bound_port, self._family = tcp_socket.getsockname()[1], tcp_socket.family
            self.host, self.port = host, bound_port
            self.advertised_host = advertised_address(host, advertised_host)
            return

    def port_for(self, transport: TransportName) -> int:
        """The port we listen on for ``transport`` (the TLS port for TLS, the WS and WSS
        ports for those)."""
        own = {"tls": self.tls_port, "ws": self.ws_port, "wss": self.wss_port}.get(transport)
        return own or self.port

    @property
    def listening(self) -> bool:
        """Whether the UDP socket or a TCP/TLS server still takes messages (for /readyz)."""
        udp = self._udp is not None and not self._udp.is_closing()
        servers = (self._server, self._tls_server, *self._ws_servers)
        return udp or any(server is not None and server.is_serving() for server in servers)

    def make_via(self, transport: TransportName, branch: str) -> Via:
        """A Via for a request we send: our sent-by, ``branch`` and a request for rport."""
        return Via(
            transport.upper(),
            self.advertised_host,
            self.port_for(transport),
            {"branch": branch, "rport": None},
        )

    async def send(
        self,
        message: Request | Response,
        address: tuple[str, int],
        transport: TransportName = "udp",
    ) -> None:
        """Send ``message`` to ``address`` as is (Via and routing are the caller's job).

        Over TCP and TLS an open connection to ``address`` is reused, else one is opened
        (TLS verifies the server's certificate against ``address``'s host name). Over WS
        and WSS only the peer's own open connection is used (RFC 7118 §5).

        :raises SipTransportError: when the message cannot be sent.
        """
        data = message.encode()
        if len(data) > MAX_MESSAGE_SIZE:
            raise SipTransportError(f"message of {len(data)} bytes is too large to send")
        host, port = address
        try:
            if transport == "udp":
                if self._udp is None or self._udp.is_closing():
                    raise SipTransportError("UDP transport is not running")
                self._udp.sendto(data, (await self._resolve(host, port, socket.SOCK_DGRAM), port))
            elif transport == "tcp" or transport == "tls":
                connection = await self._stream_connection(transport, (host, port))
                connection.write(data)
            elif transport == "ws" or transport == "wss":
                self._websocket_connection(Peer(transport, host, port)).write(data)
            else:
                raise SipTransportError(f"unknown transport {transport!r}")
        except SipTransportError:
            raise
        except OSError as error:  # e.g. an IPv6 destination on an IPv4 socket
            raise SipTransportError(f"cannot send to {host}:{port}: {error}") from error

    async def send_response(self, response: Response, source: Peer) -> None:
        """Send ``response`` to a request that came from ``source`` (§18.2.2, RFC 3581)."""
        via = response.top_via
        if is_websocket(source.transport):
            self._websocket_connection(source).write(response.encode())
            return
        if source.transport == "tcp" or source.transport == "tls":
            connection = self._connections.get(source)
            if connection is not None and connection.is_open:
                connection.write(response.encode())
                return
            address = (via.received or via.host, via.port or default_port(source.transport))
        elif via.maddr:
            address = (via.maddr, via.port or DEFAULT_SIP_PORT)
        else:
            address = (via.received or via.host, via.rport or via.port or DEFAULT_SIP_PORT)
        await self.send(response, address, source.transport)

    async def close(self) -> None:
        """Stop listening, close every connection and drop pending sends."""
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        for connection in list(self._connections.values()):
            connection.close()
        for task in list(self._tasks):
            task.cancel()
        for server in (self._server, self._tls_server, *self._ws_servers):
            if server is not None:
                server.close()
                await server.wait_closed()
        self._server = self._tls_server = None
        self._ws_servers.clear()
        self.tls_port = self.ws_port = self.wss_port = 0
        self._connections.clear()

    def spawn(self, coroutine: Coroutine[Any, Any, None], what: str) -> None:
        """Run a send in the background, logging (never raising) its failure as ``what``."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)

        def finished(done: asyncio.Task[None]) -> None:
            self._tasks.discard(done)
            if not done.cancelled() and done.exception() is not None:
                logger.info("could not send %s: %s", what, done.exception())

        task.add_done_callback(finished)

    async def _resolve(self, host: str, port: int, kind: socket.SocketKind) -> str:
        if _is_ip(host):
            return host
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, family=self._family, type=kind
            )
        except OSError as error:
            raise SipTransportError(f"cannot resolve {host}: {error}") from error
        return str(infos[0][4][0])

    async def _stream_connection(
        self, transport: StreamName, address: tuple[str, int]
    ) -> _StreamConnection:
        host = await self._resolve(address[0], address[1], socket.SOCK_STREAM)
        key = (transport, host, address[1])
        existing = self._connections.get(key)
        if isinstance(existing, _StreamConnection) and existing.is_open:
            return existing
        pending = self._connecting.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_StreamConnection] = loop.create_future()
        self._connecting[key] = future
        try:
            if transport == "tls":
                _, connection = await loop.create_connection(
                    lambda: _StreamConnection(self, "tls"),
                    host,
                    address[1],
                    ssl=self._client_context(),
                    server_hostname=address[0],
                )
            else:
                _, connection = await loop.create_connection(
                    lambda: _StreamConnection(self), host, address[1]
                )
        except (OSError, ssl.SSLError) as error:
            failure = SipTransportError(f"cannot connect to {host}:{address[1]}: {error}")
            future.set_exception(failure)
            future.exception()  # mark it retrieved: there may be no other waiter
            raise failure from error
        finally:
            self._connecting.pop(key, None)
        future.set_result(connection)
        return connection

    def _websocket_connection(self, peer: Peer) -> WebSocketConnection:
        connection = self._connections.get(peer)
        if isinstance(connection, WebSocketConnection) and connection.is_open:
            return connection
        raise SipTransportError(
            f"no open WebSocket from {peer.host}:{peer.port}: a WebSocket client is reached "
            "only over the connection it opened (RFC 7118 §5)"
        )

    def _client_context(self) -> ssl.SSLContext:
        """The verifying client context (made on first use: the system's trust store)."""
        if self._tls_client is None:
            self._tls_client = client_context()
        return self._tls_client

    def _is_our_sent_by(self, via: Via) -> bool:
        """§18.1.2: a response whose top Via we did not write is not for us."""
        port = via.port or default_port(via.transport.lower())
        ours = (self.port, self.tls_port, self.ws_port, self.wss_port)
        return port in ours and _same_ip(via.host, self.advertised_host)

    def _register_connection(self, connection: _StreamConnection | WebSocketConnection) -> bool:
        if len(self._connections) >= MAX_TCP_CONNECTIONS:
            return False
        assert connection.peer is not None
        self._connections[connection.peer] = connection
        return True

    def _forget_connection(self, connection: _StreamConnection | WebSocketConnection) -> None:
        if connection.peer is None:
            return
        if self._connections.get(connection.peer) is connection:
            del self._connections[connection.peer]

    def _unreachable(self, peer: Peer) -> None:
        logger.info("ICMP: %s:%d is unreachable", peer.host, peer.port)
        if self.on_unreachable is not None:
            try:
                self.on_unreachable(peer)
            except Exception:
                logger.exception("handling an unreachable peer failed")

    def _receive_from(self, data: bytes, connection: WebSocketConnection) -> None:
        assert connection.peer is not None
        self._receive(data, connection.peer)

    def _receive(self, data: bytes, source: Peer) -> None:
        if not data.strip(b"\r\n"):
            return  # keep-alive
        try:
            message = parse_message(data)
        except SipParseError as error:
            logger.debug("dropping bad SIP message from %s:%s: %s", source.host, source.port, error)
            bad_request = best_effort_bad_request_response(data, str(error))
            if bad_request is not None:
                _stamp_received(bad_request, source)
                self.spawn(self.send_response(bad_request, source), "a 400 response")
            return
        if isinstance(message, Request):
            _stamp_received(message, source)
        elif not self._is_our_sent_by(message.top_via):
            logger.debug("dropping a response for sent-by %s", message.top_via.sent_by)
            return
        if self.handler is None:
            return
        try:
            self.handler(message, source)
        except Exception:
            logger.exception("SIP message handler failed on a message from %s", source)
