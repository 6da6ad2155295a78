"""Brute-force protection for digest authentication: failures counted, guessers refused.

Two counters over a sliding ``window``:

* **per source address** — after ``max_failures_per_source`` failed answers the address
  is refused outright (403, no challenge, no digest work) for ``block_seconds``;
* **per username** — a guesser spread over many addresses: after
  ``max_failures_per_username`` failures for one username, every address that failed on
  it within the window is refused that username for ``block_seconds``. An address that
  never failed (the phone's own) keeps working, so an attack cannot lock the user out.

A failure is a digest answer that was checked and was wrong (a wrong password or an
unknown username); a missing, malformed or stale answer is only challenged again. Memory
is bounded: at most ``max_tracked`` addresses and usernames each, the oldest dropped.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["AuthThrottle", "ThrottlePolicy"]


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    max_failures_per_source: int = 10
    max_failures_per_username: int = 30
    window: float = 60.0
    block_seconds: float = 600.0
    max_tracked: int = 100_000


class _Track:
    __slots__ = ("blocked_until", "failures", "sources")

    def __init__(self) -> None:
        self.failures: deque[float] = deque()
        self.blocked_until = 0.0
        #: For a username: the addresses that failed on it, with their last failure.
        self.sources: dict[str, float] = {}


class AuthThrottle:
    """Counts failures and says who is refused; see the module docstring."""

    def __init__(
        self, policy: ThrottlePolicy | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.policy = policy or ThrottlePolicy()
        self._clock = clock
        self._sources: OrderedDict[str, _Track] = OrderedDict()
        self._usernames: OrderedDict[str, _Track] = OrderedDict()
        #: Failures recorded and requests refused since start, for metrics.
        self.failures_total = 0
        self.refusals_total = 0

    def source_blocked(self, source: str) -> bool:
        track = self._sources.get(source)
        return track is not None and track.blocked_until > self._clock()

    def username_blocked(self, username: str, source: str) -> bool:
        """True when ``username`` is under attack and ``source`` is one of its guessers."""
        track = self._usernames.get(username)
        if track is None or track.blocked_until <= self._clock():
            return False
        # A guesser: failed on it within the window before the block, or since.
        since = track.blocked_until - self.policy.block_seconds - self.policy.window
        last = track.sources.get(source)
        return last is not None and last >= since

    def refused(self) -> None:
        self.refusals_total += 1

    def record_failure(self, source: str, username: str) -> list[str]:
        """Count one failure; returns what it newly blocked, for one log line each."""
        self.failures_total += 1
        now = self._clock()
        policy = self.policy
        blocked: list[str] = []
        source_track = self._track(self._sources, source)
        if self._count(source_track, now) >= policy.max_failures_per_source:
            if source_track.blocked_until <= now:
                blocked.append(f"source {source}")
            source_track.blocked_until = now + policy.block_seconds
        user_track = self._track(self._usernames, username)
        user_track.sources[source] = now
        if len(user_track.sources) > 4 * policy.max_failures_per_username:
            oldest = min(user_track.sources, key=user_track.sources.__getitem__)
            del user_track.sources[oldest]
        if self._count(user_track, now) >= policy.max_failures_per_username:
            if user_track.blocked_until <= now:
                blocked.append(f"username {username!r:.66} for the addresses guessing it")
            user_track.blocked_until = now + policy.block_seconds
        return blocked

    def _track(self, table: OrderedDict[str, _Track], key: str) -> _Track:
        track = table.get(key)
        if track is None:
            track = table[key] = _Track()
            while len(table) > self.policy.max_tracked:
                table.popitem(last=False)
        else:
            table.move_to_end(key)
        return track

    def _count(self, track: _Track, now: float) -> int:
        track.failures.append(now)
        horizon = now - self.policy.window
        while track.failures and track.failures[0] < horizon:
            track.failures.popleft()
        return len(track.failures)
