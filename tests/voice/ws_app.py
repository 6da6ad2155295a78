"""A real WebSocket server (the ``websockets`` package) standing in for an app's stream
endpoint: it keeps every message with the time it arrived, and runs a per-test handler
that may answer (echo audio, play speech, send marks and clears)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from websockets.asyncio.server import Server, ServerConnection, serve


@dataclass
class Received:
    at: float
    data: str | bytes


@dataclass
class StreamApp:
    """What the server saw: each connection's messages, in order, with arrival times."""

    port: int = 0
    connections: list[list[Received]] = field(default_factory=list)
    subprotocols: list[str | None] = field(default_factory=list)
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str = "/stream") -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    @property
    def messages(self) -> list[Received]:
        return self.connections[-1] if self.connections else []


Handler = Callable[[ServerConnection, list[Received]], Awaitable[None]]


async def _record_only(connection: ServerConnection, messages: list[Received]) -> None:
    async for data in connection:
        messages.append(Received(time.monotonic(), data))


@asynccontextmanager
async def stream_app(
    handler: Handler = _record_only, subprotocols: Sequence[str] | None = None
) -> AsyncIterator[StreamApp]:
    app = StreamApp()

    async def serve_one(connection: ServerConnection) -> None:
        messages: list[Received] = []
        app.connections.append(messages)
        app.subprotocols.append(connection.subprotocol)
        try:
            await handler(connection, messages)
        finally:
            app.closed.set()

    server: Server
    async with serve(
        serve_one, "127.0.0.1", 0, subprotocols=list(subprotocols) if subprotocols else None
    ) as server:
        app.port = next(iter(server.sockets)).getsockname()[1]
        yield app
