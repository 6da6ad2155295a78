"""RTP/RTCP port allocation for media sessions.

Each call leg needs an even UDP port for RTP and the next odd port for RTCP (RFC 3550
§11). :class:`RtpPortAllocator` hands out such pairs from a configured range, binding both
sockets itself: a pair is only handed out once the operating system has confirmed that both
ports are free, so ports held by other programs are skipped, and the caller receives the
bound, non-blocking sockets (ready for ``loop.create_datagram_endpoint(sock=...)``) with no
window in which another program could take them.

The allocator rotates through the range rather than reusing the lowest free pair, so a
late packet from a finished call does not land in the next call that gets its port.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass, field

__all__ = ["PortsExhausted", "RtpPortAllocator", "RtpPortPair"]

# Errors that mean "this port is taken (or forbidden)": try the next pair.
_PORT_UNAVAILABLE = frozenset({errno.EADDRINUSE, errno.EACCES})


class PortsExhausted(Exception):
    """No free RTP/RTCP port pair is left in the allocator's range."""


@dataclass(eq=False)
class RtpPortPair:
    """An even RTP port and the RTCP port after it, both bound on ``host``."""

    host: str
    rtp_port: int
    rtp_socket: socket.socket = field(repr=False)
    rtcp_socket: socket.socket = field(repr=False)

    @property
    def rtcp_port(self) -> int:
        return self.rtp_port + 1

    def close(self) -> None:
        """Close both sockets (harmless if a transport already closed them)."""
        self.rtp_socket.close()
        self.rtcp_socket.close()


class RtpPortAllocator:
    """Hands out RTP/RTCP port pairs from ``range_start``..``range_end`` (inclusive)."""

    def __init__(self, range_start: int = 20000, range_end: int = 29999) -> None:
        first = range_start + (range_start & 1)  # RTP ports are even
        if not 0 < range_start <= range_end <= 65535 or first + 1 > range_end:
            raise ValueError(
                f"port range {range_start}-{range_end} holds no even/odd RTP/RTCP pair"
            )
        self.range_start = range_start
        self.range_end = range_end
        self._rtp_ports = range(first, range_end, 2)
        self._next_index = 0
        self._in_use: dict[int, RtpPortPair] = {}

    @property
    def capacity(self) -> int:
        """Pairs in the range."""
        return len(self._rtp_ports)

    @property
    def in_use(self) -> int:
        """Pairs handed out and not yet released."""
        return len(self._in_use)

    def allocate(self, host: str) -> RtpPortPair:
        """Bind the next free pair on ``host``; raises PortsExhausted when none is free.

        ``host`` is an IPv4 or IPv6 address literal (never a name: no DNS lookup may block
        the event loop). Other socket errors, such as an address this machine does not
        have, are raised as OSError.
        """
        family = socket.getaddrinfo(
            host, None, type=socket.SOCK_DGRAM, flags=socket.AI_NUMERICHOST
        )[0][0]
        count = len(self._rtp_ports)
        for step in range(count):
            index = (self._next_index + step) % count
            port = self._rtp_ports[index]
            if port in self._in_use:
                continue
            pair = self._bind_pair(family, host, port)
            if pair is not None:
                self._next_index = (index + 1) % count
                self._in_use[port] = pair
                return pair
        raise PortsExhausted(
            f"no free RTP port pair in {self.range_start}-{self.range_end} on {host} "
            f"({len(self._in_use)} of {count} held by Sautikit)"
        )

    def release(self, pair: RtpPortPair) -> None:
        """Close the pair's sockets and return its ports to the pool; twice is harmless."""
        pair.close()
        if self._in_use.get(pair.rtp_port) is pair:
            del self._in_use[pair.rtp_port]

    def close(self) -> None:
        """Release every pair still handed out (at shutdown)."""
        for pair in list(self._in_use.values()):
            self.release(pair)

    @staticmethod
    def _bind_pair(family: int, host: str, port: int) -> RtpPortPair | None:
        sockets: list[socket.socket] = []
        try:
            for candidate in (port, port + 1):
                sock = socket.socket(family, socket.SOCK_DGRAM)
                sockets.append(sock)
                sock.setblocking(False)
                sock.bind((host, candidate))
        except OSError as exc:
            for sock in sockets:
                sock.close()
            if exc.errno in _PORT_UNAVAILABLE:
                return None
            raise
        return RtpPortPair(host, port, sockets[0], sockets[1])
