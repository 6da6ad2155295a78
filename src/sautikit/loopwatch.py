"""How late the event loop runs: the process's one measure of "something blocked it".

Every call's SIP timers, RTP clock and app requests share one event loop, so any work
that holds it (a large JSON document, a WAV written in place, a hash of a big file) delays
them all. :class:`LoopWatch` asks the loop to wake it every ``interval`` and measures how
late it woke — the *lag*. The lag is exported as the histogram
``sautikit_event_loop_lag_seconds`` on ``/metrics``, and the overload controller reads
the recent p99 to refuse new calls while the loop is falling behind.

A wake-up later than ``warn_after`` is logged with its size, which points at the blocking
work when read beside the call logs (py-spy finds the code).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque

from prometheus_client import CollectorRegistry, Gauge, Histogram

__all__ = ["LAG_BUCKETS", "LoopWatch"]

log = logging.getLogger(__name__)

LAG_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.03,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
"""Fine below 20 ms (the media tick), where the targets are."""


class LoopWatch:
    """Samples the event loop's lag every ``interval`` seconds while :meth:`run` runs."""

    def __init__(
        self,
        *,
        interval: float = 0.02,
        window_seconds: float = 2.0,
        warn_after: float = 0.25,
    ) -> None:
        self.interval = interval
        self.warn_after = warn_after
        self._recent: deque[float] = deque(maxlen=max(1, round(window_seconds / interval)))
        self._histogram: Histogram | None = None

    def register(self, registry: CollectorRegistry) -> None:
        """Export the lag on ``registry`` (the API's ``/metrics``)."""
        self._histogram = Histogram(
            "sautikit_event_loop_lag_seconds",
            "How late the event loop woke a timer (sampled every 20 ms)",
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        recent = Gauge(
            "sautikit_event_loop_lag_recent_p99_seconds",
            "The p99 event loop lag over the last few seconds",
            registry=registry,
        )
        recent.set_function(lambda: self.recent(0.99))

    def recent(self, quantile: float = 0.99, *, samples: int | None = None) -> float:
        """The lag (seconds) at ``quantile`` over the recent window (or its last
        ``samples``); 0 before any sample."""
        if not self._recent:
            return 0.0
        window = list(self._recent)
        ordered = sorted(window[-samples:] if samples else window)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(quantile * len(ordered)) - 1))]

    def record(self, lag: float) -> None:
        lag = max(0.0, lag)
        self._recent.append(lag)
        if self._histogram is not None:
            self._histogram.observe(lag)
        if lag >= self.warn_after:
            log.warning("the event loop was blocked for %.0f ms", lag * 1000)

    async def run(self) -> None:
        """Sample until cancelled."""
        clock = time.perf_counter
        while True:
            asked = clock()
            await asyncio.sleep(self.interval)
            self.record(clock() - asked - self.interval)
