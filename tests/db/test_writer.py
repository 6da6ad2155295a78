"""The single writer: many concurrent writes, none lost, none refused, each in its own
savepoint; readers never wait for it. On SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from sautikit.db import Database, WriterClosed, on_commit, upgrade_database
from sautikit.db.models import Workspace
from sautikit.ids import new_id


async def _count(database: Database, name: str | None = None) -> int:
    query = select(func.count()).select_from(Workspace)
    if name is not None:
        query = query.where(Workspace.name == name)
    async with database.sessions() as session:
        return int(await session.scalar(query) or 0)


def _add(name: str) -> Callable[[AsyncSession], Awaitable[str]]:
    async def job(session: AsyncSession) -> str:
        workspace = Workspace(id=new_id(), name=name)
        session.add(workspace)
        await session.flush()
        return workspace.id

    return job


async def _counter(database: Database) -> str:
    async def job(session: AsyncSession) -> str:
        workspace = Workspace(id=new_id(), name="counter", max_concurrent_calls=0)
        session.add(workspace)
        await session.flush()
        return workspace.id

    return await database.write(job)


async def test_concurrent_read_modify_writes_lose_nothing(database: Database) -> None:
    """A burst of writers updating one row (as call setups update one wallet): every
    increment lands, and none fails with a lock error or a pool timeout."""
    counter = await _counter(database)

    async def increment(session: AsyncSession) -> int:
        workspace = await session.get(Workspace, counter)
        assert workspace is not None
        workspace.max_concurrent_calls += 1
        return workspace.max_concurrent_calls

    async def block_increment() -> None:
        async with database.transaction() as session:
            workspace = await session.get(Workspace, counter, with_for_update=True)
            assert workspace is not None
            workspace.max_concurrent_calls += 1

    seen = await asyncio.gather(
        *(database.write(increment) for _ in range(150)),
        *(block_increment() for _ in range(50)),
    )
    assert sorted(value for value in seen if value is not None) == sorted(
        set(value for value in seen if value is not None)
    )
    async with database.sessions() as session:
        workspace = await session.get(Workspace, counter)
    assert workspace is not None and workspace.max_concurrent_calls == 200
    # Writes that arrived together were committed together.
    assert database.writer.batches < database.writer.writes


async def test_a_failing_write_rolls_back_alone(database: Database) -> None:
    async def fails(session: AsyncSession) -> None:
        session.add(Workspace(id=new_id(), name="doomed"))
        await session.flush()
        raise LookupError("the job changed its mind")

    outcomes = await asyncio.gather(
        database.write(_add("kept")),
        database.write(fails),
        database.write(_add("kept")),
        return_exceptions=True,
    )
    assert isinstance(outcomes[1], LookupError)
    assert isinstance(outcomes[0], str) and isinstance(outcomes[2], str)
    assert await _count(database, "kept") == 2
    assert await _count(database, "doomed") == 0


async def test_a_block_that_raises_keeps_nothing_and_the_others_commit(database: Database) -> None:
    async def raising_block() -> None:
        async with database.transaction() as session:
            session.add(Workspace(id=new_id(), name="doomed"))
            await session.flush()
            raise KeyError("no")

    outcomes = await asyncio.gather(
        raising_block(), database.write(_add("kept")), return_exceptions=True
    )
    assert isinstance(outcomes[0], KeyError)
    assert await _count(database, "doomed") == 0
    assert await _count(database, "kept") == 1


async def test_a_later_write_sees_an_earlier_fire_and_forget_one(database: Database) -> None:
    database.write_later(_add("early"), what="test")
    async with database.transaction() as session:
        seen = await session.scalar(
            select(func.count()).select_from(Workspace).where(Workspace.name == "early")
        )
    assert seen == 1


async def test_a_failing_fire_and_forget_write_is_logged_not_raised(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    async def fails(session: AsyncSession) -> None:
        raise RuntimeError("lost heartbeat")

    database.write_later(fails, what="heartbeat")
    database.write_later(_add("after"), what="test")
    await database.wait_written()
    assert "heartbeat" in caplog.text
    assert await _count(database, "after") == 1


async def test_a_nested_block_is_a_savepoint_of_the_outer(database: Database) -> None:
    async with database.transaction() as outer:
        outer.add(Workspace(id=new_id(), name="outer"))
        await outer.flush()
        with pytest.raises(ValueError):
            async with database.transaction() as inner:
                inner.add(Workspace(id=new_id(), name="inner"))
                await inner.flush()
                raise ValueError("roll the inner back")
        async with database.transaction() as inner:
            inner.add(Workspace(id=new_id(), name="inner-kept"))
    assert await _count(database, "outer") == 1
    assert await _count(database, "inner") == 0
    assert await _count(database, "inner-kept") == 1


async def test_readers_do_not_wait_for_a_block_holding_the_writer(database: Database) -> None:
    await database.write(_add("visible"))
    async with database.transaction() as session:
        session.add(Workspace(id=new_id(), name="uncommitted"))
        await session.flush()
        # A reader on another connection answers at once with the committed state.
        assert await asyncio.wait_for(_count(database, "visible"), 30) == 1
        assert await _count(database, "uncommitted") == 0
    assert await _count(database, "uncommitted") == 1


async def test_on_commit_runs_after_the_commit_and_never_after_a_rollback(
    database: Database,
) -> None:
    fired: list[str] = []

    async def commits(session: AsyncSession) -> None:
        session.add(Workspace(id=new_id(), name="x"))
        on_commit(session, lambda: fired.append("committed"))

    async def rolls_back(session: AsyncSession) -> None:
        on_commit(session, lambda: fired.append("rolled back"))
        raise ValueError

    await database.write(commits)
    with pytest.raises(ValueError):
        await database.write(rolls_back)
    async with database.transaction() as session:
        on_commit(session, lambda: fired.append("block"))
    assert fired == ["committed", "block"]


async def test_close_commits_what_was_handed_over(database: Database) -> None:
    for _ in range(20):
        database.write_later(_add("last words"), what="test")
    await database.writer.close()
    with pytest.raises(WriterClosed):
        database.write_later(_add("too late"), what="test")
    assert await _count(database, "last words") == 20


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Path:
    return tmp_path / "writer.db"


async def test_a_write_waits_for_another_process_without_holding_the_loop(
    sqlite_file: Path,
) -> None:
    """SQLite: while another process (the CLI, say) holds the write lock, the writer
    waits for it with the event loop free, then writes; nothing says "locked"."""
    database = Database(f"sqlite+aiosqlite:///{sqlite_file}")
    try:
        await upgrade_database(database)
        other = sqlite3.connect(sqlite_file, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticking = asyncio.create_task(ticker())
        writing = asyncio.create_task(database.write(_add("patient")))
        await asyncio.sleep(0.3)
        assert not writing.done()  # still waiting for the lock…
        ticks_while_waiting = ticks
        other.execute("COMMIT")
        other.close()
        assert isinstance(await writing, str)
        ticking.cancel()
        assert ticks_while_waiting > 0  # …and the loop ran meanwhile
        assert await _count(database, "patient") == 1
    finally:
        await database.close()
    # Closing checkpoints the log into the database file.
    wal = sqlite_file.with_name(sqlite_file.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0
