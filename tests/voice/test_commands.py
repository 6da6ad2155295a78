"""The command bus delivers after commit, never for a rolled-back request — in-process for
the embedded default and across processes through PostgreSQL's NOTIFY."""

from __future__ import annotations

import asyncio

import pytest
from tests.conftest import POSTGRES_URL

from sautikit.db import Database
from sautikit.voice.commands import LocalBus, PostgresBus, open_bus


class Inbox:
    def __init__(self) -> None:
        self.messages: asyncio.Queue[dict] = asyncio.Queue()

    async def __call__(self, message: dict) -> None:
        await self.messages.put(message)

    async def next(self) -> dict:
        return await asyncio.wait_for(self.messages.get(), 5)


async def _publish(database: Database, bus, message: dict, *, commit: bool) -> None:
    class RolledBack(Exception):
        pass

    try:
        async with database.transaction() as session:
            await bus.publish(session, message)
            if not commit:
                raise RolledBack
    except RolledBack:
        pass


@pytest.mark.parametrize("empty_database", ["sqlite"], indirect=True)
async def test_local_bus_delivers_after_commit_only(database: Database) -> None:
    bus = LocalBus()
    inbox = Inbox()
    bus.subscribe(inbox)
    await _publish(database, bus, {"type": "place", "call_id": "lost"}, commit=False)
    await _publish(database, bus, {"type": "place", "call_id": "kept"}, commit=True)
    assert (await inbox.next())["call_id"] == "kept"
    await asyncio.sleep(0.1)
    assert inbox.messages.empty()


@pytest.mark.parametrize("empty_database", ["postgresql"], indirect=True)
async def test_postgres_bus_reaches_another_listener(database: Database) -> None:
    """The API's process publishes; a PBX process (its own connection) receives."""
    publisher = open_bus(POSTGRES_URL)
    listener = PostgresBus(POSTGRES_URL)
    inbox = Inbox()
    listener.subscribe(inbox)
    await listener.start()
    try:
        await _publish(database, publisher, {"type": "command", "call_id": "x1"}, commit=False)
        await _publish(database, publisher, {"type": "command", "call_id": "x2"}, commit=True)
        assert (await inbox.next())["call_id"] == "x2"
        await asyncio.sleep(0.2)
        assert inbox.messages.empty()
    finally:
        await listener.close()
