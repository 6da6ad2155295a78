"""The media engine on /metrics: what it carries, how punctual its clock is, call quality.

:class:`MediaCollector` reads the engine's own counters when Prometheus scrapes, so the
media path keeps no metric objects of its own and does no work per packet for them.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from sautikit.media.engine import JITTER_BUCKETS, MOS_BUCKETS, MediaEngine

__all__ = ["MediaCollector"]


class MediaCollector(Collector):
    """Register on a CollectorRegistry: ``registry.register(MediaCollector(engine))``."""

    def __init__(self, engine: MediaEngine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        stats = self.engine.stats()
        totals = self.engine.totals
        yield GaugeMetricFamily(
            "sautikit_media_channels", "Call legs with media open.", stats.channels
        )
        yield GaugeMetricFamily(
            "sautikit_media_relayed_channels",
            "Call legs whose packets a bridge relays as they arrive (off the media clock).",
            stats.relayed_channels,
        )
        yield GaugeMetricFamily(
            "sautikit_media_mixers", "Bridges and conferences mixing on the clock.", stats.mixers
        )
        yield GaugeMetricFamily(
            "sautikit_media_tick_work_p99_seconds",
            "99th percentile of the media tick's work over the last minute.",
            stats.tick_work_p99,
        )
        yield GaugeMetricFamily(
            "sautikit_media_clock_lateness_p99_seconds",
            "99th percentile of how late the media clock woke over its recent ticks.",
            stats.clock.lateness_p99,
        )
        yield CounterMetricFamily(
            "sautikit_media_clock_ticks", "Ticks the media clock dispatched.", stats.clock.ticks
        )
        yield CounterMetricFamily(
            "sautikit_media_clock_late_ticks",
            "Ticks dispatched later than the clock's late threshold after their deadline.",
            stats.clock.late_ticks,
        )
        yield CounterMetricFamily(
            "sautikit_media_clock_skipped_ticks",
            "Ticks the media clock dropped after falling behind.",
            stats.clock.skipped_ticks,
        )
        yield CounterMetricFamily(
            "sautikit_media_legs_ended",
            "Call legs that carried audio and ended.",
            totals.legs,
        )
        yield CounterMetricFamily(
            "sautikit_media_packets_received",
            "RTP packets received on legs that ended.",
            totals.packets,
        )
        yield CounterMetricFamily(
            "sautikit_media_packets_lost",
            "RTP packets lost (by sequence number) on legs that ended.",
            totals.lost,
        )
        yield CounterMetricFamily(
            "sautikit_media_one_way_audio",
            "Times a leg sent no RTP for the one-way audio time while audio was expected.",
            totals.one_way_audio_events,
        )
        pairs = zip(MOS_BUCKETS, totals.mos_buckets, strict=True)
        buckets = [(str(bound), count) for bound, count in pairs]
        buckets.append(("+Inf", totals.legs))
        yield HistogramMetricFamily(
            "sautikit_media_mos_estimate",
            "E-model MOS of the legs that ended (1 to 4.5).",
            buckets=buckets,
            sum_value=totals.mos_sum,
        )
        pairs = zip(JITTER_BUCKETS, totals.jitter_buckets, strict=True)
        jitter = [(str(bound), count) for bound, count in pairs]
        jitter.append(("+Inf", totals.legs))
        yield HistogramMetricFamily(
            "sautikit_media_jitter_milliseconds",
            "Mean interarrival jitter of the legs that ended.",
            buckets=jitter,
            sum_value=totals.jitter_ms_sum,
        )
