"""Tests for sautikit.media.clock: tick order, failure isolation, drift and stall handling.

The clock runs on a fake time source whose ``sleep`` advances virtual time instantly, so
thousands of ticks take milliseconds and nothing depends on the machine's real timing.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random

import pytest

from sautikit.media.clock import MediaClock

INTERVAL = 0.020


class FakeTime:
    """Virtual monotonic time; each sleep oversleeps by the next value of ``oversleep``."""

    def __init__(self, oversleep: list[float] | None = None) -> None:
        self.now = 5000.0
        self.oversleep = oversleep or []
        self.sleeps = 0

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        extra = self.oversleep[self.sleeps] if self.sleeps < len(self.oversleep) else 0.0
        self.sleeps += 1
        self.now += delay + extra
        await asyncio.sleep(0)


def make_clock(fake: FakeTime, **kwargs: object) -> MediaClock:
    return MediaClock(INTERVAL, time_source=fake.monotonic, sleep=fake.sleep, **kwargs)  # type: ignore[arg-type]


class Recorder:
    """A subscriber that notes each tick it sees and can stop the clock at a given tick."""

    def __init__(self, name: str, log: list[tuple[str, int]], clock: MediaClock, stop_at: int = -1):
        self.name, self.log, self.clock, self.stop_at = name, log, clock, stop_at

    def on_tick(self, tick: int) -> None:
        self.log.append((self.name, tick))
        if tick == self.stop_at:
            self.clock.stop()


async def test_subscribers_are_called_in_order_once_per_tick() -> None:
    fake = FakeTime()
    clock = make_clock(fake)
    calls: list[tuple[str, int]] = []
    clock.subscribe(Recorder("first", calls, clock))
    clock.subscribe(Recorder("second", calls, clock, stop_at=99))
    clock.subscribe(Recorder("third", calls, clock))
    await clock.run()
    # "third" is not called on tick 99: stop() takes effect at once, even mid-tick.
    expected = [(name, n) for n in range(99) for name in ("first", "second", "third")]
    assert calls == [*expected, ("first", 99), ("second", 99)]
    assert clock.stats().ticks == 100
    assert not clock.running


async def test_raising_subscriber_is_removed_and_the_clock_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeTime()
    clock = make_clock(fake)
    calls: list[tuple[str, int]] = []

    class Faulty:
        def on_tick(self, tick: int) -> None:
            calls.append(("faulty", tick))
            if tick == 2:
                raise RuntimeError("broken player")

    faulty = Faulty()
    clock.subscribe(faulty)
    clock.subscribe(Recorder("healthy", calls, clock, stop_at=5))
    with caplog.at_level(logging.ERROR, logger="sautikit.media.clock"):
        await clock.run()
    assert [tick for name, tick in calls if name == "faulty"] == [0, 1, 2]
    assert [tick for name, tick in calls if name == "healthy"] == [0, 1, 2, 3, 4, 5]
    assert faulty not in clock
    assert clock.stats().failed_subscribers == 1
    assert "broken player" in caplog.text


async def test_subscription_changes_during_a_tick_are_safe() -> None:
    fake = FakeTime()
    clock = make_clock(fake)
    calls: list[tuple[str, int]] = []
    later = Recorder("later", calls, clock)
    newcomer = Recorder("newcomer", calls, clock, stop_at=4)

    class Rearranger:
        def on_tick(self, tick: int) -> None:
            calls.append(("rearranger", tick))
            if tick == 1:
                clock.unsubscribe(later)  # not called for the rest of tick 1
                clock.subscribe(newcomer)  # first called on tick 2
                clock.unsubscribe(self)
                clock.unsubscribe(self)  # twice is harmless

    clock.subscribe(Rearranger())
    clock.subscribe(later)
    await clock.run()
    assert calls == [
        ("rearranger", 0),
        ("later", 0),
        ("rearranger", 1),
        ("newcomer", 2),
        ("newcomer", 3),
        ("newcomer", 4),
    ]
    assert len(clock) == 1


async def test_subscribing_twice_is_refused() -> None:
    clock = make_clock(FakeTime())
    subscriber = Recorder("x", [], clock)
    clock.subscribe(subscriber)
    with pytest.raises(ValueError, match="already subscribed"):
        clock.subscribe(subscriber)


async def test_no_drift_over_many_ticks_with_jittery_wakeups() -> None:
    jitter = random.Random(7)
    fake = FakeTime([jitter.uniform(0.0, 0.015) for _ in range(20_000)])
    clock = make_clock(fake)
    start = fake.now
    seen: list[tuple[int, float]] = []

    class Probe:
        def on_tick(self, tick: int) -> None:
            seen.append((tick, fake.now))
            if tick == 9_999:
                clock.stop()

    clock.subscribe(Probe())
    await clock.run()
    assert [tick for tick, _ in seen] == list(range(10_000))
    # Each tick fires at most one wake-up's jitter after its own absolute deadline:
    # the 15 ms of oversleep never accumulates into drift.
    for tick, when in seen:
        assert 0.0 <= when - (start + tick * INTERVAL) <= 0.015 + 1e-9
    stats = clock.stats()
    assert stats.skipped_ticks == 0
    assert 0.0 < stats.lateness_p50 < stats.lateness_p99 <= stats.lateness_max <= 0.015 + 1e-9
    assert stats.late_ticks > 0  # jitter above the 5 ms threshold counts as late


async def test_a_stall_skips_ahead_instead_of_bursting() -> None:
    stall = [0.0] * 10 + [1.0]  # the wake-up for tick 10 comes a whole second late
    fake = FakeTime(stall)
    clock = make_clock(fake)
    dispatched: list[tuple[int, float]] = []

    class Probe:
        def on_tick(self, tick: int) -> None:
            dispatched.append((tick, fake.now))
            if len(dispatched) == 20:
                clock.stop()

    clock.subscribe(Probe())
    await clock.run()
    ticks = [tick for tick, _ in dispatched]
    assert ticks[:10] == list(range(10))
    # A second is 50 ticks: the clock resumes at the index that is due now.
    assert ticks[10:] == list(range(60, 70))
    stats = clock.stats()
    assert stats.skipped_ticks == 50
    assert stats.lateness_max == pytest.approx(1.0)
    # No burst: after the jump, ticks are spaced by the interval again.
    times = [when for _, when in dispatched[10:]]
    assert all(b - a == pytest.approx(INTERVAL) for a, b in itertools.pairwise(times))


async def test_small_lag_is_caught_up_without_skipping() -> None:
    fake = FakeTime([0.0, 0.050])  # 2.5 ticks late: within max_lag_ticks=3
    clock = make_clock(fake)
    ticks: list[int] = []

    class Probe:
        def on_tick(self, tick: int) -> None:
            ticks.append(tick)
            if tick == 6:
                clock.stop()

    clock.subscribe(Probe())
    await clock.run()
    assert ticks == list(range(7))
    assert clock.stats().skipped_ticks == 0


async def test_runs_on_the_real_event_loop_and_restarts() -> None:
    clock = MediaClock()
    ticked = asyncio.Event()
    ticks: list[int] = []

    class Probe:
        def on_tick(self, tick: int) -> None:
            ticks.append(tick)
            ticked.set()

    clock.subscribe(Probe())
    clock.start()
    with pytest.raises(RuntimeError, match="already running"):
        clock.start()
    await asyncio.wait_for(ticked.wait(), timeout=5)
    await clock.close()
    assert not clock.running
    first_run = list(ticks)
    ticked.clear()
    clock.start()
    await asyncio.wait_for(ticked.wait(), timeout=5)
    await clock.close()
    # Indexes continue across runs: each tick index is still seen only once.
    assert ticks[: len(first_run)] == first_run
    assert len(set(ticks)) == len(ticks)
    assert ticks == sorted(ticks)


def test_empty_stats_and_bad_interval() -> None:
    assert MediaClock().stats().lateness_p99 == 0.0
    with pytest.raises(ValueError, match="positive"):
        MediaClock(0)


async def test_a_clock_closed_before_its_first_tick_stops() -> None:
    clock = MediaClock()
    clock.start()
    await asyncio.wait_for(clock.close(), 2)
    assert not clock.running
