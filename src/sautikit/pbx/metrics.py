"""The PBX's SIP counters for ``/metrics`` (Prometheus), read when scraped."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from sautikit.pbx.service import Pbx

__all__ = ["SipMetrics"]


class SipMetrics(Collector):
    """Failed digest answers, guessers refused and scanner requests dropped."""

    def __init__(self, pbx: Pbx) -> None:
        self._pbx = pbx

    def collect(self) -> Iterator[Metric]:
        agent = self._pbx.started_agent
        throttle = agent.auth.throttle if agent is not None else None
        yield CounterMetricFamily(
            "sautikit_sip_auth_failures",
            "Digest answers checked and wrong (a wrong password or an unknown user).",
            value=throttle.failures_total if throttle is not None else 0,
        )
        yield CounterMetricFamily(
            "sautikit_sip_auth_refusals",
            "Requests refused (403) because their address or username was guessing.",
            value=throttle.refusals_total if throttle is not None else 0,
        )
        yield CounterMetricFamily(
            "sautikit_sip_scanner_requests_dropped",
            "Requests from known SIP scanners dropped unanswered.",
            value=agent.scanner_requests_dropped if agent is not None else 0,
        )
