"""Fixtures for the delivery tests: loopback receivers, a clock to move, settings that let
deliveries reach 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr
from tests.events.support import FakeClock, Receiver

from sautikit.config import Settings


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "var", secret_key=SecretStr("test-secret"), allow_private_http=True
    )


@pytest.fixture
async def receivers() -> AsyncIterator[Callable[..., Awaitable[Receiver]]]:
    started: list[Receiver] = []

    async def start(
        answers: tuple[int, ...] = (), *, then: int = 200, delay: float = 0
    ) -> Receiver:
        receiver = await Receiver(answers, then=then, delay=delay).start()
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        await receiver.close()
