"""Fixtures of the call-lifecycle tests: one loopback app server per module, reset for
each test (the same app the voice tests use)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.voice.voice_rig import AppServer, serve_app


@pytest.fixture(scope="module")
def app_server() -> Iterator[AppServer]:
    with serve_app() as server:
        yield server


@pytest.fixture
def app(app_server: AppServer) -> Iterator[AppServer]:
    app_server.reset()
    yield app_server
    app_server.reset()
