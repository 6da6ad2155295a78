"""The database writer of a process: one queue, one connection, group commit.

(On PostgreSQL an operator may run several, :class:`WriterPool`: see its notes.)

Every write of the process is a *job* (an ``async`` function of a session) or a
:meth:`Writer.transaction` block. One worker task takes them in the order they arrived and
runs as many as are waiting (up to ``max_batch``) inside **one** database transaction,
each inside its own SAVEPOINT, then commits once. So:

* On SQLite exactly one connection of the process ever writes: writes queue on an
  in-process queue instead of on SQLite's file lock, and nothing in this process can see
  ``database is locked`` (another process still waits on ``busy_timeout``).
* Under load a burst of writes costs one commit (one fsync) instead of one each — group
  commit, as databases do for their own log. When the queue is idle a job is committed at
  once: batching adds no wait.
* A job that raises rolls back only its own work; the error reaches its caller and the
  rest of the batch commits. A batch of jobs first runs *without* savepoints (two
  statements a job fewer, most of a small job's cost): should one raise, the batch is
  rolled back and run again with a savepoint for each job, so only the failed one is
  lost. A job may therefore run twice (as it already may after a deadlock): it must
  not act outside its session before it returns.

A caller that needs the result awaits :meth:`Writer.write` (it returns after COMMIT).
A write that can wait — a ringing mark, a heartbeat, an event — is handed over with
:meth:`Writer.write_later` and never delays the caller; its failure is logged. Jobs run in
the order they were handed over, so a later job sees an earlier one's rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
import zlib
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.orm import Session

__all__ = ["Job", "Writer", "WriterClosed", "WriterPool", "on_commit"]

log = logging.getLogger(__name__)

T = TypeVar("T")

Job = Callable[[AsyncSession], Awaitable[T]]
"""A unit of writing: gets a session inside its own savepoint; what it returns (or
raises) is the caller's answer. It must not commit or wait on anything slow."""

MAX_BATCH = 128
"""Jobs committed together at most: bounds how long the first of a batch waits."""

MAX_BATCH_SECONDS = 0.02
"""A batch commits once its jobs have worked this long, however many wait behind."""

YIELD_AFTER_SECONDS = 0.002
"""Jobs on SQLite's in-place driver never suspend: the writer lets the event loop run
between them after this much work, so a long batch cannot hold the loop (measured: a
batch of 128 call writes held it ~300 ms)."""


RETRIES = 3
"""How often a job the database chose as a deadlock's or serialisation conflict's victim
is run again (in a fresh savepoint) before its caller gets the error."""

_RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})  # deadlock_detected, serialization_failure

BUSY_TIMEOUT_SECONDS = 10.0
"""How long a write waits for another process (the CLI, say) to release SQLite's lock."""


class WriterClosed(RuntimeError):
    """The database is closing: no new writes are taken."""


@dataclass(eq=False)
class _Entry:
    """One place in the queue: a job, or a turn for a ``transaction()`` block."""

    seq: int
    what: str
    queued_at: float = field(default_factory=time.monotonic)
    job: Job[Any] | None = None
    # A job's answer (None for fire-and-forget), or the block's "committed" signal.
    result: asyncio.Future[Any] | None = None
    # A block's turn: the worker puts the connection here, the block answers on `finished`.
    turn: asyncio.Future[AsyncConnection] | None = None
    finished: asyncio.Future[bool] | None = None
    outcome: list[Any] = field(default_factory=list)
    on_commit: list[Callable[[], None]] = field(default_factory=list)


@dataclass(frozen=True)
class _Holding:
    task: asyncio.Task[Any] | None
    connection: AsyncConnection
    on_commit: list[Callable[[], None]]


_holding: ContextVar[_Holding | None] = ContextVar("sautikit_writer_holding", default=None)


_ON_COMMIT = "sautikit_on_commit"


def _savepoint_session(
    connection: AsyncConnection, callbacks: list[Callable[[], None]], *, savepoint: bool = True
) -> AsyncSession:
    # Each job gets its own session (its own identity map) on the shared connection: its
    # begin() is a SAVEPOINT inside the batch's transaction, its commit a RELEASE. Without
    # a savepoint the session only joins the batch's transaction: its commit is a flush,
    # and a failure must roll back the whole batch (see Writer._run_batch).
    session = AsyncSession(
        bind=connection,
        join_transaction_mode="create_savepoint" if savepoint else "rollback_only",
        expire_on_commit=False,
    )
    session.info[_ON_COMMIT] = callbacks
    return session


