"""Engine, sessions and the single writer for one database URL."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from sautikit.db import inline
from sautikit.db.writer import Job, WriterPool

__all__ = ["DEFAULT_POOL_OVERFLOW", "DEFAULT_POOL_SIZE", "Database"]

T = TypeVar("T")

log = logging.getLogger(__name__)

CHECKPOINT_EVERY_BATCHES = 200

DEFAULT_POOL_SIZE = 20
DEFAULT_POOL_OVERFLOW = 20
POOL_TIMEOUT_SECONDS = 30.0


class Database:
    """One database: a pool of readers and the process's single writer.

    * :meth:`sessions` — reads. On SQLite (WAL) readers never wait for the writer.
    * :meth:`write` / :meth:`write_later` — jobs for the single writer
      (:mod:`sautikit.db.writer`): serialised in this process, committed in groups.
    * :meth:`transaction` — a read-write block. On SQLite it runs on the single writer
      connection, in its turn; on PostgreSQL, whose row locks let writers run side by
      side, on a pooled connection, after the writes handed over before it are committed.

    ``pool_size``/``max_overflow`` size the pool (the operator's
    ``SAUTIKIT_DATABASE_POOL_SIZE``); ``writers`` is how many writers PostgreSQL gets
    (``SAUTIKIT_DATABASE_WRITERS``, :class:`~sautikit.db.writer.WriterPool`). SQLite gets
    WAL, a busy timeout for other processes (the CLI) and foreign keys, as PostgreSQL
    always has them.
    """

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = DEFAULT_POOL_SIZE,
        max_overflow: int = DEFAULT_POOL_OVERFLOW,
        writers: int = 1,
        **engine_options: Any,
    ) -> None:
        self.url = make_url(url)
        memory = self.is_sqlite and (not self.url.database or self.url.database == ":memory:")
        if self.is_sqlite and not memory and self.url.database:
            Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)
        if not memory and "poolclass" not in engine_options:
            engine_options.setdefault("pool_size", pool_size)
            engine_options.setdefault("max_overflow", max_overflow)
            engine_options.setdefault("pool_timeout", POOL_TIMEOUT_SECONDS)
        path = str(self.url.database)

        async def connect_in_place() -> Any:
            return await inline.connect(path)

        sqlite_file = self.is_sqlite and not memory
        if sqlite_file and "async_creator" not in engine_options:
            # sqlite3 called in place, not on aiosqlite's threads (db.inline says why).
            engine_options["async_creator"] = connect_in_place
        self.engine: AsyncEngine = create_async_engine(url, **engine_options)
        """The readers' engine (and migrations')."""
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        if sqlite_file:
            event.listen(self.engine.sync_engine, "connect", _sqlite_reader_connect)
            writer_options = {
                key: value
                for key, value in engine_options.items()
                if key not in ("pool_size", "max_overflow")
            }
            # Exactly one connection writes; it takes the file lock at BEGIN (IMMEDIATE),
            # so a write never fails half-way on a lock another process holds.
            self.writer_engine = create_async_engine(
                url, pool_size=1, max_overflow=0, **writer_options
            )
            event.listen(self.writer_engine.sync_engine, "connect", _sqlite_writer_connect)
            event.listen(self.writer_engine.sync_engine, "begin", _sqlite_begin_immediate)
        else:  # PostgreSQL's writer takes a pooled connection per batch
            self.writer_engine = self.engine
        self.writer = WriterPool(
            self.writer_engine,
            writers=1 if self.is_sqlite else writers,  # SQLite has one writing connection
            on_batch=self._after_batch if self.writer_engine is not self.engine else None,
        )
        self._checkpoint: asyncio.Task[None] | None = None
        self._batches_since_checkpoint = 0
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"

    async def write(self, job: Job[T], *, what: str = "write", key: str | None = None) -> T:
        """Run ``job`` on the writer; answers its result once committed. Jobs with the
        same ``key`` (a call's id) run in the order they were handed over."""
        return await self.writer.write(job, what=what, key=key)

    def write_later(
        self,
        job: Callable[[AsyncSession], Awaitable[Any]],
        *,
        what: str,
        key: str | None = None,
    ) -> None:
        """Hand ``job`` to the writer without waiting (failures are logged)."""
        self.writer.write_later(job, what=what, key=key)

    async def wait_written(self) -> None:
        """Wait until every write handed over so far is committed."""
        await self.writer.wait_written()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on error.

        It sees every write handed over before it began.
        """
        if self.is_sqlite:
            async with self.writer.transaction() as session:
                yield session
            return
        await self.writer.wait_written()
        async with self.sessions() as session, session.begin():
            yield session

    def _after_batch(self) -> None:
        """Every so many commits, checkpoint the WAL on a thread: no connection does it on
        commit (its fsync would hold the event loop)."""
        self._batches_since_checkpoint += 1
        if self._batches_since_checkpoint < CHECKPOINT_EVERY_BATCHES:
            return
        if self._checkpoint is None or self._checkpoint.done():
            self._batches_since_checkpoint = 0
            self._checkpoint = asyncio.get_running_loop().create_task(self._run_checkpoint())

    async def _run_checkpoint(self, mode: str = "PASSIVE") -> None:
        try:
            await asyncio.to_thread(inline.checkpoint, str(self.url.database), mode)
        except Exception as failed:  # the next one will try again
            log.warning("WAL checkpoint failed: %s", failed)

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def close(self) -> None:
        try:
            await asyncio.shield(self.writer.close())
            if self._checkpoint is not None:
                await self._checkpoint
            if self.writer_engine is not self.engine:
                await self._run_checkpoint("TRUNCATE")
        finally:
            if self.writer_engine is not self.engine:
                await self.writer_engine.dispose()
            await self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_reader_connect(dbapi_connection: Any, _record: Any) -> None:
    # Readers run on the event loop: never checkpoint, and wait only a moment in the rare
    # case WAL mode makes a reader wait at all.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=1000")
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


def _sqlite_writer_connect(dbapi_connection: Any, record: Any) -> None:
    _sqlite_pragmas(dbapi_connection, record)
    cursor = dbapi_connection.cursor()
    # On the event loop nothing may wait: no busy wait (the writer retries BEGIN with an
    # await between tries) and no checkpoint (a reader's thread runs it).
    cursor.execute("PRAGMA busy_timeout=0")
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()
    # The driver's own transaction handling would BEGIN late and break SAVEPOINTs;
    # SQLAlchemy's documented recipe hands BEGIN to the "begin" event instead.
    dbapi_connection.isolation_level = None


def _sqlite_begin_immediate(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")
