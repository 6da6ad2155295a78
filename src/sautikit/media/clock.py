"""The shared 20 ms media clock that paces every player, recorder, bridge and mixer.

A PBX process runs ONE :class:`MediaClock`: a single asyncio task that wakes at absolute
deadlines ``start + n * interval`` on a monotonic clock and calls ``on_tick(n)`` on every
subscriber, synchronously and in registration order. Scheduling from absolute deadlines
means a late wake-up never shifts the ticks after it, so media never drifts against the
8000 Hz RTP timestamps of the far end.

If the loop falls more than ``max_lag_ticks`` behind (a stall: garbage collection, a
blocked loop), the clock jumps to the current deadline instead of bursting the missed
ticks out back to back, and counts the ticks it skipped; tick indexes then jump too, so a
subscriber can tell how much time passed. Lateness statistics feed benchmarks and /metrics.

Subscribers may subscribe and unsubscribe at any time, including from inside ``on_tick``:
one added during a tick is first called on the next tick, one removed during a tick is not
called again. A subscriber that raises is logged and removed; the clock keeps going.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, Protocol

import numpy as np

from sautikit.media.audio import FRAME_DURATION

__all__ = ["ClockStats", "MediaClock", "TickSubscriber"]

log = logging.getLogger(__name__)

DEFAULT_LATE_THRESHOLD: Final = 0.005
"""A tick dispatched more than this many seconds after its deadline counts as late."""


class TickSubscriber(Protocol):
    """Anything paced by the media clock: called once per tick, must not block."""

    def on_tick(self, tick: int) -> None: ...


@dataclass(frozen=True, slots=True)
class ClockStats:
    """How punctual the clock has been. Lateness is in seconds after each tick's deadline."""

    ticks: int
    """Ticks dispatched to subscribers."""
    late_ticks: int
    """Ticks dispatched more than the late threshold after their deadline."""
    skipped_ticks: int
    """Deadlines dropped after the clock fell too far behind."""
    failed_subscribers: int
    """Subscribers removed because ``on_tick`` raised."""
    lateness_p50: float
    """Median lateness over the recent window."""
    lateness_p99: float
    """99th-percentile lateness over the recent window."""
    lateness_max: float
    """Worst lateness since the clock was created."""


class MediaClock:
    """One task ticking every ``interval`` seconds for all media of the process."""

    def __init__(
        self,
        interval: float = FRAME_DURATION,
        *,
        time_source: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        max_lag_ticks: int = 3,
        late_threshold: float = DEFAULT_LATE_THRESHOLD,
        stats_window: int = 3000,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"the tick interval must be positive, got {interval}")
        self.interval = interval
        self._now = time_source
        self._sleep = sleep
        self._max_lag_ticks = max_lag_ticks
        self._late_threshold = late_threshold
        self._subscribers: dict[int, TickSubscriber] = {}
        self._snapshot: tuple[tuple[int, TickSubscriber], ...] | None = ()
        self._next_tick = 0
        self._stopping = False
        self._running = False
        self._task: asyncio.Task[None] | None = None
        self._ticks = 0
        self._late_ticks = 0
        self._skipped_ticks = 0
        self._failed_subscribers = 0
        self._lateness_max = 0.0
        self._recent_lateness: collections.deque[float] = collections.deque(maxlen=stats_window)

    # --- subscribers ----------------------------------------------------------------------

    def subscribe(self, subscriber: TickSubscriber) -> None:
        """Call ``subscriber.on_tick`` from the next tick on, after earlier subscribers."""
        key = id(subscriber)
        if key in self._subscribers:
            raise ValueError(f"{subscriber!r} is already subscribed to the media clock")
        self._subscribers[key] = subscriber
        self._snapshot = None

    def unsubscribe(self, subscriber: TickSubscriber) -> None:
        """Stop calling ``subscriber``, even later in the current tick; absent is fine."""
        if self._subscribers.pop(id(subscriber), None) is not None:
            self._snapshot = None

    def __len__(self) -> int:
        return len(self._subscribers)

    def __contains__(self, subscriber: object) -> bool:
        return self._subscribers.get(id(subscriber)) is subscriber

    # --- running --------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._running

    def start(self) -> None:
        """Run the clock in a task of the current event loop."""
        if self._task is not None and not self._task.done():
            raise RuntimeError("the media clock is already running")
        # Reset here, not in run(): a stop() before the task first runs must still count.
        self._stopping = False
        self._task = asyncio.get_running_loop().create_task(self.run(), name="media-clock")

    def stop(self) -> None:
        """Ask the clock to stop: no tick is dispatched after this call, even mid-tick."""
        self._stopping = True

    async def close(self) -> None:
        """Stop the clock and wait for its task to end."""
        self.stop()
        if self._task is not None:
            task, self._task = self._task, None
            await task

    async def run(self) -> None:
        """Tick until :meth:`stop`; tick indexes continue from a previous run."""
        if self._running:
            raise RuntimeError("the media clock is already running")
        self._running = True
        interval = self.interval
        start = self._now() - self._next_tick * interval
        try:
            while True:
                deadline = start + self._next_tick * interval
                # Always yield, even when behind, so network I/O still gets its turn.
                await self._sleep(max(0.0, deadline - self._now()))
                if self._stopping:
                    return
                lateness = self._now() - deadline
                self._record(lateness)
                # The epsilon keeps float noise from turning 50.0 ticks into 49.
                behind = math.floor(lateness / interval + 1e-6)
                if behind > self._max_lag_ticks:
                    self._next_tick += behind
                    self._skipped_ticks += behind
                tick = self._next_tick
                self._next_tick += 1
                self._dispatch(tick)
        finally:
            self._running = False

    def _dispatch(self, tick: int) -> None:
        if self._snapshot is None:
            self._snapshot = tuple(self._subscribers.items())
        subscribers = self._subscribers
        for key, subscriber in self._snapshot:
            if self._stopping:
                return
            if subscribers.get(key) is not subscriber:
                continue  # unsubscribed earlier in this tick
            try:
                subscriber.on_tick(tick)
            except Exception:
                log.exception("media clock subscriber %r failed; removing it", subscriber)
                self._failed_subscribers += 1
                self.unsubscribe(subscriber)

    # --- statistics -----------------------------------------------------------------------

    def _record(self, lateness: float) -> None:
        lateness = max(0.0, lateness)
        self._ticks += 1
        if lateness > self._late_threshold:
            self._late_ticks += 1
        self._lateness_max = max(self._lateness_max, lateness)
        self._recent_lateness.append(lateness)

    def stats(self) -> ClockStats:
        """A snapshot of the punctuality counters."""
        if self._recent_lateness:
            p50, p99 = np.percentile(np.fromiter(self._recent_lateness, float), [50, 99])
        else:
            p50 = p99 = 0.0
        return ClockStats(
            ticks=self._ticks,
            late_ticks=self._late_ticks,
            skipped_ticks=self._skipped_ticks,
            failed_subscribers=self._failed_subscribers,
            lateness_p50=float(p50),
            lateness_p99=float(p99),
            lateness_max=self._lateness_max,
        )