def on_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Call ``callback`` once the work of ``session`` is really committed (not when a
    writer's savepoint is released); dropped if it rolls back."""
    callbacks = session.info.get(_ON_COMMIT)
    if isinstance(callbacks, list):
        callbacks.append(callback)
        return

    def committed(_session: Session) -> None:
        callback()

    event.listen(session.sync_session, "after_commit", committed, once=True)


class Writer:
    """The one writer of ``engine`` in this process (see the module's doc)."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        max_batch: int = MAX_BATCH,
        on_batch: Callable[[], None] | None = None,
    ) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self.on_batch = on_batch
        self._queue: deque[_Entry] = deque()
        self._wake = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._sequence = itertools.count(1)
        self._submitted = 0
        self._committed = 0
        self._drained: asyncio.Condition | None = None
        self._closed = False
        self.batches = 0
        """Transactions committed so far (a batch of one or more writes each)."""
        self.writes = 0
        """Writes committed so far."""

    # --- the caller's side ----------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Writes handed over and not yet committed (queued or in the running batch)."""
        return self._submitted - self._committed

    @property
    def oldest_wait(self) -> float:
        """Seconds the longest-waiting queued write has waited (0 with none queued)."""
        return time.monotonic() - self._queue[0].queued_at if self._queue else 0.0

    async def write(self, job: Job[T], *, what: str = "write") -> T:
        """Run ``job`` in the next batch and answer what it returned, once committed."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._put(_Entry(self._next(), what, job=job, result=future))
        return await future

    def write_later(self, job: Job[Any], *, what: str = "write") -> None:
        """Hand ``job`` over and return at once; a failure is logged, not raised."""
        self._put(_Entry(self._next(), what, job=job))

    async def wait_written(self) -> None:
        """Wait until everything handed over before this call is committed (or failed)."""
        target = self._submitted
        if self._committed >= target:
            return
        condition = self._condition()
        async with condition:
            await condition.wait_for(lambda: self._committed >= target)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A block that writes in its turn, inside the batch, and exits once committed.

        The block holds the writer while it runs: keep it short and never wait inside it
        for another task's write. A block nested in one the task already holds becomes a
        savepoint of it.
        """
        task = asyncio.current_task()
        holding = _holding.get()
        if holding is not None and holding.task is task:
            callbacks: list[Callable[[], None]] = []
            nested = _savepoint_session(holding.connection, callbacks)
            try:
                async with nested.begin():
                    yield nested
            finally:
                await nested.close()
            holding.on_commit.extend(callbacks)  # only once the block succeeded
            return
        loop = asyncio.get_running_loop()
        entry = _Entry(
            self._next(),
            "transaction",
            result=loop.create_future(),
            turn=loop.create_future(),
            finished=loop.create_future(),
        )
        self._put(entry)
        assert entry.turn is not None and entry.finished is not None and entry.result is not None
        try:
            connection = await entry.turn
        except BaseException:
            entry.turn.cancel()  # the worker skips a turn nobody waits for
            raise
        token = _holding.set(_Holding(task, connection, entry.on_commit))
        session = _savepoint_session(connection, entry.on_commit)
        ok = False
        try:
            async with session.begin():
                yield session
            ok = True
        finally:
            _holding.reset(token)
            with contextlib.suppress(Exception):
                await session.close()
            entry.finished.set_result(ok)
        await entry.result  # the batch's COMMIT (raises if it failed)

    # --- life -----------------------------------------------------------------------------

    async def close(self) -> None:
        """Commit what was handed over, then stop; later writes raise WriterClosed."""
        self._closed = True
        if self._worker is None:
            return
        await self.wait_written()
        self._worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._worker
        self._worker = None

    # --- the worker -----------------------------------------------------------------------

    def _next(self) -> int:
        if self._closed:
            raise WriterClosed("the database is closing")
        return next(self._sequence)

    def _put(self, entry: _Entry) -> None:
        self._submitted = entry.seq
        self._queue.append(entry)
        self._wake.set()
        loop = asyncio.get_running_loop()
        if self._worker is None or self._worker.done() or self._worker.get_loop() is not loop:
            self._wake = asyncio.Event()
            self._drained = None
            self._worker = loop.create_task(self._run(), name="sautikit database writer")
            self._wake.set()

    def _condition(self) -> asyncio.Condition:
        if self._drained is None:
            self._drained = asyncio.Condition()
        return self._drained

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch = await self._run_batch()
                self._committed = batch[-1].seq if batch else self._committed
                if self._drained is not None:
                    async with self._drained:
                        self._drained.notify_all()

    async def _run_batch(self) -> list[_Entry]:
        """Run what is queued (up to ``max_batch``) in one transaction; answers the entries
        taken, each with its outcome already delivered.

        A batch of jobs runs without savepoints; when one of them fails the transaction is
        rolled back and the same jobs run again, each in its own savepoint. A batch that
        starts with a ``transaction()`` block (which cannot run twice) uses savepoints
        from the start; a block behind jobs waits for the next batch.
        """
        taken: list[_Entry] = []
        done: list[_Entry] = []  # ran without error: answered after the commit
        optimistic = self._queue[0].turn is None
        try:
            async with self.engine.connect() as connection:
                await self._begin(connection)
                started = paused = time.perf_counter()
                while self._queue and len(taken) < self.max_batch:
                    if optimistic and self._queue[0].turn is not None:
                        break  # a block runs in a batch with savepoints: the next one
                    entry = self._queue.popleft()
                    taken.append(entry)
                    if optimistic:
                        if not await self._run_optimistic(connection, entry):
                            # Roll back everything and run the jobs taken with savepoints.
                            await connection.rollback()
                            optimistic = False
                            done = []
                            await self._begin(connection)
                            for again in taken:
                                if await self._run_entry(connection, again):
                                    done.append(again)
                        else:
                            done.append(entry)
                    elif await self._run_entry(connection, entry):
                        done.append(entry)
                    now = time.perf_counter()
                    if now - started >= MAX_BATCH_SECONDS:
                        break
                    if now - paused >= YIELD_AFTER_SECONDS:
                        # On SQLite the jobs never suspend: let calls, media and SIP run.
                        await asyncio.sleep(0)
                        paused = time.perf_counter()
                await connection.commit()
        except Exception as failed:
            log.error("a database write batch failed to commit: %s", failed)
            for entry in done:
                self._fail(entry, failed)
            return taken
        self.batches += 1
        self.writes += len(done)
        if self.on_batch is not None:
            self.on_batch()
        for entry in done:
            if entry.result is not None and not entry.result.done():
                entry.result.set_result(entry.outcome[-1] if entry.outcome else None)
            for callback in entry.on_commit:
                try:
                    callback()
                except Exception:
                    log.exception("a callback after the commit of %r failed", entry.what)
        return taken

    async def _run_optimistic(self, connection: AsyncConnection, entry: _Entry) -> bool:
        """Run one job in the batch's transaction itself; False if it raised (the batch
        must then be rolled back and run with savepoints, which answers the job)."""
        assert entry.job is not None
        if entry.result is not None and entry.result.done():  # the caller went away
            return True  # nothing ran: nothing to answer
        session = _savepoint_session(connection, entry.on_commit, savepoint=False)
        try:
            async with session.begin():
                entry.outcome.append(await entry.job(session))
            return True
        except Exception:
            return False
        finally:
            await session.close()

    @staticmethod
    async def _begin(connection: AsyncConnection) -> None:
        """BEGIN, waiting (without holding the loop) while another process writes."""
        pause = 0.002
        deadline = asyncio.get_running_loop().time() + BUSY_TIMEOUT_SECONDS
        while True:
            try:
                await connection.begin()
                return
            except OperationalError as busy:
                if "locked" not in str(busy) and "busy" not in str(busy):
                    raise
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await connection.rollback()
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.1)

    async def _run_entry(self, connection: AsyncConnection, entry: _Entry) -> bool:
        """Run one job or block in its savepoint; False if it failed (and was answered)."""
        if entry.turn is not None:
            assert entry.finished is not None
            if entry.turn.done():  # the block's task gave up waiting
                return False
            entry.turn.set_result(connection)
            if not await entry.finished:
                entry.on_commit.clear()
                self._fail(entry, None)
                return False
            return True
        assert entry.job is not None
        if entry.result is not None and entry.result.done():  # the caller went away
            return False
        entry.outcome.clear()  # a run without savepoint may have been rolled back
        entry.on_commit.clear()
        for attempt in range(RETRIES + 1):
            session = _savepoint_session(connection, entry.on_commit)
            try:
                async with session.begin():
                    entry.outcome.append(await entry.job(session))
                return True
            except Exception as error:
                entry.on_commit.clear()
                if attempt < RETRIES and _retryable(error):
                    # Rolled back to its savepoint, which let go of its locks: run it again.
                    log.info("database write %r met a lock conflict; again", entry.what)
                    continue
                if entry.result is None:
                    log.error("database write %r failed", entry.what, exc_info=error)
                self._fail(entry, error)
                return False
            finally:
                await session.close()
        return False

    @staticmethod
    def _fail(entry: _Entry, error: BaseException | None) -> None:
        if entry.result is None or entry.result.done():
            return
        if error is None:  # a block that raised: its own task has the error already
            entry.result.cancel()
        else:
            entry.result.set_exception(error)


