"""Token buckets that hold across nodes: API rate limits per key, calls per second per
workspace.

On PostgreSQL each bucket is a row of ``rate_buckets``, refilled and taken in one
``INSERT … ON CONFLICT DO UPDATE`` (the row lock orders concurrent takes, from any node),
so ten nodes enforce one limit, not ten. PostgreSQL rather than Redis: the database every
node already shares carries it, with nothing more to run, back up or secure, and a call's
per-second take runs in the transaction that admits the call. Measured on this machine
(docs/operations.md): about a millisecond per take on loopback. On SQLite — one process
by design — the buckets are in this process (:class:`RateLimiter`).

Times are Unix seconds from ``clock`` (nodes keep their clocks in sync, as the leases
need); a clock that steps back never refills a bucket.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from sautikit.db import Database

__all__ = ["KeyRateLimit", "RateLimiter", "TokenBuckets"]


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def acquire(self, key: str) -> float:
        """Take one token; answer 0 when allowed, else the seconds until one is free."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(tokens=float(self.burst), updated=now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate

    @staticmethod
    def retry_after_header(wait: float) -> str:
        return str(max(1, math.ceil(wait)))


_REFILLED = (
    "LEAST(:burst, rate_buckets.tokens + GREATEST(0, :now - rate_buckets.updated_at) * :rate)"
)
_TAKE = text(
    "INSERT INTO rate_buckets (key, tokens, updated_at, allowed) "
    "VALUES (:key, :burst - 1, :now, true) "
    "ON CONFLICT (key) DO UPDATE SET "
    f"tokens = CASE WHEN {_REFILLED} >= 1 THEN {_REFILLED} - 1 ELSE {_REFILLED} END, "
    f"allowed = {_REFILLED} >= 1, "
    "updated_at = GREATEST(rate_buckets.updated_at, :now) "
    "RETURNING tokens, allowed"
)


class TokenBuckets:
    """Named buckets, each with the rate and burst given when it is taken from."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._local: dict[tuple[float, float], RateLimiter] = {}

    async def take(self, session: AsyncSession, key: str, *, rate: float, burst: float) -> float:
        """Take one token from ``key``: 0 when allowed, else the seconds until one is free.
        Runs in ``session``'s transaction (PostgreSQL), or in this process (SQLite)."""
        if session.bind.dialect.name != "postgresql":
            return self.take_here(key, rate, burst)
        row = (
            await session.execute(
                _TAKE, {"key": key, "rate": rate, "burst": float(burst), "now": self._clock()}
            )
        ).one()
        tokens, allowed = float(row[0]), bool(row[1])
        return 0.0 if allowed else (1 - tokens) / rate

    def take_here(self, key: str, rate: float, burst: float) -> float:
        """Take from this process's bucket ``key`` (one process: SQLite)."""
        limiter = self._local.get((rate, burst))
        if limiter is None:
            limiter = self._local[rate, burst] = RateLimiter(rate, int(burst), self._clock)
        return limiter.acquire(key)


class KeyRateLimit:
    """The API's limit: ``rate`` requests per second per API key, bursts of ``burst``."""

    def __init__(self, database: Database, rate: float, burst: int) -> None:
        self.database = database
        self.rate = rate
        self.burst = burst
        self._buckets = TokenBuckets()

    async def acquire(self, key_id: str) -> float:
        """Take one token; 0 when allowed, else the seconds until one is free."""
        key = f"api-key:{key_id}"
        if self.database.is_sqlite:  # one process: no write per request
            return self._buckets.take_here(key, self.rate, self.burst)
        # A transaction of its own, not after the writer's queue: it reads nothing written.
        async with self.database.sessions() as session, session.begin():
            return await self._buckets.take(session, key, rate=self.rate, burst=self.burst)

    retry_after_header = staticmethod(RateLimiter.retry_after_header)
