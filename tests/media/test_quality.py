"""Tests for sautikit.media.quality and the figures behind it: RTCP loss, jitter and round
trip measured on real sessions over loopback, the E-model MOS, one-way audio, /metrics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from tests.media.media_rig import HOST, PORT_RANGE, Phone, until
from tests.media.test_relay import RawPeer

from sautikit.media import MediaChannel, MediaClock, MediaEngine
from sautikit.media.metrics import MediaCollector
from sautikit.media.quality import LegQuality, mos_estimate, r_factor
from sautikit.media.rtp import RtpPacket
from sautikit.media.session import RtpSession


def test_a_clean_short_route_scores_as_a_good_g711_call() -> None:
    assert 4.3 < mos_estimate(0.0, 0.0, None) <= 4.5
    assert 4.3 < mos_estimate(0.0, 2.0, 40.0) < mos_estimate(0.0, 0.0, None)


def test_loss_delay_and_jitter_each_cost_score() -> None:
    clean = mos_estimate(0, 0, 20)
    assert mos_estimate(1, 0, 20) < clean
    assert mos_estimate(5, 0, 20) < mos_estimate(1, 0, 20)
    assert mos_estimate(20, 0, 20) < 3.0
    assert mos_estimate(0, 30, 20) < clean
    # Past about 177 ms one way the delay impairment steepens (G.107).
    assert r_factor(0, 150) - r_factor(0, 200) > r_factor(0, 50) - r_factor(0, 100)
    assert mos_estimate(100, 500, 2000) == 1.0


def test_the_call_record_shape() -> None:
    quality = LegQuality(packets=498, lost=2, jitter_ms=1.234, mos_estimate=4.3912)
    assert quality.as_record() == {
        "packets": 498,
        "lost": 2,
        "jitter_ms": 1.23,
        "mos_estimate": 4.39,
        "one_way_audio": False,
    }
    assert quality.loss_percent == pytest.approx(0.4)
    assert LegQuality(0, 0, 0.0, 4.4, round_trip_ms=12.34).as_record()["round_trip_ms"] == 12.3


@pytest.fixture
async def engine() -> AsyncIterator[MediaEngine]:
    engine = MediaEngine(HOST, PORT_RANGE, one_way_audio_after=0.3)
    yield engine
    await engine.close()


async def test_loss_and_jitter_of_what_a_leg_sends_are_measured(engine: MediaEngine) -> None:
    channel = await engine.open_channel()
    peer = RawPeer()
    try:
        peer.connect(channel)
        # 100 packets of which 7 never leave; sent in bursts of 10 every 200 ms, so each
        # arrives up to 180 ms off its timestamp's schedule: plenty of jitter.
        dropped = {5, 17, 18, 40, 41, 42, 77}
        for burst in range(10):
            for k in range(burst * 10, burst * 10 + 10):
                if k not in dropped:
                    peer.send(RtpPacket(0, 100 + k, 160 * k, 0xFEED, bytes(160)))
            await asyncio.sleep(0.2)
        await until(lambda: channel.session.stats.packets_received == 93, "every packet")
        quality = channel.quality()
        assert (quality.packets, quality.lost) == (93, 7)
        assert quality.jitter_ms > 10
        assert quality.mos_estimate < mos_estimate(0, 0, None)
        assert not quality.one_way_audio
    finally:
        peer.close()
        await channel.close()


async def test_receiver_reports_give_the_round_trip() -> None:
    alice = await RtpSession.open(HOST, 0, rtcp_port=0)
    bob = await RtpSession.open(HOST, 0, rtcp_port=0)
    try:
        alice.set_remote(bob.local_address, bob.rtcp_local_address)
        bob.set_remote(alice.local_address, alice.rtcp_local_address)
        for _ in range(5):
            alice.send_frame(np.zeros(160, np.int16))
        await until(lambda: bob.stats.packets_received == 5, "audio")
        assert alice.send_rtcp_report()  # an SR: bob notes when it came
        await until(lambda: bob.stats.rtcp_received == 1, "SR")
        assert bob.send_rtcp_report()  # an RR with LSR and DLSR about alice's stream
        await until(lambda: alice.round_trip is not None, "RR")
        assert alice.round_trip is not None and 0 <= alice.round_trip < 1.0
    finally:
        alice.close()
        bob.close()


async def test_a_leg_that_sends_nothing_is_reported_as_one_way_audio(
    engine: MediaEngine,
) -> None:
    engine.start()
    clock = MediaClock()
    clock.start()
    silent_channel, talking_channel = await engine.open_channel(), await engine.open_channel()
    reported: list[tuple[MediaChannel, float]] = []
    silent_channel.on_one_way_audio = lambda channel, seconds: reported.append((channel, seconds))
    silent = await Phone.dial(silent_channel)  # configured, but its packets never leave
    talking = await Phone.dial(talking_channel)
    clock.subscribe(talking)
    try:
        await until(lambda: bool(reported), "one-way audio reported")
        ((channel, seconds),) = reported
        assert channel is silent_channel and seconds >= 0.3
        assert silent_channel.one_way_audio and silent_channel.quality().one_way_audio
        assert not talking_channel.one_way_audio
        assert talking_channel.quality().packets > 0
        assert engine.totals.one_way_audio_events == 1
    finally:
        await clock.close()
        silent.close()
        talking.close()


async def test_ended_legs_show_on_metrics(engine: MediaEngine) -> None:
    registry = CollectorRegistry()
    registry.register(MediaCollector(engine))
    channel = await engine.open_channel()
    peer = RawPeer()
    try:
        peer.connect(channel)
        for k in range(20):
            if k != 9:
                peer.send(RtpPacket(0, k, 160 * k, 0xABC, bytes(160)))
        await until(lambda: channel.session.stats.packets_received == 19, "packets")
        assert "sautikit_media_channels 1.0" in generate_latest(registry).decode()
        await channel.close()
        text = generate_latest(registry).decode()
    finally:
        peer.close()
    assert "sautikit_media_channels 0.0" in text
    assert "sautikit_media_legs_ended_total 1.0" in text
    assert "sautikit_media_packets_received_total 19.0" in text
    assert "sautikit_media_packets_lost_total 1.0" in text
    assert 'sautikit_media_mos_estimate_bucket{le="+Inf"} 1.0' in text
