"""Fixtures for the PBX tests: PBXes on loopback with their own RTP port slices."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from sautikit.media import TextToSpeech
from sautikit.pbx import Pbx
from sautikit.pbx.service import InboundHandler
from sautikit.sip import TimerConfig

# Ports 45000-48999, a slice per test process and per PBX, so that a port another run has
# just let go never receives a stranger's RTP (symmetric RTP would latch onto it).
_BASE = 45000 + (os.getpid() % 20) * 200

PbxFactory = Callable[..., "AsyncIterator[Pbx]"]


@pytest.fixture
def tts(tmp_path: Path) -> TextToSpeech:
    return TextToSpeech(tmp_path / "tts")


@pytest.fixture
async def make_pbx(tts: TextToSpeech) -> AsyncIterator[Callable[..., object]]:
    started: list[Pbx] = []

    async def make(on_inbound: InboundHandler | None = None, **options: object) -> Pbx:
        low = _BASE + len(started) * 50
        pbx = Pbx(
            sip_port=0,
            rtp_ports=(low, low + 49),
            tts=tts,
            on_inbound=on_inbound,
            timers=TimerConfig(t1=0.05),
            **options,
        )
        await pbx.start()
        started.append(pbx)
        return pbx

    yield make
    for pbx in reversed(started):
        await pbx.close()
