"""Helpers for the delivery tests: a real HTTP receiver on loopback that records what it is
sent and answers as scripted, and a clock the tests move instead of sleeping."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sautikit.webhooks import callback_fields

__all__ = ["HANG", "FakeClock", "Received", "Receiver", "StartReceiver"]

# A scripted answer: never respond, as a receiver that has stopped answering.
HANG = 0


class FakeClock:
    """Time for the worker's schedule; tests move it instead of sleeping."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def advance_to(self, moment: datetime) -> None:
        self.now = max(self.now, moment)


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes

    @property
    def fields(self) -> dict[str, str]:
        """A voice callback's fields as an app reads them (a form, or JSON if chosen)."""
        query = self.path.partition("?")[2]
        return callback_fields(self.body, self.headers.get("content-type"), query)


class Receiver:
    """``answers`` are HTTP statuses (or ``HANG``) for the first requests, in order; every
    later request gets ``then``, each after ``delay`` seconds."""

    def __init__(self, answers: Iterable[int] = (), *, then: int = 200, delay: float = 0) -> None:
        self.answers = list(answers)
        self.then = then
        self.delay = delay
        self.received: list[Received] = []
        self.arrived = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._closing = asyncio.Event()

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/hook"

    async def start(self) -> Receiver:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def close(self) -> None:
        self._closing.set()
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:  # keep-alive: one request after another on the connection
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
                request_line, *lines = head.split("\r\n")
                method, path, _ = request_line.split(" ", 2)
                headers = {}
                for line in filter(None, lines):
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.received.append(Received(method, path, headers, body))
                self.arrived.set()
                status = self.answers.pop(0) if self.answers else self.then
                if status == HANG:
                    await self._closing.wait()
                    return
                await asyncio.sleep(self.delay)
                writer.write(f"HTTP/1.1 {status} Scripted\r\nContent-Length: 2\r\n\r\nok".encode())
                await writer.drain()
        writer.close()


# The ``receivers`` fixture: start(answers=(), then=200, delay=0) -> a started Receiver.
StartReceiver = Callable[..., Awaitable[Receiver]]
