"""Admission under real concurrency (SPEC §6, §8): calls racing for the last shillings.

Twenty ``POST /v1/calls`` at once in one workspace, on SQLite and on PostgreSQL, through
one API process and through two on one database: every answer is 201, 402, 429 or 503
(never a 500 from a lock conflict), the balance never goes below zero, and no more calls
are admitted than their first slices can be paid for.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from tests.conftest import POSTGRES_URL, _asyncpg_connect

from sautikit import accounts
from sautikit.api import create_api
from sautikit.billing import ledger
from sautikit.config import Settings
from sautikit.db import Database, upgrade_database
from sautikit.db.models import Call, Number, WalletReservation, Workspace
from sautikit.db.types import utcnow
from sautikit.storage import open_store

NUMBER = "+254700000001"
ALLOWED = {201, 402, 429, 503}


async def _workspace(database: Database, credit: int, **limits: int) -> tuple[str, dict[str, str]]:
    async with database.transaction() as session:
        workspace = await accounts.create_workspace(session, "race")
        for name, value in limits.items():
            setattr(workspace, name, value)
        key = await accounts.create_api_key(session, workspace.id, sorted(accounts.SCOPES))
        session.add(
            Number(
                e164=NUMBER,
                monthly_price_minor=0,
                status="active",
                workspace_id=workspace.id,
                claimed_at=utcnow(),
                paid_until=utcnow() + timedelta(days=30),
            )
        )
        if credit:
            await ledger.top_up(session, workspace.id, credit, idempotency_key="seed")
    return workspace.id, {"Authorization": f"Bearer {key.secret}"}


def _client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://sautikit.test")


async def _race(clients: list[httpx.AsyncClient], headers: dict[str, str], count: int) -> list[int]:
    body = {"to": "+254711000000", "from": NUMBER, "action_url": "https://app.example.com/a"}

    async def place(n: int) -> int:
        answer = await clients[n % len(clients)].post("/v1/calls", json=body, headers=headers)
        if answer.status_code not in ALLOWED:
            raise AssertionError(f"{answer.status_code}: {answer.text}")
        return answer.status_code

    return list(await asyncio.gather(*(place(n) for n in range(count))))


async def _books(database: Database, workspace_id: str) -> tuple[int, int, int]:
    """(balance, held, calls)."""
    async with database.sessions() as session:
        balance = await ledger.balance(session, workspace_id)
        held = await session.scalar(
            select(func.coalesce(func.sum(WalletReservation.amount_minor), 0)).where(
                WalletReservation.workspace_id == workspace_id
            )
        )
        calls = await session.scalar(
            select(func.count()).select_from(Call).where(Call.workspace_id == workspace_id)
        )
    return balance, int(held or 0), int(calls or 0)


async def test_twenty_calls_race_for_ten_first_slices(
    database: Database, settings: Settings
) -> None:
    """KES 30.00 at KES 3.00/min pays ten one-minute first slices: ten 201s, ten 402s."""
    workspace_id, headers = await _workspace(
        database, 3_000, max_calls_per_second=100, max_concurrent_calls=100
    )
    async with _client(create_api(settings, database, open_store(settings))) as client:
        answers = await _race([client], headers, 20)
    assert sorted(answers) == [201] * 10 + [402] * 10
    assert await _books(database, workspace_id) == (3_000, 3_000, 10)


async def test_the_default_limits_answer_a_flood_with_429_not_500(
    database: Database, settings: Settings
) -> None:
    workspace_id, headers = await _workspace(database, 100_000)
    async with _client(create_api(settings, database, open_store(settings))) as client:
        answers = await _race([client], headers, 20)
    async with database.sessions() as session:
        workspace = await session.get(Workspace, workspace_id)
        assert workspace is not None
        burst = workspace.max_calls_per_second
    admitted = answers.count(201)
    assert set(answers) <= {201, 429}
    assert admitted >= burst  # at least the default burst: a second's worth of calls
    _, held, calls = await _books(database, workspace_id)
    assert (held, calls) == (admitted * 300, admitted)


@pytest.fixture
async def two_databases(tmp_path: Path) -> AsyncIterator[tuple[Database, Database]]:
    """Two processes' worth of database handles (each its own pool and writer) on one
    PostgreSQL schema."""
    schema = f"t_{secrets.token_hex(6)}"
    admin = await _asyncpg_connect()
    await admin.execute(f"CREATE SCHEMA {schema}")
    args = {"server_settings": {"search_path": schema}}
    first, second = (
        Database(POSTGRES_URL, connect_args=args),
        Database(POSTGRES_URL, connect_args=args),
    )
    try:
        await upgrade_database(first)
        yield first, second
    finally:
        await first.close()
        await second.close()
        await admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await admin.close()


async def test_two_api_processes_on_one_postgresql_race_without_500(
    two_databases: tuple[Database, Database], tmp_path: Path
) -> None:
    first, second = two_databases
    settings = Settings(data_dir=tmp_path / "var", secret_key="test-secret")
    workspace_id, headers = await _workspace(
        first, 3_000, max_calls_per_second=100, max_concurrent_calls=100
    )
    store = open_store(settings)
    async with (
        _client(create_api(settings, first, store)) as one,
        _client(create_api(settings, second, store)) as two,
    ):
        answers = await _race([one, two], headers, 20)
    # Each process has its own per-second bucket; the wallet is shared.
    assert sorted(answers) == [201] * 10 + [402] * 10
    assert await _books(first, workspace_id) == (3_000, 3_000, 10)


async def test_a_full_wallet_of_live_calls_refuses_the_next_with_429(
    database: Database, settings: Settings
) -> None:
    """The concurrent cap counts a bridged call once: its dialled legs are not counted."""
    workspace_id, headers = await _workspace(
        database, 100_000, max_calls_per_second=100, max_concurrent_calls=2
    )
    async with database.transaction() as session:
        parent = Call(
            workspace_id=workspace_id,
            direction="inbound",
            from_number="+254711000009",
            to_number=NUMBER,
            status="answered",
        )
        session.add(parent)
        await session.flush()
        session.add(
            Call(
                workspace_id=workspace_id,
                direction="outbound",
                from_number=NUMBER,
                to_number="+254722000000",
                status="answered",
                parent_call_id=parent.id,
            )
        )
    async with _client(create_api(settings, database, open_store(settings))) as client:
        answers = await _race([client], headers, 3)
    assert sorted(answers) == [201, 429, 429]
