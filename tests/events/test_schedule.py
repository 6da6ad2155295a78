"""The retry schedule of SPEC §7: eight attempts, waits drawn with full jitter."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sautikit.events.schedule import DELIVERY_WAITS, RetrySchedule

NOMINAL_SECONDS = [30, 120, 600, 1800, 7200, 21600, 86400]


def test_the_nominal_waits_are_the_specs() -> None:
    assert [wait.total_seconds() for wait in DELIVERY_WAITS] == NOMINAL_SECONDS
    assert RetrySchedule().max_attempts == 8


@given(seed=st.integers(min_value=0, max_value=2**32))
def test_each_wait_lies_between_zero_and_its_nominal_wait(seed: int) -> None:
    schedule = RetrySchedule(rng=random.Random(seed))
    for attempts_made, nominal in enumerate(NOMINAL_SECONDS, start=1):
        delay = schedule.delay_after(attempts_made)
        assert delay is not None
        assert timedelta(0) <= delay <= timedelta(seconds=nominal)


def test_after_the_eighth_attempt_there_is_no_next_one() -> None:
    schedule = RetrySchedule(rng=random.Random(1))
    assert schedule.delay_after(7) is not None
    assert schedule.delay_after(8) is None
    assert schedule.delay_after(9) is None


def test_jitter_spreads_the_waits_over_the_whole_range() -> None:
    # Full jitter, not "nominal plus a little": over many draws both halves are used.
    schedule = RetrySchedule(rng=random.Random(7))
    draws = [schedule.delay_after(1) for _ in range(200)]
    assert any(draw is not None and draw < timedelta(seconds=15) for draw in draws)
    assert any(draw is not None and draw > timedelta(seconds=15) for draw in draws)


def test_the_same_seed_gives_the_same_schedule() -> None:
    first = RetrySchedule(rng=random.Random(42))
    second = RetrySchedule(rng=random.Random(42))
    assert [first.delay_after(n) for n in range(1, 9)] == [
        second.delay_after(n) for n in range(1, 9)
    ]


def test_a_wait_before_any_attempt_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one attempt"):
        RetrySchedule().delay_after(0)
    with pytest.raises(ValueError, match="negative"):
        RetrySchedule([timedelta(seconds=-1)])
