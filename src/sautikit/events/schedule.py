"""When a webhook delivery is tried again (SPEC §7).

Eight attempts in all: at once, then after 30 s, 2 min, 10 min, 30 min, 2 h, 6 h and 24 h.
Each wait is drawn with *full jitter* — uniformly between zero and the nominal wait — so
that receivers coming back from an outage are not hit by every retry in the same second.
After the eighth failure the delivery is dead-lettered.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import timedelta

__all__ = ["DELIVERY_WAITS", "RetrySchedule"]

# The nominal wait before each retry: DELIVERY_WAITS[0] follows the first attempt.
DELIVERY_WAITS: tuple[timedelta, ...] = (
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=6),
    timedelta(hours=24),
)


class RetrySchedule:
    """The waits between attempts, drawn from ``rng`` (seed it for repeatable tests)."""

    def __init__(
        self, waits: Sequence[timedelta] = DELIVERY_WAITS, *, rng: random.Random | None = None
    ) -> None:
        if any(wait < timedelta(0) for wait in waits):
            raise ValueError("retry waits cannot be negative")
        self.waits = tuple(waits)
        self._rng = rng or random.Random()

    @property
    def max_attempts(self) -> int:
        """The first attempt plus one per wait."""
        return len(self.waits) + 1

    def delay_after(self, attempts_made: int) -> timedelta | None:
        """How long to wait after ``attempts_made`` failed attempts, or None when the
        delivery has had all of them and goes to the dead letters."""
        if attempts_made < 1:
            raise ValueError("a delay follows at least one attempt")
        if attempts_made >= self.max_attempts:
            return None
        nominal = self.waits[attempts_made - 1].total_seconds()
        return timedelta(seconds=self._rng.uniform(0.0, nominal))
