"""Fixtures for the SIP tests that run real peers: user agents on loopback, and SIPp."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from tests.sipp import Sipp

from sautikit.sip import UserAgent

MakeAgent = Callable[..., Awaitable[UserAgent]]


@pytest.fixture
async def make_agent() -> AsyncIterator[MakeAgent]:
    agents: list[UserAgent] = []

    async def make(**options: Any) -> UserAgent:
        agent = await UserAgent.listen("127.0.0.1", 0, **options)
        agents.append(agent)
        return agent

    yield make
    for agent in agents:
        await agent.close()


StartSipp = Callable[..., Awaitable[Sipp]]


@pytest.fixture
async def start_sipp(tmp_path: Path) -> AsyncIterator[StartSipp]:
    """Start SIPp in the test's folder; whatever still runs is killed at teardown."""
    started: list[Sipp] = []

    async def start(**options: Any) -> Sipp:
        sipp = Sipp(workdir=tmp_path, **options)
        await sipp.start()
        started.append(sipp)
        return sipp

    yield start
    for sipp in started:
        await sipp.stop()
