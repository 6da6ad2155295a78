"""Latency and capacity of the ``stream`` verb: call audio to an app's WebSocket and back.

A media engine runs as in ``sautikit serve`` (its own punctual clock); each "caller" is a
UDP socket sending 20 ms µ-law RTP packets to a call leg, and the app is a ``websockets``
server on loopback. One process, one event loop: Sautikit and the callers and the app
share the core, as they would not in production, so the figures are upper bounds.

* caller → app: from the RTP packet that carries a loud frame (after silence) leaving the
  caller's socket to the ``media`` message with that frame reaching the app.
* app → caller: from the app sending a loud ``media`` message to the first RTP packet
  with loud audio reaching the caller.
* capacity: ``--streams`` calls at once, each streaming both tracks, for ``--seconds``;
  the media tick's work per 20 ms, frames dropped, and each stream's frame count.

Usage:
    .venv/bin/python benchmarks/streams.py [--probes 50] [--streams 100] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import time
from typing import Any, Literal

import numpy as np
from websockets.asyncio.server import ServerConnection, serve

from sautikit.media import MediaChannel, MediaEngine
from sautikit.media.audio import FRAME_SAMPLES
from sautikit.media.g711 import ulaw_decode, ulaw_encode
from sautikit.media.rtp import RtpPacket
from sautikit.voice.stream import MediaStream, StreamOpener, StreamSpec

LOUD = (8000 * np.sin(np.arange(FRAME_SAMPLES) * 2 * np.pi * 440 / 8000)).astype(np.int16)
QUIET = np.zeros(FRAME_SAMPLES, np.int16)


class Leg:
    """What a stream needs of a call: its tap, its identity, whether it ended."""

    def __init__(self, channel: MediaChannel, index: int) -> None:
        self.channel = channel
        self.call_id = f"call-{index}"
        self.workspace_id = "bench"
        self.from_ = "+254700000001"
        self.to = "+254700000002"
        self.direction: Literal["inbound", "outbound"] = "inbound"
        self.ended = False

    def add_media_tap(self, tap: Any) -> None:
        self.channel.add_tap(tap)

    def remove_media_tap(self, tap: Any) -> None:
        self.channel.remove_tap(tap)


class Caller(asyncio.DatagramProtocol):
    """Sends RTP to a leg every 20 ms; notes when loud audio comes back."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.sequence = 0
        self.loud_back: list[float] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        packet = RtpPacket.parse(data)
        if np.abs(ulaw_decode(packet.payload)).max() > 4000:
            self.loud_back.append(time.perf_counter())

    def send(self, frame: np.ndarray, address: tuple[str, int]) -> float:
        self.sequence += 1
        packet = RtpPacket(
            0, self.sequence & 0xFFFF, self.sequence * FRAME_SAMPLES, 1234, ulaw_encode(frame)
        )
        assert self.transport is not None
        sent = time.perf_counter()
        self.transport.sendto(packet.encode(), address)
        return sent


