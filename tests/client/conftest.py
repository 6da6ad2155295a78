"""The SDK against the real API: in-process over ASGI, or over TCP from a uvicorn server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import select
from tests.support import KeyFactory

from sautikit.billing import ledger
from sautikit.billing.numbers import import_inventory, parse_inventory
from sautikit.db import Database
from sautikit.db.models import Number
from sautikit_sdk import AsyncSautikit

BASE_URL = "http://sautikit.test"

INVENTORY = (
    b"number,monthly_price_minor,capabilities\n"
    b"+254201000001,10000,voice\n"
    b"+254201000002,10000,voice;sms\n"
    b"+254711000003,25000,voice\n"
)


@dataclass(frozen=True)
class Workspace:
    id: str
    api_key: str


@pytest.fixture
async def workspace(make_key: KeyFactory) -> Workspace:
    workspace_id, headers = await make_key()
    return Workspace(workspace_id, headers["Authorization"].removeprefix("Bearer "))


@pytest.fixture
async def inventory(database: Database) -> dict[str, str]:
    """The operator's inventory loaded; e164 → id."""
    async with database.transaction() as session:
        await import_inventory(session, parse_inventory(INVENTORY))
        return dict((await session.execute(select(Number.e164, Number.id))).all())


Fund = Callable[..., Awaitable[None]]


@pytest.fixture
def fund(database: Database, workspace: Workspace) -> Fund:
    """Credit the workspace's wallet as the operator does."""

    async def credit(amount_minor: int, key: str = "sdk-test-top-up") -> None:
        async with database.transaction() as session:
            await ledger.top_up(session, workspace.id, amount_minor, idempotency_key=key)

    return credit


@pytest.fixture
async def http(api_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client whose requests reach the app in process."""
    transport = httpx.ASGITransport(app=api_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport) as client:
        yield client


@pytest.fixture
def sdk(http: httpx.AsyncClient, workspace: Workspace) -> AsyncSautikit:
    return AsyncSautikit(workspace.api_key, base_url=BASE_URL, http_client=http)


@pytest.fixture
async def live_url(api_app: FastAPI) -> AsyncIterator[str]:
    """The API served by uvicorn on an ephemeral loopback port, in the test's event loop
    (where its database lives); sync clients call it from a worker thread."""
    server = uvicorn.Server(
        uvicorn.Config(
            api_app, host="127.0.0.1", port=0, log_config=None, access_log=False, lifespan="off"
        )
    )
    serving = asyncio.create_task(server.serve())
    while not server.started and not serving.done():  # noqa: ASYNC110 - no start-up event
        await asyncio.sleep(0.01)
    host, port = server.servers[0].sockets[0].getsockname()[:2]
    yield f"http://{host}:{port}"
    server.should_exit = True
    await serving
