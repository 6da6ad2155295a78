"""The process's operational counters and their Prometheus export (issue: metrics an
operator wires up in minutes).

Code on the hot paths (SIP transactions, call set-up, event delivery, uploads,
transcription) adds to plain integers and bucket counts in :data:`COUNTERS`; nothing here
takes a lock or formats text until Prometheus scrapes. :class:`OperationsCollector` turns
them into metric families then, together with what was last read from the
database (:class:`~sautikit.cluster.sampler.Sampler`: outbox backlog and age,
transcription queue), which is shared by every node, so each node reports the same
figures for it. This module imports nothing heavier than prometheus_client, so the SIP
stack can count into it.

The counters are per process (one node is one process): a test that builds several apps
in one interpreter compares before and after.
"""

from __future__ import annotations

import bisect
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from sautikit.calls.status import CallStatus

if TYPE_CHECKING:
    from sautikit.cluster.sampler import Sampler

__all__ = [
    "COUNTERS",
    "Buckets",
    "OperationsCollector",
    "OperationsCounters",
    "response_class",
]


class Buckets:
    """A histogram's cumulative-ready counts: ``observe`` is a bisect and two adds."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is above every bound
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value
        self.count += 1

    def family(self, name: str, documentation: str) -> HistogramMetricFamily:
        cumulative: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip(self.bounds, self.counts, strict=False):
            running += count
            cumulative.append((repr(bound), running))
        cumulative.append(("+Inf", self.count))
        return HistogramMetricFamily(name, documentation, buckets=cumulative, sum_value=self.total)


SETUP_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0)
"""Seconds from a call's first SIP message to its answer: ringing dominates the tail."""
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
RTF_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0)
"""Real-time factor: processing seconds per second of audio (below 1 keeps up)."""


def response_class(status: int) -> str:
    """``1xx`` … ``6xx``: the label SIP responses are counted under."""
    return f"{status // 100}xx"


@dataclass
class OperationsCounters:
    """Everything counted as it happens; read only by :class:`OperationsCollector`."""

    sip_transactions: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(role client|server, method) → transactions started."""
    sip_retransmissions: Counter[str] = field(default_factory=Counter)
    """kind → retransmissions: ``request_sent`` (timers A/E), ``response_sent`` (timer G
    or a repeated answer to a retransmitted request), ``request_received``."""
    sip_responses: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(direction sent|received, class) → responses (retransmissions included)."""
    sip_timeouts: Counter[str] = field(default_factory=Counter)
    """role → transactions ended by a timeout (B/F for clients, H for servers)."""
    call_setup: Buckets = field(default_factory=lambda: Buckets(SETUP_BUCKETS))
    call_ends: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(direction, cause) → calls ended here."""
    outbox_attempt_latency: Buckets = field(default_factory=lambda: Buckets(LATENCY_BUCKETS))
    outbox_delivery_latency: Buckets = field(default_factory=lambda: Buckets(SETUP_BUCKETS))
    """Seconds from an event's occurrence to the 2xx that delivered it."""
    outbox_failures: Counter[str] = field(default_factory=Counter)
    """reason (timeout, http_4xx, http_5xx, refused, transport) → failed attempts."""
    recording_uploads: Buckets = field(default_factory=lambda: Buckets(LATENCY_BUCKETS))
    recording_upload_failures: int = 0
    transcription_rtf: Buckets = field(default_factory=lambda: Buckets(RTF_BUCKETS))
    transcriptions: Counter[str] = field(default_factory=Counter)
    """outcome (completed|failed) → transcription jobs finished here."""
    nodes_recovered: int = 0
    """Dead nodes whose calls this process closed (cluster leases)."""
    calls_recovered: int = 0

    def outbox_attempt(
        self, latency_seconds: float, status_code: int | None, error: str | None
    ) -> None:
        self.outbox_attempt_latency.observe(latency_seconds)
        if error is None:
            return
        if status_code is not None:
            reason = f"http_{response_class(status_code)}"
        elif error.startswith("no answer"):
            reason = "timeout"
        elif error.startswith("refused"):
            reason = "refused"
        else:
            reason = "transport"
        self.outbox_failures[reason] += 1


COUNTERS = OperationsCounters()
"""This process's counters."""


def spool_depth(spool: Path) -> int:
    """Recordings waiting in this node's spool (a WAV per recording not yet stored)."""
    try:
        with os.scandir(spool) as entries:
            return sum(1 for entry in entries if entry.name.endswith(".wav"))
    except FileNotFoundError:
        return 0