def _retryable(error: BaseException) -> bool:
    """A PostgreSQL deadlock or serialisation failure: the transaction (here, the job's
    savepoint) was chosen as the victim and may simply be run again."""
    original = getattr(error, "orig", None)
    code = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
    return code in _RETRYABLE_SQLSTATES


class WriterPool:
    """The writers of a process: one, or on PostgreSQL several (``writers``), each with
    its own connection per transaction, so writes of different calls commit side by side.

    One writer (SQLite always; PostgreSQL by default) is the :class:`Writer` above, with
    its group commit. Several writers each run **one job per transaction**: a batch holds
    the row locks of all its jobs until it commits, so two batches on two connections —
    one holding workspace A's wallet and waiting for B's, the other the reverse — wait for
    each other for ever (the deadlock an earlier try of a pool met). One job per
    transaction keeps each transaction to the fixed lock order (the wallet first, see
    ``calls.admission``), under which writers only queue; PostgreSQL commits concurrent
    transactions in groups itself. A job picks its writer by ``key`` (a call's id), so
    one call's writes still run in the order they were handed over; writes without a key
    take turns among the writers. ``transaction()`` blocks (SQLite only) use the first.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        writers: int = 1,
        on_batch: Callable[[], None] | None = None,
    ) -> None:
        if writers < 1:
            raise ValueError("a process needs at least one writer")
        batch = MAX_BATCH if writers == 1 else 1
        self.lanes = [Writer(engine, max_batch=batch, on_batch=on_batch) for _ in range(writers)]
        self._turns = itertools.cycle(self.lanes)

    def _lane(self, key: str | None) -> Writer:
        if len(self.lanes) == 1:
            return self.lanes[0]
        if key is None:
            return next(self._turns)
        return self.lanes[zlib.crc32(key.encode()) % len(self.lanes)]

    @property
    def pending(self) -> int:
        return sum(lane.pending for lane in self.lanes)

    @property
    def oldest_wait(self) -> float:
        return max(lane.oldest_wait for lane in self.lanes)

    @property
    def batches(self) -> int:
        return sum(lane.batches for lane in self.lanes)

    @property
    def writes(self) -> int:
        return sum(lane.writes for lane in self.lanes)

    async def write(self, job: Job[T], *, what: str = "write", key: str | None = None) -> T:
        return await self._lane(key).write(job, what=what)

    def write_later(self, job: Job[Any], *, what: str = "write", key: str | None = None) -> None:
        self._lane(key).write_later(job, what=what)

    async def wait_written(self) -> None:
        await asyncio.gather(*(lane.wait_written() for lane in self.lanes))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        async with self.lanes[0].transaction() as session:
            yield session

    async def close(self) -> None:
        await asyncio.gather(*(lane.close() for lane in self.lanes))
