"""The relay path of sautikit.media.bridge: packets forwarded as they come, on byte fixtures.

A raw UDP socket plays each far-end device, so the test sees every byte the bridge sends:
payloads must come out exactly as they went in, renumbered into one continuous stream per
leg. The switch to the clock and back (a prompt over the bridge) is driven by hand ticks,
so "no gap" is counted in ticks (20 ms of stream each), not measured on a loaded machine.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from tests.media.media_rig import (
    HOST,
    Rig,
    amplitude_at,
    open_rig,
    prompt,
    read_wav_channels,
    until,
    voice,
)

from sautikit.media import Bridge, MediaChannel, PlayEnd
from sautikit.media.dtmf import DtmfSender
from sautikit.media.g711 import ulaw_decode, ulaw_encode
from sautikit.media.rtp import RtpPacket


class RawPeer:
    """A far-end device as a bare UDP socket: sends hand-made RTP, keeps all it receives."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.sock.setblocking(False)
        self.received: list[RtpPacket] = []
        self.target: tuple[str, int] | None = None
        asyncio.get_running_loop().add_reader(self.sock.fileno(), self._read)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.sock.getsockname()[:2]
        return host, port

    def connect(self, channel: MediaChannel, codec: str = "PCMU", dtmf: int = 101) -> None:
        """As after SDP: the channel sends to us, we send to the channel."""
        host, port = self.address
        channel.configure(host, port, codec, None, dtmf)
        self.target = channel.local_address

    def send(self, packet: RtpPacket) -> None:
        assert self.target is not None
        self.sock.sendto(packet.encode(), self.target)

    def _read(self) -> None:
        while True:
            try:
                data = self.sock.recv(2048)
            except BlockingIOError:
                return
            self.received.append(RtpPacket.parse(data))

    async def wait_for(self, count: int) -> list[RtpPacket]:
        await until(lambda: len(self.received) >= count, f"{count} packets")
        return self.received[:count]

    def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self.sock.fileno())
        self.sock.close()


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    async with open_rig() as rig:
        yield rig


@pytest.fixture
async def peers() -> AsyncIterator[tuple[RawPeer, RawPeer]]:
    alice, bob = RawPeer(), RawPeer()
    yield alice, bob
    alice.close()
    bob.close()


def payloads(count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(160) for _ in range(count)]


async def test_relayed_g711_is_bit_exact_in_one_continuous_stream(
    rig: Rig, peers: tuple[RawPeer, RawPeer]
) -> None:
    alice, bob = peers
    a, b = await rig.engine.open_channel(), await rig.engine.open_channel()
    alice.connect(a)
    bob.connect(b)
    bridge = Bridge(a, b)
    assert bridge.relaying
    sent = payloads(30, seed=1)
    # One source across the sequence and timestamp wrap, then a new source (a re-INVITE
    # to another device, a transfer) with unrelated numbering.
    for k in range(15):
        seq, ts = (65530 + k) % 65536, (2**32 - 800 + 160 * k) % 2**32
        alice.send(RtpPacket(0, seq, ts, 0xA11CE, sent[k], marker=k == 0))
    for k in range(15, 30):
        alice.send(RtpPacket(0, 1000 + k, 777_000 + 160 * k, 0xB0B0B0, sent[k]))
    heard = await bob.wait_for(30)

    assert [packet.payload for packet in heard] == sent
    assert {packet.ssrc for packet in heard} == {b.session.ssrc}
    assert {packet.payload_type for packet in heard} == {0}
    assert [(p.sequence - heard[0].sequence) % 65536 for p in heard] == list(range(30))
    # Timestamps follow the source's within a source; the marker flags where it changed.
    steps = [(q.timestamp - p.timestamp) % 2**32 for p, q in itertools.pairwise(heard)]
    assert steps[:14] == [160] * 14 and steps[15:] == [160] * 14
    assert [k for k, packet in enumerate(heard) if packet.marker] == [0, 15]
    assert rig.engine.stats().relayed_channels == 2
    assert b.session.stats.packets_relayed == 30


