"""Call limits (SPEC §8): live calls per workspace and new calls per second."""

from __future__ import annotations

import pytest

from sautikit import accounts
from sautikit.calls.limits import CallLimitExceeded, CallRateGuard
from sautikit.db import Database
from sautikit.db.models import Call


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_rate_guard_caps_live_calls(database: Database) -> None:
    guard = CallRateGuard()
    async with database.transaction() as session:
        workspace = await accounts.create_workspace(session, "w")
        workspace.max_concurrent_calls = 2
        workspace.max_calls_per_second = 100
        await session.flush()
        for status in ("ringing", "completed", "failed"):
            session.add(
                Call(
                    workspace_id=workspace.id,
                    direction="outbound",
                    from_number="+254711000001",
                    to_number="+254722000000",
                    status=status,
                )
            )
        await session.flush()
        await guard.admit(session, workspace)  # one live call of two
        session.add(
            Call(
                workspace_id=workspace.id,
                direction="outbound",
                from_number="+254711000001",
                to_number="+254722000000",
                status="answered",
            )
        )
        await session.flush()
        with pytest.raises(CallLimitExceeded, match="limit of 2") as refused:
            await guard.admit(session, workspace)
    assert refused.value.limit == "concurrent"


async def test_rate_guard_limits_calls_per_second(database: Database) -> None:
    clock = FakeClock()
    guard = CallRateGuard(clock)
    async with database.transaction() as session:
        workspace = await accounts.create_workspace(session, "w")
        other = await accounts.create_workspace(session, "other")
        for each in (workspace, other):
            each.max_calls_per_second = 2
            each.max_concurrent_calls = 10
        await session.flush()
        await guard.admit(session, workspace)
        await guard.admit(session, workspace)
        with pytest.raises(CallLimitExceeded, match="2 calls per second") as refused:
            await guard.admit(session, workspace)
        assert refused.value.limit == "rate"
        assert refused.value.retry_after == pytest.approx(0.5)
        await guard.admit(session, other)  # each workspace has its own bucket
        clock.now += 0.5
        await guard.admit(session, workspace)
