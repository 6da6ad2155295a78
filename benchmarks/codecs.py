"""CPU per call of an Opus or G.722 leg against a G.711 one, on Sautikit's media engine.

One process: a MediaEngine on its real 20 ms clock, and for every leg a far end that is a
bare UDP socket replaying pre-encoded packets of a 1 kHz tone (so the far ends cost the
same whatever the codec, and decode nothing: what they are sent is left to the kernel).
Two shapes are measured, each for ``--seconds`` after a settling second:

* ``leg``: N legs on the clock, each receiving its far end's stream (decode, jitter buffer,
  conversion to 8 kHz for a wideband leg) and sending a looping prompt (conversion up,
  encode). The figure is what one such leg costs.
* ``call``: N calls, each a leg in the codec under test bridged to a G.711 leg (the trunk's).
  Same codec on both sides (PCMU) relays packets; a wideband leg makes the bridge mix on the
  clock and transcode.

CPU is this process's user + system time (``time.process_time``, every thread) over wall
time; the machine's load average is printed beside it (the machine may be shared).

    .venv/bin/python benchmarks/codecs.py --legs 20 50 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import struct
import time

import numpy as np

from sautikit.media import Bridge, MediaEngine, tone
from sautikit.media.channel import MediaChannel
from sautikit.media.codecs import PayloadFormat, format_by_name

HOST = "127.0.0.1"
PORTS = (23000, 23999)  # this benchmark's own range
_HEADER = struct.Struct("!BBHII")


class FarEnd:
    """A far end replaying ``packets`` to one leg, 50 a second; it never reads."""

    def __init__(self, codec: PayloadFormat, packets: list[bytes], target: tuple[str, int]):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.bind((HOST, 0))
        self.sock.setblocking(False)
        self.codec = codec
        self.packets = packets
        self.target = target
        self.sequence = 0
        self.step = codec.rtp_duration(codec.frame_samples)
        self.ssrc = int.from_bytes(os.urandom(4), "big")

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.sock.getsockname()[:2]
        return host, port

    def send(self) -> None:
        n = self.sequence
        payload = self.packets[n % len(self.packets)]
        header = _HEADER.pack(0x80, self.codec.payload_type, n & 0xFFFF, n * self.step, self.ssrc)
        with contextlib.suppress(OSError):  # a full buffer: that packet is lost
            self.sock.sendto(header + payload, self.target)
        self.sequence += 1


def encoded_tone(codec: PayloadFormat) -> list[bytes]:
    t = np.arange(codec.sample_rate) / codec.sample_rate  # one second, looped
    signal = (8000 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)
    encoder = codec.new_encoder()
    size = codec.frame_samples
    return [encoder.encode(signal[i : i + size]) for i in range(0, len(signal), size)]


async def connect(
    engine: MediaEngine, codec: PayloadFormat, far_ends: list[FarEnd]
) -> MediaChannel:
    channel = await engine.open_channel()
    far = FarEnd(codec, encoded_tone(codec), channel.local_address)
    channel.configure(*far.address, codec.name, codec.payload_type, None)
    far_ends.append(far)
    return channel


async def measure(shape: str, codec_name: str, count: int, seconds: float) -> tuple[float, float]:
    codec = format_by_name(codec_name)
    pcmu = format_by_name("PCMU")
    engine = MediaEngine(HOST, PORTS)
    engine.start()
    far_ends: list[FarEnd] = []
    tasks = []
    bridges = []
    try:
        for _ in range(count):
            leg = await connect(engine, codec, far_ends)
            if shape == "leg":
                tasks.append(asyncio.create_task(leg.play(tone(440, 1.0), loop=1_000_000)))
            else:
                trunk = await connect(engine, pcmu, far_ends)
                bridges.append(Bridge(leg, trunk))

        async def replay() -> None:
            next_at = time.monotonic()
            while True:
                for far in far_ends:
                    far.send()
                next_at += 0.02
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))

        tasks.append(asyncio.create_task(replay()))
        await asyncio.sleep(1.0)  # jitter buffers fill, the path settles
        cpu, wall = time.process_time(), time.monotonic()
        await asyncio.sleep(seconds)
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
        relaying = sum(bridge.relaying for bridge in bridges)
        if shape == "call":
            assert relaying == (count if codec is pcmu else 0), relaying
        return cpu / wall, os.getloadavg()[0]
    finally:
        for task in tasks:
            task.cancel()
        for bridge in bridges:
            bridge.unbridge()
        await engine.close()
        for far in far_ends:
            far.sock.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--legs", type=int, nargs="+", default=[20, 50])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--codecs", nargs="+", default=["PCMU", "G722", "opus"])
    parser.add_argument("--shapes", nargs="+", default=["leg", "call"])
    args = parser.parse_args()
    print(f"cpus {os.cpu_count()}, load average at start {os.getloadavg()}")
    print("shape  codec  N   CPU(core)  per-unit(ms CPU/s)  load1")
    for shape in args.shapes:
        for count in args.legs:
            for codec in args.codecs:
                used, load = await measure(shape, codec, count, args.seconds)
                print(
                    f"{shape:5}  {codec:5} {count:3}   {100 * used:6.1f} %   "
                    f"{1000 * used / count:8.2f}          {load:.2f}",
                    flush=True,
                )


if __name__ == "__main__":
    asyncio.run(main())