async def test_reordered_packets_keep_their_order_and_the_codec_its_payload_type(
    rig: Rig, peers: tuple[RawPeer, RawPeer]
) -> None:
    alice, bob = peers
    a, b = await rig.engine.open_channel("PCMA"), await rig.engine.open_channel("PCMA")
    alice.connect(a, "PCMA")
    bob.connect(b, "PCMA")
    Bridge(a, b)
    sent = payloads(6, seed=2)
    for k in (0, 1, 3, 2, 5, 4):  # the network swapped two pairs
        alice.send(RtpPacket(8, 40 + k, 9000 + 160 * k, 0xC0FFEE, sent[k]))
    heard = await bob.wait_for(6)
    base = heard[0].sequence
    assert [((p.sequence - base) % 65536, p.payload) for p in heard] == [
        (k, sent[k]) for k in (0, 1, 3, 2, 5, 4)
    ]
    assert {p.payload_type for p in heard} == {8}


async def test_a_dtmf_event_crosses_the_bridge_intact(
    rig: Rig, peers: tuple[RawPeer, RawPeer]
) -> None:
    alice, bob = peers
    a, b = await rig.engine.open_channel(), await rig.engine.open_channel()
    alice.connect(a, dtmf=101)
    bob.connect(b, dtmf=96)  # the callee numbered telephone-event differently
    bridge = Bridge(a, b)
    audio = payloads(3, seed=3)
    for k in range(3):
        alice.send(RtpPacket(0, 10 + k, 160 * k, 0x5EED, audio[k]))
    event = DtmfSender().packets("7", 100)
    for k, packet in enumerate(event):
        alice.send(RtpPacket(101, 13 + k, 480, 0x5EED, packet.payload, packet.marker))
    heard = await bob.wait_for(3 + len(event))

    events = heard[3:]
    assert [p.payload for p in events] == [packet.payload for packet in event]
    assert {p.payload_type for p in events} == {96}
    assert [p.marker for p in events] == [packet.marker for packet in event]
    # One event keeps one timestamp, 480 samples after the first audio packet's.
    assert {(p.timestamp - heard[0].timestamp) % 2**32 for p in events} == {480}
    # The caller's own call logic sees the key at once (hangupOnStar), and it was relayed
    # once: as its packets, not a second time as regenerated events.
    assert await asyncio.wait_for(a.next_digit(), 1) == "7"
    assert bridge.relaying and not b.session.sending_dtmf


async def test_a_prompt_over_the_bridge_switches_to_the_clock_and_back_without_a_gap(
    rig: Rig,
) -> None:
    a, alice = await rig.call(voice(440))
    b, bob = await rig.call(voice(1100))
    bridge = Bridge(a, b)
    per_tick: list[tuple[int, int]] = []
    paths: list[bool] = []

    async def tick(count: int) -> None:
        for _ in range(count):
            before = (alice.session.stats.packets_received, bob.session.stats.packets_received)
            await rig.run(1)
            per_tick.append(
                (
                    alice.session.stats.packets_received - before[0],
                    bob.session.stats.packets_received - before[1],
                )
            )
            paths.append(bridge.relaying)

    await tick(20)
    playing = asyncio.ensure_future(a.play(prompt(700, 0.4)))
    await tick(40)
    assert playing.done() and playing.result().end is PlayEnd.FINISHED
    await tick(20)

    # Relay, then the clock for the prompt's 20 ticks, then relay again.
    assert paths[:20] == [True] * 20 and paths[-10:] == [True] * 10
    assert not all(paths[20:40])
    # Both listeners got a packet in every 20 ms tick: no gap of 40 ms, ever, either way.
    assert all(to_alice >= 1 and to_bob >= 1 for to_alice, to_bob in per_tick)
    # And one gapless stream each: a single source, nothing lost, numbered on through
    # both switches.
    for phone in (alice, bob):
        (source,) = phone.session.sources.values()
        assert source.lost == 0
    assert amplitude_at(alice.heard_since(25), 700) > 2000  # the prompt was heard


