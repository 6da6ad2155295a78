"""Fixtures of the voice tests: one loopback app server per session, reset for each test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from tests.voice.voice_rig import AppServer, serve_app

from sautikit.net import outbound_client


@pytest.fixture(scope="session")
def app_server() -> Iterator[AppServer]:
    with serve_app() as server:
        yield server


@pytest.fixture
def app(app_server: AppServer) -> Iterator[AppServer]:
    app_server.reset()
    yield app_server
    app_server.reset()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """Outbound HTTP as Sautikit makes it, with loopback allowed (the test app lives there)."""
    async with outbound_client(allow_private=True) as client:
        yield client
