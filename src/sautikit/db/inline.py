"""Sautikit's SQLite driver: the ``sqlite3`` module called in place, with aiosqlite's face.

aiosqlite runs every call on a thread of its own and hands the answer back through the
event loop: four thread hand-offs per statement (cursor, execute, fetch, close). Under
load those hand-offs, not SQLite, were most of the time a call's setup waited on the
database. SQLite answers an indexed statement in microseconds, and in WAL mode with
``synchronous=NORMAL`` a commit writes to the log without an fsync, so Sautikit's
connections call ``sqlite3`` directly on the event loop: the coroutines below never
suspend (the ORM's own Python work was on the loop already). What could hold the loop
is kept off it:

* the WAL checkpoint (which does fsync): no connection checkpoints on commit
  (``wal_autocheckpoint=0``); :class:`~sautikit.db.engine.Database` runs
  :func:`checkpoint` on a thread now and then;
* waiting for another process's write lock: the writer's ``busy_timeout`` is 0 and it
  retries ``BEGIN IMMEDIATE`` with an ``await`` between tries; readers never wait in WAL
  mode but for rare moments (a short ``busy_timeout`` covers those).

SQLAlchemy's aiosqlite dialect drives this through ``create_async_engine(async_creator=)``
unchanged; only the methods it calls are implemented.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import Any

__all__ = ["InlineConnection", "connect"]


class InlineCursor:
    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    async def execute(self, operation: str, parameters: Any = None) -> InlineCursor:
        if parameters is None:
            self._cursor.execute(operation)
        else:
            self._cursor.execute(operation, parameters)
        return self

    async def executemany(self, operation: str, parameters: Iterable[Any]) -> InlineCursor:
        self._cursor.executemany(operation, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()


class _RunAtOnce:
    """Stands in for aiosqlite's request queue, which SQLAlchemy uses to set
    ``isolation_level``: the request is carried out as it is put."""

    def put_nowait(self, item: tuple[asyncio.Future[Any], Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as error:
            future.set_exception(error)


class InlineConnection:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._conn = connection
        self._tx = _RunAtOnce()

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    async def cursor(self) -> InlineCursor:
        return InlineCursor(self._conn.cursor())

    async def execute(self, operation: str, parameters: Sequence[Any] = ()) -> InlineCursor:
        return InlineCursor(self._conn.execute(operation, parameters))

    async def commit(self) -> None:
        self._conn.commit()

    async def rollback(self) -> None:
        self._conn.rollback()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    async def close(self) -> None:
        self._conn.close()

    def stop(self) -> None:
        self._conn.close()


async def connect(path: str) -> InlineConnection:
    """Open ``path`` as the driver would (its own implicit transactions; the engine's
    events set the pragmas and, for the writer, explicit BEGIN)."""
    return InlineConnection(sqlite3.connect(path, check_same_thread=False))


def checkpoint(path: str, mode: str = "PASSIVE") -> None:
    """Checkpoint the WAL of ``path`` on a connection of its own: run it on a thread."""
    connection = sqlite3.connect(path, timeout=5)
    try:
        connection.execute(f"PRAGMA wal_checkpoint({mode})")
    finally:
        connection.close()
