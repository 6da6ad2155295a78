"""Carrying work to the process that holds a call.

The API writes to the database and publishes a message; the call manager of the process
that holds the call (or, for a new outbound call, whichever process claims it first) acts
on it. Messages are published inside the API's transaction and delivered only once it
commits, so a rolled-back request never dials or hangs up anything.

* :class:`LocalBus`: one process (the embedded SQLite default): delivered in-process.
* :class:`PostgresBus`: several processes on one PostgreSQL: ``NOTIFY``/``LISTEN``, which
  PostgreSQL itself delivers at commit.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from sautikit.db.writer import on_commit

__all__ = ["CHANNEL", "CommandBus", "LocalBus", "PostgresBus", "open_bus"]

log = logging.getLogger(__name__)

CHANNEL = "sautikit_calls"

Handler = Callable[[dict[str, Any]], Awaitable[None]]


class CommandBus:
    """Publish messages for call managers; :meth:`subscribe` to receive them."""

    def __init__(self) -> None:
        self._handlers: list[Handler] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def subscribe(self, handler: Handler) -> None:
        self._handlers.append(handler)

    async def publish(self, session: AsyncSession, message: dict[str, Any]) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        """Begin receiving (a no-op for the local bus)."""

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _deliver(self, message: dict[str, Any]) -> None:
        for handler in self._handlers:
            task = asyncio.ensure_future(self._run(handler, message))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _run(handler: Handler, message: dict[str, Any]) -> None:
        try:
            await handler(message)
        except Exception:
            log.exception("handling %s failed", message.get("type"))


class LocalBus(CommandBus):
    async def publish(self, session: AsyncSession, message: dict[str, Any]) -> None:
        loop = asyncio.get_running_loop()

        def deliver() -> None:
            loop.call_soon_threadsafe(self._deliver, message)

        on_commit(session, deliver)


class PostgresBus(CommandBus):
    def __init__(self, dsn: str) -> None:
        super().__init__()
        self._dsn = dsn.replace("postgresql+asyncpg://", "postgresql://", 1)
        self._connection: asyncpg.Connection | None = None

    async def publish(self, session: AsyncSession, message: dict[str, Any]) -> None:
        await session.execute(select(func.pg_notify(CHANNEL, json.dumps(message))))

    async def start(self) -> None:
        self._connection = await asyncpg.connect(self._dsn)
        await self._connection.add_listener(CHANNEL, self._on_notify)

    def _on_notify(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            message = json.loads(payload)
        except ValueError:
            log.warning("ignoring a malformed call message")
            return
        self._deliver(message)

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
        await super().close()


def open_bus(database_url: str) -> CommandBus:
    if database_url.startswith("postgresql"):
        return PostgresBus(database_url)
    return LocalBus()
