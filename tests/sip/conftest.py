"""Fixtures for the SIP tests that run real peers: user agents on loopback, and SIPp."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from tests.sipp import Sipp

from sautikit.media.tts import TextToSpeech
from sautikit.pbx import Pbx
from sautikit.sip import TimerConfig, UserAgent

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


_PBX_RTP_BASE = 41000 + (os.getpid() % 20) * 100

MakePbx = Callable[..., Awaitable[Pbx]]


@pytest.fixture
async def make_pbx(tmp_path: Path) -> AsyncIterator[MakePbx]:
    """PBXs on their own RTP ranges with fast SIP timers, closed after the test."""
    started: list[Pbx] = []

    async def make(on_inbound: Any) -> Pbx:
        low = _PBX_RTP_BASE + len(started) * 20
        pbx = Pbx(
            sip_port=0,
            rtp_ports=(low, low + 19),
            tts=TextToSpeech(tmp_path / "tts"),
            on_inbound=on_inbound,
            timers=TimerConfig(t1=0.05),
        )
        await pbx.start()
        started.append(pbx)
        return pbx

    yield make
    for pbx in started:
        await pbx.close()
