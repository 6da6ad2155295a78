"""The loop-lag monitor sees the event loop being held and exports it on /metrics."""

from __future__ import annotations

import asyncio
import contextlib
import time

from prometheus_client import CollectorRegistry, generate_latest

from sautikit.loopwatch import LoopWatch


async def test_work_that_holds_the_loop_shows_as_lag() -> None:
    registry = CollectorRegistry()
    watch = LoopWatch(interval=0.01)
    watch.register(registry)
    task = asyncio.create_task(watch.run())
    try:
        await asyncio.sleep(0.05)
        time.sleep(0.2)  # noqa: ASYNC251 — blocking work on the loop, the thing to detect
        await asyncio.sleep(0.05)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    # The block is at least as long as it was, however loaded the machine.
    assert watch.recent(1.0) >= 0.15
    exported = generate_latest(registry).decode()
    assert 'sautikit_event_loop_lag_seconds_bucket{le="0.25"}' in exported
    assert "sautikit_event_loop_lag_recent_p99_seconds" in exported


def test_no_samples_means_no_lag() -> None:
    assert LoopWatch().recent() == 0.0
