"""Several writers on PostgreSQL (``SAUTIKIT_DATABASE_WRITERS``): writes of different
calls commit side by side, one call's writes keep their order, and writes racing for one
wallet only queue — none fails on a deadlock (db/writer.py, WriterPool)."""

from __future__ import annotations

import asyncio
import secrets
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from tests.conftest import POSTGRES_URL, _asyncpg_connect

from sautikit import accounts
from sautikit.billing.ledger import post_entry, top_up
from sautikit.db import Database, upgrade_database
from sautikit.db.models import WalletEntry, Workspace
from sautikit.ids import new_id

WRITERS = 4


@pytest.fixture
async def pooled() -> AsyncIterator[Database]:
    schema = f"t_{secrets.token_hex(6)}"
    admin = await _asyncpg_connect()
    await admin.execute(f"CREATE SCHEMA {schema}")
    database = Database(
        POSTGRES_URL,
        connect_args={"server_settings": {"search_path": schema}},
        writers=WRITERS,
    )
    try:
        await upgrade_database(database)
        yield database
    finally:
        await database.close()
        await admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await admin.close()


def _keys_on_two_writers() -> tuple[str, str]:
    """Two keys the pool sends to different writers."""
    first = "call-a"
    for n in range(100):
        other = f"call-{n}"
        if zlib.crc32(other.encode()) % WRITERS != zlib.crc32(first.encode()) % WRITERS:
            return first, other
    raise AssertionError("no second writer found")


async def test_writes_of_two_calls_commit_side_by_side(pooled: Database) -> None:
    """A write of one call that waits (here: for the other call's write) does not hold up
    another call's: with one writer this would never finish."""
    first, second = _keys_on_two_writers()
    other_committed = asyncio.Event()

    async def waits_for_the_other(session: AsyncSession) -> str:
        await asyncio.wait_for(other_committed.wait(), 20)
        return "done"

    async def quick(session: AsyncSession) -> None:
        session.add(Workspace(id=new_id(), name="quick"))

    waiting = asyncio.ensure_future(pooled.write(waits_for_the_other, key=first))
    await pooled.write(quick, key=second)
    other_committed.set()
    assert await waiting == "done"


async def test_one_calls_writes_keep_their_order(pooled: Database) -> None:
    async def create(session: AsyncSession) -> str:
        workspace = Workspace(id=new_id(), name="")
        session.add(workspace)
        await session.flush()
        return workspace.id

    workspace_id = await pooled.write(create)

    def append(letter: str) -> Callable[[AsyncSession], Awaitable[None]]:
        async def job(session: AsyncSession) -> None:
            await session.execute(
                update(Workspace)
                .where(Workspace.id == workspace_id)
                .values(name=Workspace.name + letter)
            )

        return job

    letters = "abcdefghijklmnopqrst"
    for letter in letters:
        pooled.write_later(append(letter), what="append", key=workspace_id)
    await pooled.wait_written()
    async with pooled.sessions() as session:
        assert await session.scalar(select(Workspace.name).where(Workspace.id == workspace_id)) == (
            letters
        )


async def test_forty_debits_racing_for_one_wallet_all_commit(pooled: Database) -> None:
    """Every ledger change locks the workspace's wallet first: on four writers they take
    turns on that lock, and not one meets a deadlock or loses its debit."""
    async with pooled.transaction() as session:
        workspace = await accounts.create_workspace(session, "Acme")
        await top_up(session, workspace.id, 10_000, idempotency_key="seed")
    workspace_id = workspace.id

    def debit(n: int) -> Callable[[AsyncSession], Awaitable[None]]:
        async def job(session: AsyncSession) -> None:
            await post_entry(
                session,
                workspace_id=workspace_id,
                amount_minor=-10,
                entry_type="call",
                idempotency_key=f"debit-{n}",
            )

        return job

    await asyncio.gather(*(pooled.write(debit(n), key=f"call-{n}") for n in range(40)))
    async with pooled.sessions() as session:
        total = await session.scalar(
            select(func.sum(WalletEntry.amount_minor)).where(
                WalletEntry.workspace_id == workspace_id
            )
        )
    assert total == 10_000 - 400