async def open_leg(engine: MediaEngine, index: int) -> tuple[Leg, Caller]:
    channel = await engine.open_channel()
    loop = asyncio.get_running_loop()
    transport, caller = await loop.create_datagram_endpoint(Caller, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    channel.configure("127.0.0.1", port)
    return Leg(channel, index), caller


async def latency(probes: int) -> tuple[list[float], list[float]]:
    app_heard: list[float] = []
    send_loud = asyncio.Event()
    app_sent: list[float] = []

    async def app(connection: ServerConnection) -> None:
        sid = ""

        async def speaker() -> None:
            while True:
                await send_loud.wait()
                send_loud.clear()
                payload = base64.b64encode(ulaw_encode(LOUD)).decode()
                app_sent.append(time.perf_counter())
                await connection.send(
                    json.dumps({"event": "media", "streamSid": sid, "media": {"payload": payload}})
                )

        task = asyncio.create_task(speaker())
        try:
            async for message in connection:
                body = json.loads(message)
                if body["event"] == "start":
                    sid = body["streamSid"]
                if body["event"] == "media":
                    audio = ulaw_decode(base64.b64decode(body["media"]["payload"]))
                    if np.abs(audio).max() > 4000:
                        app_heard.append(time.perf_counter())
        finally:
            task.cancel()

    async with (
        serve(app, "127.0.0.1", 0) as server,
        MediaEngine(port_range=(41000, 41999)) as engine,
    ):
        port = next(iter(server.sockets)).getsockname()[1]
        leg, caller = await open_leg(engine, 0)
        stream = await StreamOpener(allow_private=True).open(
            StreamSpec(url=f"ws://127.0.0.1:{port}/", bidirectional=True),
            leg,  # type: ignore[arg-type]
        )
        running = asyncio.create_task(stream.run())
        address = leg.channel.local_address
        up, down = [], []
        for _ in range(probes):
            # caller → app: quiet frames, then one loud frame.
            for _ in range(10):
                caller.send(QUIET, address)
                await asyncio.sleep(0.02)
            heard_before = len(app_heard)
            sent = caller.send(LOUD, address)
            for _ in range(10):
                await asyncio.sleep(0.02)
                caller.send(QUIET, address)
            if len(app_heard) > heard_before:
                up.append(app_heard[heard_before] - sent)
            # app → caller
            back_before = len(caller.loud_back)
            send_loud.set()
            await asyncio.sleep(0.3)
            if len(caller.loud_back) > back_before and app_sent:
                down.append(caller.loud_back[back_before] - app_sent[-1])
        stream.stop()
        await running
    return up, down


_EXTERNAL_APP = """
import asyncio, sys
from websockets.asyncio.server import serve
async def app(connection):
    async for _ in connection:
        pass
async def main():
    async with serve(app, "127.0.0.1", 0) as server:
        print(next(iter(server.sockets)).getsockname()[1], flush=True)
        await asyncio.Future()
asyncio.run(main())
"""


async def capacity(streams: int, seconds: float, external: bool = False) -> dict[str, Any]:
    counts: list[int] = []
    if external:
        import sys

        child = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _EXTERNAL_APP, stdout=asyncio.subprocess.PIPE
        )
        assert child.stdout is not None
        port = int((await child.stdout.readline()).decode())
        try:
            return await _capacity_at(port, streams, seconds, counts)
        finally:
            child.kill()
            await child.wait()

    async def app(connection: ServerConnection) -> None:
        frames = 0
        async for message in connection:
            if '"media"' in message:
                frames += 1
        counts.append(frames)

    async with serve(app, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        return await _capacity_at(port, streams, seconds, counts)


async def _capacity_at(
    port: int, streams: int, seconds: float, counts: list[int]
) -> dict[str, Any]:
    async with MediaEngine(port_range=(42000, 43999)) as engine:
        legs = [await open_leg(engine, index) for index in range(streams)]
        opener = StreamOpener(allow_private=True)
        opened: list[MediaStream] = []
        for leg, _ in legs:
            opened.append(
                await opener.open(StreamSpec(url=f"ws://127.0.0.1:{port}/", track="both"), leg)
            )  # type: ignore[arg-type]
        runs = [asyncio.create_task(stream.run()) for stream in opened]
        started = time.perf_counter()
        before = engine.stats()
        while time.perf_counter() - started < seconds:
            for leg, caller in legs:
                caller.send(LOUD, leg.channel.local_address)
            await asyncio.sleep(0.02)
        stats = engine.stats()
        for stream in opened:
            stream.stop()
        await asyncio.gather(*runs)
        await asyncio.sleep(0.5)
    return {
        "streams": streams,
        "seconds": seconds,
        "tick_work_mean_ms": stats.tick_work_mean * 1000,
        "tick_work_p99_ms": stats.tick_work_p99 * 1000,
        "late_ticks": getattr(stats.clock, "late_ticks", None),
        "dropped_frames": sum(stream.dropped_frames for stream in opened),
        "frames_per_stream_median": (
            statistics.median(counts) / 2
            if counts
            else statistics.median(stream._frames_seen for stream in opened)
        ),
        "clock_before": str(before.clock),
        "clock_after": str(stats.clock),
    }


def describe(values: list[float]) -> str:
    if not values:
        return "no sample"
    ms = sorted(value * 1000 for value in values)
    return (
        f"median {statistics.median(ms):.1f} ms, p90 {ms[int(0.9 * (len(ms) - 1))]:.1f} ms, "
        f"max {ms[-1]:.1f} ms ({len(ms)} samples)"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=50)
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--external-app", action="store_true", help="run the app in another process"
    )
    parser.add_argument("--capacity-only", action="store_true")
    args = parser.parse_args()
    print(
        f"load average {' '.join(f'{load:.2f}' for load in os.getloadavg())}, {os.cpu_count()} CPUs"
    )
    if not args.capacity_only:
        up, down = await latency(args.probes)
        print(f"caller -> app: {describe(up)}")
        print(f"app -> caller: {describe(down)}")
    result = await capacity(args.streams, args.seconds, args.external_app)
    print(json.dumps(result, indent=2))
    print(f"load average {' '.join(f'{load:.2f}' for load in os.getloadavg())}")


if __name__ == "__main__":
    asyncio.run(main())
