"""Overload control: refuse a new call at the door when the process cannot take it.

A call accepted into a process that is already behind is worse than a call refused: it
waits in queues (for the database writer, for the event loop) while its caller
retransmits, then fails late, and every call behind it waits longer still. So before any
database work, a new INVITE and a ``POST /v1/calls`` ask :meth:`OverloadController.check`,
which looks at what the process has in hand:

* **setups** — calls between their INVITE and their answer (or end): the setup queue;
* **write queue** — writes handed to the database writer and not yet committed, and how
  long the oldest of them has waited (the database falling behind, whatever the reason);
* **loop lag** — the median of the event loop's last lags (:mod:`sautikit.loopwatch`):
  a loop that is late again and again, not one that was held once;
* **free RTP ports** — pairs left in the media engine's range;
* **CPU** — the process's CPU time over the last second, as a share of one core (the
  event loop runs on one).

Past any threshold (each a setting) the answer is a :class:`Refusal`: SIP answers
``503 Service Unavailable`` with ``Retry-After`` (RFC 3261 §21.5.4), the API ``503`` with
the error envelope (``service.overloaded``) and ``Retry-After``. The checks read counters
the process keeps anyway; one costs microseconds, so a flood of refused INVITEs stays cheap.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge

from sautikit.config import Settings
from sautikit.loopwatch import LoopWatch

__all__ = ["OverloadController", "OverloadLimits", "Refusal", "RefusalReason"]

RefusalReason = Literal["setups", "write_queue", "write_wait", "loop_lag", "rtp_ports", "cpu"]

CPU_SAMPLE_SECONDS = 1.0
LOG_EVERY_SECONDS = 10.0
LOOP_LAG_SAMPLES = 25
"""The loop lag is judged on its median over this many samples (half a second at 20 ms)."""

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Refusal:
    reason: RefusalReason
    detail: str
    retry_after: int

    @property
    def retry_after_header(self) -> tuple[str, str]:
        return ("Retry-After", str(self.retry_after))


@dataclass(frozen=True)
class OverloadLimits:
    """The thresholds; 0 switches a check off."""

    max_setups: int = 500
    max_write_queue: int = 2000
    max_write_wait: float = 1.0
    max_loop_lag: float = 0.1
    min_free_rtp_ports: int = 16
    max_cpu: float = 0.0
    retry_after: int = 5

    @classmethod
    def from_settings(cls, settings: Settings) -> OverloadLimits:
        return cls(
            max_setups=settings.overload_max_setups,
            max_write_queue=settings.overload_max_write_queue,
            max_write_wait=settings.overload_max_write_wait_ms / 1000,
            max_loop_lag=settings.overload_max_loop_lag_ms / 1000,
            min_free_rtp_ports=settings.overload_min_free_rtp_ports,
            max_cpu=settings.overload_max_cpu_percent / 100,
            retry_after=settings.overload_retry_after_seconds,
        )


class _CpuMeter:
    """The process's CPU time per wall-clock second, sampled at most once a second."""

    def __init__(self) -> None:
        self._wall = time.monotonic()
        self._cpu = time.process_time()
        self.share = 0.0

    def read(self) -> float:
        wall = time.monotonic()
        if wall - self._wall >= CPU_SAMPLE_SECONDS:
            cpu = time.process_time()
            self.share = (cpu - self._cpu) / (wall - self._wall)
            self._wall, self._cpu = wall, cpu
        return self.share


class OverloadController:
    """Decides whether the process takes one more call (see the module's doc).

    Each source is a callable so the controller depends on no part's internals:
    ``setups`` (calls in setup), ``write_queue`` (pending writes), ``write_wait`` (the
    oldest one's wait, seconds), ``free_rtp_ports``.
    """

    def __init__(
        self,
        limits: OverloadLimits,
        *,
        loop_watch: LoopWatch | None = None,
        setups: Callable[[], int] | None = None,
        write_queue: Callable[[], int] | None = None,
        write_wait: Callable[[], float] | None = None,
        free_rtp_ports: Callable[[], int] | None = None,
    ) -> None:
        self.limits = limits
        self.loop_watch = loop_watch
        self._setups = setups
        self._write_queue = write_queue
        self._write_wait = write_wait
        self._free_rtp_ports = free_rtp_ports
        self._cpu = _CpuMeter()
        self._refusals: Counter | None = None
        self._last_logged = -math.inf

    def register(self, registry: CollectorRegistry) -> None:
        self._refusals = Counter(
            "sautikit_overload_refusals_total",
            "New calls refused because the process was overloaded, by reason",
            ["reason"],
            registry=registry,
        )
        setups = Gauge(
            "sautikit_calls_in_setup", "Calls between INVITE and answer", registry=registry
        )
        setups.set_function(lambda: self._setups() if self._setups else 0)
        queue = Gauge(
            "sautikit_database_write_queue",
            "Writes handed to the database writer, not yet committed",
            registry=registry,
        )
        queue.set_function(lambda: self._write_queue() if self._write_queue else 0)

    def check(self) -> Refusal | None:
        """None when a new call may come in; else why not (logged at most every 10 s)."""
        refusal = self._first_refusal()
        if refusal is None:
            return None
        return self._recorded(refusal)

    def refuse(self, reason: RefusalReason, detail: str) -> Refusal:
        """The refusal for a limit found past its end outside :meth:`check` — a new call
        that found no free RTP port pair although the count said one was left (another
        process held it, or a call took it first) — counted and logged like the others."""
        return self._recorded(self._refuse(reason, detail))

    def _recorded(self, refusal: Refusal) -> Refusal:
        if self._refusals is not None:
            self._refusals.labels(refusal.reason).inc()
        now = time.monotonic()
        if now - self._last_logged >= LOG_EVERY_SECONDS:
            self._last_logged = now
            log.warning("overloaded, refusing new calls: %s", refusal.detail)
        return refusal

    def _first_refusal(self) -> Refusal | None:
        limits = self.limits
        if limits.max_setups and self._setups is not None:
            setups = self._setups()
            if setups >= limits.max_setups:
                return self._refuse("setups", f"{setups} calls in setup")
        if limits.max_write_queue and self._write_queue is not None:
            queued = self._write_queue()
            if queued >= limits.max_write_queue:
                return self._refuse("write_queue", f"{queued} database writes queued")
        if limits.max_write_wait and self._write_wait is not None:
            waited = self._write_wait()
            if waited >= limits.max_write_wait:
                return self._refuse("write_wait", f"a database write waited {waited:.1f} s")
        if limits.max_loop_lag and self.loop_watch is not None:
            lag = self.loop_watch.recent(0.5, samples=LOOP_LAG_SAMPLES)
            if lag >= limits.max_loop_lag:
                return self._refuse("loop_lag", f"event loop lag {lag * 1000:.0f} ms")
        if limits.min_free_rtp_ports and self._free_rtp_ports is not None:
            free = self._free_rtp_ports()
            if free < limits.min_free_rtp_ports:
                return self._refuse("rtp_ports", f"{free} RTP port pairs free")
        if limits.max_cpu:
            share = self._cpu.read()
            if share >= limits.max_cpu:
                return self._refuse("cpu", f"CPU at {share * 100:.0f} % of a core")
        return None

    def _refuse(self, reason: RefusalReason, detail: str) -> Refusal:
        return Refusal(reason, detail, self.limits.retry_after)