async def test_recording_a_relayed_call_aligns_the_channels_and_reorders_packets(
    rig: Rig, peers: tuple[RawPeer, RawPeer], tmp_path: Path
) -> None:
    alice, bob = peers
    a, b = await rig.engine.open_channel(), await rig.engine.open_channel()
    alice.connect(a)
    bob.connect(b)
    bridge = Bridge(a, b, recording_path=tmp_path / "relayed.wav")
    assert bridge.relaying
    # Alice talks from the first tick, a 440 Hz tone with two pairs of packets swapped
    # in transit; Bob is silent for 25 ticks, then says 1100 Hz, in order.
    rng = np.random.default_rng(4)
    alice_audio = [ulaw_encode(voice(440, 0.02) + rng.integers(-50, 50, 160)) for _ in range(75)]
    silent = ulaw_encode(np.zeros(160, np.int16))
    order = list(range(75))
    order[10], order[11], order[40], order[41] = 11, 10, 41, 40
    bob_audio = [silent] * 25 + [ulaw_encode(voice(1100, 0.02))] * 50
    for k in range(75):
        rig.engine.on_tick(rig.engine.tick + 1)
        sent = order[k]
        alice.send(RtpPacket(0, 500 + sent, 80_000 + 160 * sent, 0xA, alice_audio[sent]))
        bob.send(RtpPacket(0, 9_000 + k, 1_000_000 + 160 * k, 0xB, bob_audio[k]))
        await until(lambda k=k: b.session.stats.packets_relayed > k, "relayed")
    rig.engine.on_tick(rig.engine.tick + 1)
    assert bridge.unbridge() == pytest.approx(76 * 0.02)
    assert bridge.recording is not None
    await bridge.recording.finished()

    rate, (left, right) = read_wav_channels(tmp_path / "relayed.wav")
    assert rate == 8000 and len(left) == len(right) == 76 * 160
    # Alice's channel is her packets in sequence order, bit for bit, from where her first
    # packet arrived (its tick, give or take the sub-tick arrival time).
    start = int(np.flatnonzero(left)[0])
    assert start < 2 * 160
    expected = np.concatenate([ulaw_decode(payload) for payload in alice_audio])
    assert np.array_equal(left[start : start + len(expected)], expected[: len(left) - start])
    # Bob's tone starts 25 ticks in: where it does relative to Alice is within 20 ms.
    bob_start = int(np.flatnonzero(np.abs(right) > 1000)[0])
    assert abs((bob_start - start) - 25 * 160) <= 160
    assert amplitude_at(right[bob_start:], 1100) > 5000


async def test_different_codecs_mix_on_the_clock(rig: Rig) -> None:
    a, alice = await rig.call(voice(440))
    b, bob = await rig.call(voice(1100))
    host, port = bob.session.local_address
    b.configure(host, port, "PCMA")
    bob.session.codec = b.session.codec
    bob.session.payload_type = 8
    bridge = Bridge(a, b)
    assert not bridge.relaying
    await rig.run(30)
    assert amplitude_at(alice.heard_since(10), 1100) > 5000
    assert amplitude_at(bob.heard_since(10), 440) > 5000
    # Agreeing on PCMU later (a re-INVITE) moves the bridge onto the relay.
    b.configure(host, port, "PCMU")
    bob.session.codec = a.session.codec
    bob.session.payload_type = 0
    assert bridge.relaying


async def test_rtcp_is_terminated_per_leg_with_the_relayed_stream_s_figures(rig: Rig) -> None:
    a, alice = await rig.call(voice(440))
    b, bob = await rig.call(voice(1100))
    bridge = Bridge(a, b)
    # As SDP would say (a=rtcp): the phones' RTCP ports are not the RTP port + 1.
    for channel, phone in ((a, alice), (b, bob)):
        channel.session.set_remote(phone.session.local_address, phone.session.rtcp_local_address)
    await rig.run(20)
    assert bridge.relaying
    # Bob gets an SR about the stream he hears (b's SSRC, the relayed packets) whose
    # report block is about what Bob sends, measured by b: nothing lost.
    assert b.session.send_rtcp_report()
    await until(lambda: bob.session.remote_report is not None, "b's report")
    report = bob.session.remote_report
    assert report is not None and report.ssrc == bob.session.ssrc
    assert report.cumulative_lost == 0
    assert set(bob.session.sources) == {b.session.ssrc}
    # Bob's receiver report closes the loop: b knows the round trip to Bob.
    assert bob.session.send_rtcp_report()
    await until(lambda: b.session.round_trip is not None, "Bob's report")
    assert b.quality().round_trip_ms is not None
    assert b.quality().packets == bob.session.stats.packets_sent
