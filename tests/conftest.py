"""Fixtures shared by the whole suite: databases on both engines, and an API client.

Under pytest-xdist (``-n 2``, the default in pyproject.toml) each worker is its own
process with its own PostgreSQL database (``test_gw0_…``, made from ``test``'s server at
start and dropped at the end): schemas already keep tests apart, but ``LISTEN``/``NOTIFY``
channels span a whole database, so one worker's command bus would hear the other's.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from tests.daraja import DarajaMockProcess, running_daraja_mock
from tests.support import KeyFactory

from sautikit import accounts
from sautikit.api import create_api
from sautikit.config import Settings
from sautikit.db import Database, upgrade_database
from sautikit.storage import open_store

#: The database the suite was given (``SAUTIKIT_TEST_DATABASE_URL``, else db ``test``).
SERVER_DATABASE_URL = os.environ.get(
    "SAUTIKIT_TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)


def _worker_database_url(url: str) -> str:
    """``url`` itself in a serial run; under xdist, a database of this worker's own on
    the same server, named by worker and test run (two checkouts may run at once)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return url
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID", str(os.getppid()))[:8]
    server, _, name = url.rpartition("/")
    return f"{server}/{name}_{worker}_{run}"


#: The database every PostgreSQL test uses (its schemas, roles' search paths).
POSTGRES_URL = _worker_database_url(SERVER_DATABASE_URL)

# Every database test runs on both engines. PostgreSQL is never skipped: where it is
# missing the suite fails, so CI cannot pass without having tested it.
ENGINES = ["sqlite", "postgresql"]


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def _asyncpg_connect() -> asyncpg.Connection:
    return await asyncpg.connect(_asyncpg_dsn(POSTGRES_URL))


async def _on_server(statement: str) -> None:
    admin = await asyncpg.connect(_asyncpg_dsn(SERVER_DATABASE_URL))
    try:
        await admin.execute(statement)
    finally:
        await admin.close()


def _worker_database_name() -> str | None:
    if POSTGRES_URL == SERVER_DATABASE_URL:
        return None
    return POSTGRES_URL.rpartition("/")[2]


def pytest_configure(config: pytest.Config) -> None:
    name = _worker_database_name()
    if name is not None:
        asyncio.run(_on_server(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        asyncio.run(_on_server(f'CREATE DATABASE "{name}"'))


def pytest_sessionfinish(session: pytest.Session) -> None:
    # Here, not at unconfigure: a worker reports itself finished after this hook, and
    # xdist kills a finished worker that has not exited within seconds.
    name = _worker_database_name()
    if name is not None:
        asyncio.run(_on_server(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=ENGINES)
async def served_database(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[str, Database]]:
    """A database for a real ``sautikit serve`` (tests/serve_process.py): its URL and a
    handle on it, on each engine."""
    # Imported here: tests.serve_process imports this module (POSTGRES_URL).
    from tests.serve_process import serve_database

    async with serve_database(request.param, tmp_path) as found:
        yield found


@pytest.fixture(params=ENGINES)
async def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A database with no tables: a new SQLite file, or a new PostgreSQL schema."""
    if request.param == "sqlite":
        database = Database(f"sqlite+aiosqlite:///{tmp_path / 'test.db'}")
        yield database
        await database.close()
        return
    schema = f"t_{secrets.token_hex(6)}"
    admin = await _asyncpg_connect()
    try:
        await admin.execute(f"CREATE SCHEMA {schema}")
        database = Database(POSTGRES_URL, connect_args={"server_settings": {"search_path": schema}})
        yield database
        await database.close()
    finally:
        await admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await admin.close()


@pytest.fixture
async def database(empty_database: Database) -> Database:
    await upgrade_database(empty_database)
    return empty_database


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "var", secret_key="test-secret")


@pytest.fixture
def api_app(settings: Settings, database: Database) -> FastAPI:
    return create_api(settings, database, open_store(settings))


@pytest.fixture
async def client(api_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=api_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://sautikit.test") as http:
        yield http


@pytest.fixture
def make_key(database: Database) -> KeyFactory:
    """Make a workspace (or reuse one) and a key; answer (workspace id, auth headers)."""

    async def make(
        scopes: list[str] | None = None, workspace_id: str | None = None
    ) -> tuple[str, dict[str, str]]:
        async with database.transaction() as session:
            if workspace_id is None:
                workspace_id = (await accounts.create_workspace(session, "test")).id
            created = await accounts.create_api_key(
                session, workspace_id, sorted(accounts.SCOPES) if scopes is None else scopes
            )
        return workspace_id, {"Authorization": f"Bearer {created.secret}"}

    return make


@pytest.fixture(scope="module")
def daraja_mock() -> Iterator[DarajaMockProcess]:
    """daraja-mock (PyPI) running as its own process on loopback, one per test module."""
    with running_daraja_mock() as mock:
        yield mock