class OperationsCollector(Collector):
    """Exports :data:`COUNTERS`, the sampler's figures and the live calls by label."""

    def __init__(
        self,
        *,
        counters: OperationsCounters = COUNTERS,
        sampler: Sampler | None = None,
        live_calls: Callable[[], list[tuple[str, str]]] | None = None,
        spool: Path | None = None,
        node_id: str = "",
    ) -> None:
        self.counters = counters
        self.sampler = sampler
        self.live_calls = live_calls
        self.spool = spool
        self.node_id = node_id

    def collect(self) -> Iterator[Metric]:
        counters = self.counters
        info = GaugeMetricFamily("sautikit_node_info", "This node's id", labels=["node_id"])
        info.add_metric([self.node_id], 1)
        yield info
        yield from self._calls()
        yield from self._sip()
        yield from self._outbox()
        yield counters.recording_uploads.family(
            "sautikit_recording_upload_seconds", "Seconds to put a finished recording in storage"
        )
        yield CounterMetricFamily(
            "sautikit_recording_upload_failures",
            "Recordings the store refused (their spool is kept and retried)",
            value=counters.recording_upload_failures,
        )
        if self.spool is not None:
            yield GaugeMetricFamily(
                "sautikit_recording_spool_depth",
                "Recordings in this node's spool, not yet stored",
                value=spool_depth(self.spool),
            )
        yield counters.transcription_rtf.family(
            "sautikit_transcription_real_time_factor",
            "Seconds of transcription work per second of audio",
        )
        done = CounterMetricFamily(
            "sautikit_transcriptions", "Transcription jobs finished here", labels=["outcome"]
        )
        for outcome in ("completed", "failed"):
            done.add_metric([outcome], counters.transcriptions[outcome])
        yield done
        if self.sampler is not None:
            yield GaugeMetricFamily(
                "sautikit_transcription_queue",
                "Transcriptions queued or running (whole platform)",
                value=self.sampler.last.transcription_queue,
            )
        yield CounterMetricFamily(
            "sautikit_cluster_nodes_recovered",
            "Dead nodes whose lease ran out and whose calls this node closed",
            value=counters.nodes_recovered,
        )
        yield CounterMetricFamily(
            "sautikit_cluster_calls_recovered",
            "Calls of dead nodes this node closed",
            value=counters.calls_recovered,
        )

    def _calls(self) -> Iterator[Metric]:
        active = GaugeMetricFamily(
            "sautikit_calls_active",
            "Calls running on this node, by direction and status",
            labels=["direction", "status"],
        )
        seen: Counter[tuple[str, str]] = Counter(self.live_calls() if self.live_calls else [])
        for direction in ("inbound", "outbound"):
            for live in (CallStatus.RINGING, CallStatus.ANSWERED):
                seen.setdefault((direction, live), 0)
        for (direction, status), count in sorted(seen.items()):
            active.add_metric([direction, status], count)
        yield active
        yield self.counters.call_setup.family(
            "sautikit_call_setup_seconds", "Seconds from a call's start to its answer"
        )
        ended = CounterMetricFamily(
            "sautikit_calls_ended",
            "Calls ended on this node, by direction and cause (failures: every cause but "
            "normal_clearing and the hang-ups)",
            labels=["direction", "cause"],
        )
        for (direction, cause), count in sorted(self.counters.call_ends.items()):
            ended.add_metric([direction, cause], count)
        yield ended

    def _sip(self) -> Iterator[Metric]:
        counters = self.counters
        transactions = CounterMetricFamily(
            "sautikit_sip_transactions",
            "SIP transactions started, by role and method",
            labels=["role", "method"],
        )
        for (role, method), count in sorted(counters.sip_transactions.items()):
            transactions.add_metric([role, method], count)
        yield transactions
        retransmissions = CounterMetricFamily(
            "sautikit_sip_retransmissions",
            "SIP retransmissions sent or received",
            labels=["kind"],
        )
        for kind in ("request_sent", "response_sent", "request_received"):
            retransmissions.add_metric([kind], counters.sip_retransmissions[kind])
        yield retransmissions
        responses = CounterMetricFamily(
            "sautikit_sip_responses",
            "SIP responses sent or received, by class",
            labels=["direction", "class"],
        )
        for (direction, klass), count in sorted(counters.sip_responses.items()):
            responses.add_metric([direction, klass], count)
        yield responses
        timeouts = CounterMetricFamily(
            "sautikit_sip_transaction_timeouts",
            "SIP transactions ended by a timer (no answer, or no ACK)",
            labels=["role"],
        )
        for role in ("client", "server"):
            timeouts.add_metric([role], counters.sip_timeouts[role])
        yield timeouts

    def _outbox(self) -> Iterator[Metric]:
        counters = self.counters
        if self.sampler is not None:
            last = self.sampler.last
            yield GaugeMetricFamily(
                "sautikit_outbox_backlog",
                "Events and deliveries not delivered yet (whole platform)",
                value=last.outbox_backlog,
            )
            yield GaugeMetricFamily(
                "sautikit_outbox_oldest_age_seconds",
                "Age of the oldest event not delivered yet (whole platform)",
                value=last.outbox_oldest_age,
            )
            yield GaugeMetricFamily(
                "sautikit_outbox_dead_letters",
                "Deliveries that used every attempt (whole platform)",
                value=last.outbox_dead_letters,
            )
        yield counters.outbox_attempt_latency.family(
            "sautikit_outbox_attempt_seconds", "Seconds a delivery attempt's HTTP request took"
        )
        yield counters.outbox_delivery_latency.family(
            "sautikit_outbox_delivery_seconds",
            "Seconds from an event to its successful delivery",
        )
        failures = CounterMetricFamily(
            "sautikit_outbox_failures", "Failed delivery attempts, by reason", labels=["reason"]
        )
        for reason in ("timeout", "http_4xx", "http_5xx", "refused", "transport"):
            failures.add_metric([reason], counters.outbox_failures[reason])
        yield failures
