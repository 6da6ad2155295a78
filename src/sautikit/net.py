"""Outbound HTTP that cannot be pointed at the operator's own network (SPEC §8).

Apps choose the URLs Sautikit fetches — callbacks, event receivers, ``play`` audio — so
every such request goes through ``outbound_client``. Its connections are checked where they
are made: the host is resolved, every address must be public, and the socket connects to
the address that was checked, so a DNS answer that changes between check and connect
(rebinding) cannot slip through. Loopback, private, link-local, multicast and reserved
addresses are refused unless the operator allows them (``SAUTIKIT_ALLOW_PRIVATE_HTTP``,
meant for development and tests).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

import anyio
import httpcore
import httpx

__all__ = ["OutboundAddressRefused", "connect_outbound_tcp", "is_public_address", "outbound_client"]


class OutboundAddressRefused(httpx.ConnectError):
    """The URL's host resolves to an address apps may not reach."""


def is_public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, inner: httpcore.AsyncNetworkBackend) -> None:
        self._inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's signature
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        addresses = [str(info[4][0]) for info in infos]
        refused = [address for address in addresses if not is_public_address(address)]
        if refused or not addresses:
            raise OutboundAddressRefused(
                f"{host} resolves to {', '.join(refused) or 'nothing'}, which apps may not reach"
            )
        return await self._inner.connect_tcp(
            addresses[0], port, timeout, local_address, socket_options
        )

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        raise OutboundAddressRefused("unix sockets are not reachable from outbound HTTP")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _GuardedTransport(httpx.AsyncHTTPTransport):
    def __init__(self) -> None:
        super().__init__(trust_env=False)
        # httpx offers no public way to pass a network backend; the pool is rebuilt with
        # the same defaults and a guarded backend.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=_GuardedBackend(httpcore.AnyIOBackend()),
        )


def outbound_client(*, allow_private: bool, timeout: float = 10.0) -> httpx.AsyncClient:
    """An HTTP client for app-chosen URLs; redirects are not followed (each hop would need
    the same check, and callbacks have no business redirecting)."""
    transport = httpx.AsyncHTTPTransport(trust_env=False) if allow_private else _GuardedTransport()
    return httpx.AsyncClient(
        transport=transport, timeout=timeout, follow_redirects=False, trust_env=False
    )


async def connect_outbound_tcp(
    host: str,
    port: int,
    *,
    allow_private: bool,
    timeout: float,  # noqa: ASYNC109 - bounds the resolution and the connect together
) -> socket.socket:
    """A connected, non-blocking TCP socket to an app-chosen ``host``, for protocols other
    than HTTP (the ``stream`` verb's WebSocket). The same rule as :func:`outbound_client`:
    every address the host resolves to must be public unless ``allow_private``, and the
    socket connects to an address that was checked. Raises OutboundAddressRefused, or
    OSError / TimeoutError when the host cannot be reached."""
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(timeout):
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise OSError(f"cannot resolve {host}: {exc}") from exc
        addresses = [str(info[4][0]) for info in infos]
        refused = [address for address in addresses if not is_public_address(address)]
        if not allow_private and (refused or not addresses):
            raise OutboundAddressRefused(
                f"{host} resolves to {', '.join(refused) or 'nothing'}, which apps may not reach"
            )
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            await loop.sock_connect(sock, address)
        except BaseException:
            sock.close()
            raise
        return sock
