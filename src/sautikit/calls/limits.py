"""Call limits (SPEC §8): live calls per workspace and new calls per second.

Admission (:mod:`sautikit.calls.admission`) asks :meth:`CallRateGuard.admit` for every call
going out, in the transaction that then inserts the call.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from sautikit.calls.status import LIVE_STATUSES
from sautikit.cluster.buckets import TokenBuckets
from sautikit.db.models import Call, Workspace

__all__ = ["CallLimitExceeded", "CallRateGuard"]


class CallLimitExceeded(Exception):
    """A new call would break a cap; ``retry_after`` is in seconds (the API answers 429)."""

    def __init__(self, message: str, *, limit: Literal["concurrent", "rate"], retry_after: float):
        super().__init__(message)
        self.limit = limit
        self.retry_after = retry_after


class CallRateGuard:
    """Per-workspace caps on live calls and on new calls per second.

    The concurrency count reads the calls table, so it holds across processes. Call
    :meth:`admit` in the transaction that then inserts the call, holding the workspace's
    wallet lock (admission takes it first), so two admissions of one workspace cannot both
    take the last line. A bridged call counts once: its dialled legs (rows with a
    ``parent_call_id``) are part of it (SPEC §6). The per-second limit is a token bucket
    with a burst of one second's worth of calls, shared by every node on PostgreSQL
    (:mod:`sautikit.cluster.buckets`); ``clock`` gives Unix seconds.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._buckets = TokenBuckets(clock)

    async def admit(self, session: AsyncSession, workspace: Workspace) -> None:
        """Allow one more call for ``workspace`` or raise :class:`CallLimitExceeded`."""
        live = await session.scalar(
            select(func.count())
            .select_from(Call)
            .where(
                Call.workspace_id == workspace.id,
                Call.status.in_(LIVE_STATUSES),
                Call.parent_call_id.is_(None),
            )
        )
        if (live or 0) >= workspace.max_concurrent_calls:
            raise CallLimitExceeded(
                f"this workspace already has {live} live calls, its limit of "
                f"{workspace.max_concurrent_calls}",
                limit="concurrent",
                retry_after=1.0,
            )
        rate = workspace.max_calls_per_second
        wait = await self._buckets.take(
            session, f"calls-per-second:{workspace.id}", rate=rate, burst=max(1, rate)
        )
        if wait:
            raise CallLimitExceeded(
                f"this workspace may start {workspace.max_calls_per_second} calls per second",
                limit="rate",
                retry_after=wait,
            )
