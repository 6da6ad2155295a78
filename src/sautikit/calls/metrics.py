"""The calls and media a process holds, as Prometheus gauges read at scrape time.

What an operator watches to see that nothing leaks: live calls, SIP legs and RTP ports in
use (with ``sautikit_media_channels`` from :mod:`sautikit.media.metrics`) should all fall
back to zero when the traffic stops; the reaper's counters say how often something had to
be taken back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from sautikit.calls.reaper import Reaped
from sautikit.pbx import Pbx

__all__ = ["CallMetrics"]


class CallMetrics(Collector):
    def __init__(
        self, pbx: Pbx, live_calls: Callable[[], int], reaped: Callable[[], Reaped]
    ) -> None:
        self._pbx = pbx
        self._live_calls = live_calls
        self._reaped = reaped

    def collect(self) -> Iterator[Metric]:
        stats = self._pbx.media.stats()
        yield GaugeMetricFamily(
            "sautikit_live_calls", "Calls this process runs", value=self._live_calls()
        )
        yield GaugeMetricFamily(
            "sautikit_sip_legs", "SIP calls not ended yet", value=len(self._pbx.legs)
        )
        yield GaugeMetricFamily(
            "sautikit_rtp_ports_in_use", "RTP/RTCP port pairs taken", value=stats.ports_in_use
        )
        yield GaugeMetricFamily(
            "sautikit_rtp_ports_capacity",
            "RTP/RTCP port pairs the range holds",
            value=self._pbx.media.ports.capacity,
        )
        reaped = self._reaped()
        counter = CounterMetricFamily(
            "sautikit_reaped", "Orphans the reaper ended, by kind", labels=["kind"]
        )
        counter.add_metric(["channel"], reaped.channels)
        counter.add_metric(["sip_leg"], reaped.legs)
        counter.add_metric(["call_row"], reaped.rows)
        yield counter
