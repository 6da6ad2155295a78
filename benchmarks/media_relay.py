"""The media plane at the limit: relayed recorded calls per core, beside rtpengine.

One command runs every trial and prints one table:

    .venv/bin/python benchmarks/media_relay.py                       # 100 200 400 calls
    .venv/bin/python benchmarks/media_relay.py --calls 400 --profile # + a py-spy summary
    .venv/bin/python benchmarks/media_relay.py --conference 3 10 50  # the mixing path

Each trial starts two processes on loopback, each pinned to its own core:

* the server under test on ``--server-core``: either a Sautikit media engine (this script
  with ``--serve``) holding ``calls`` two-party bridges, each recorded to a two-channel WAV
  (what a recorded ``dial`` makes; the bridges take the relay path), or rtpengine
  (Debian ``rtpengine-daemon``, userspace forwarding, no kernel module) given the same
  calls over its ng control protocol (offer, then answer, per call) — relaying without
  recording, the configuration carriers run it in;
* the far ends on ``--load-core``: ``rtp_load`` (C, compiled from ``rtp_load.c`` at the
  start), one UDP socket per leg, each sending a PCMU packet every 20 ms on an absolute
  schedule with the legs' phases spread over the frame. The first 8 payload bytes carry the
  send time, so the leg that receives a packet knows the delay the server added; its
  arrival intervals give the send-interval deviation at the callee.

CPU is the server's user + system time (all its threads) over the measuring window, from
/proc; "ms/s/u" is CPU milliseconds per second per call (per participant for rooms). A
count is *held* when no packet was lost and the p99 arrival-interval deviation is
within 2 ms. The conference mode puts the same number of legs in rooms of N (Sautikit
only: rtpengine does not mix) and reports the server's CPU per participant.

Figures depend on what else runs: the script prints the load average beside each one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
LOAD_SOURCE = HERE / "rtp_load.c"
RTPENGINE = shutil.which("rtpengine")
PYSPY = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
MAX_P99_DEVIATION_MS = 2.0
TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


# --- the Sautikit server ---------------------------------------------------------------------


async def _serve(args: argparse.Namespace) -> None:
    from sautikit.media import Bridge, Conference, MediaEngine

    os.sched_setaffinity(0, {args.core})
    ports = json.loads(sys.stdin.readline())
    recordings = Path(args.recordings)
    first, last = (int(port) for port in args.ports.split("-"))
    async with MediaEngine("127.0.0.1", (first, last)) as engine:
        channels = []
        for port in ports:
            channel = await engine.open_channel()
            channel.configure("127.0.0.1", port, "PCMU")
            channels.append(channel)
        mixers: list[Bridge | Conference] = []
        if args.room:
            for first in range(0, len(channels), args.room):
                room = Conference(f"room-{first}", engine, beep=False)
                for channel in channels[first : first + args.room]:
                    room.join(channel)
                mixers.append(room)
        else:
            for index in range(0, len(channels), 2):
                path = recordings / f"{index // 2}.wav" if args.record else None
                mixers.append(Bridge(channels[index], channels[index + 1], path))
        relayed = engine.stats().relayed_channels
        print(json.dumps([c.local_address[1] for c in channels]), flush=True)
        print(json.dumps({"relayed_channels": relayed, "pid": os.getpid()}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        stats = engine.stats()
        for mixer in mixers:
            mixer.close()
        print(
            json.dumps(
                {
                    "tick_work_p99_ms": stats.tick_work_p99 * 1000,
                    "clock_lateness_p99_ms": stats.clock.lateness_p99 * 1000,
                    "skipped_ticks": stats.clock.skipped_ticks,
                }
            ),
            flush=True,
        )


def serve(args: argparse.Namespace) -> None:
    from sautikit.runtime import run

    run(_serve(args))


# --- rtpengine over ng -----------------------------------------------------------------------


def bencode(value: Any) -> bytes:
    if isinstance(value, int):
        return b"i%de" % value
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, bytes):
        return b"%d:%s" % (len(value), value)
    if isinstance(value, list):
        return b"l" + b"".join(bencode(item) for item in value) + b"e"
    if isinstance(value, dict):
        items = sorted((k.encode() if isinstance(k, str) else k, v) for k, v in value.items())
        return b"d" + b"".join(bencode(k) + bencode(v) for k, v in items) + b"e"
    raise TypeError(f"cannot bencode {type(value).__name__}")


def bdecode(data: bytes, at: int = 0) -> tuple[Any, int]:
    kind = data[at : at + 1]
    if kind == b"i":
        end = data.index(b"e", at)
        return int(data[at + 1 : end]), end + 1
    if kind in (b"l", b"d"):
        items: list[Any] = []
        at += 1
        while data[at : at + 1] != b"e":
            item, at = bdecode(data, at)
            items.append(item)
        if kind == b"l":
            return items, at + 1
        return {items[i].decode(): items[i + 1] for i in range(0, len(items), 2)}, at + 1
    colon = data.index(b":", at)
    length = int(data[at:colon])
    return data[colon + 1 : colon + 1 + length], colon + 1 + length


class NgClient:
    """rtpengine's ng control protocol: a cookie, a space, a bencoded dictionary, on UDP."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(5)
        self.address = ("127.0.0.1", port)

    def command(self, **fields: Any) -> dict[str, Any]:
        cookie = f"{random.getrandbits(48):x}".encode()
        self.sock.sendto(cookie + b" " + bencode(fields), self.address)
        while True:
            data = self.sock.recv(65536)
            if data.startswith(cookie + b" "):
                reply, _ = bdecode(data, len(cookie) + 1)
                if reply.get("result") not in (b"ok", b"pong"):
                    raise RuntimeError(f"rtpengine: {reply}")
                return dict(reply)

    def close(self) -> None:
        self.sock.close()


def _sdp(port: int, session: int) -> str:
    return (
        f"v=0\r\no=- {session} 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
    )


def _sdp_port(sdp: bytes) -> int:
    for line in sdp.decode().splitlines():
        if line.startswith("m=audio "):
            return int(line.split()[1])
    raise RuntimeError("no m=audio line in rtpengine's SDP")


def rtpengine_targets(ng: NgClient, ports: Sequence[int]) -> list[int]:
    """Set up one call per pair of legs; answers where each leg must send."""
    targets = [0] * len(ports)
    for index in range(0, len(ports), 2):
        call_id, caller, callee = f"bench-{index}", f"a{index}", f"b{index}"
        offer = ng.command(
            command="offer",
            **{"call-id": call_id, "from-tag": caller},
            sdp=_sdp(ports[index], index),
        )
        answer = ng.command(
            command="answer",
            **{"call-id": call_id, "from-tag": caller, "to-tag": callee},
            sdp=_sdp(ports[index + 1], index + 1),
        )
        targets[index + 1] = _sdp_port(offer["sdp"])  # the callee sends where the offer says
        targets[index] = _sdp_port(answer["sdp"])
    return targets


# --- the driver ------------------------------------------------------------------------------


@dataclass
class Result:
    server: str
    legs: int
    room: int
    held: bool
    lost: int
    delay_p50_ms: float
    delay_p99_ms: float
    deviation_p99_ms: float
    packets_per_second: float
    packets_delivered_per_second: float
    cpu_percent: float
    system_percent: float
    """The part of ``cpu_percent`` spent in the kernel (the sockets' system calls)."""
    load: float
    extra: dict[str, Any]

    @property
    def calls(self) -> int:
        return self.legs // 2

    @property
    def cpu_per_packet_us(self) -> float:
        """Microseconds of server CPU per packet it delivered (what a far end received):
        unlike the CPU per call, not flattered by packets the kernel dropped unread."""
        delivered = self.packets_delivered_per_second
        return 1e4 * self.cpu_percent / delivered if delivered else float("nan")

    @property
    def cpu_per_call_ms(self) -> float:
        """Milliseconds of server CPU per second per call (or per participant in a room)."""
        units = self.legs if self.room else self.calls
        return 10 * self.cpu_percent / units if units else float("nan")


def _cpu_seconds(pid: int) -> tuple[float, float]:
    """The process's (user, system) CPU seconds, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICKS_PER_SECOND, int(fields[12]) / TICKS_PER_SECOND


def build_load(workdir: Path) -> Path:
    binary = workdir / "rtp_load"
    subprocess.run(["cc", "-O2", "-o", str(binary), str(LOAD_SOURCE)], check=True)
    return binary


def trial(server: str, legs: int, args: argparse.Namespace, binary: Path, room: int = 0) -> Result:
    workdir = Path(tempfile.mkdtemp(prefix="sautikit-relay-bench-"))
    processes: list[subprocess.Popen[str]] = []
    ng: NgClient | None = None
    try:
        nice = ["nice", "-n", str(args.nice)] if args.nice else []
        far_ends = [str(binary), str(legs), str(args.seconds), "2"]
        load = subprocess.Popen(
            [*nice, "taskset", "-c", str(args.load_core), *far_ends],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        processes.append(load)
        assert load.stdin is not None and load.stdout is not None
        ports = [int(p) for p in load.stdout.readline().split()[1:]]
        extra: dict[str, Any] = {}
        if server == "sautikit":
            (workdir / "recordings").mkdir()
            command = [*nice, sys.executable, __file__, "--serve", "--core", str(args.server_core)]
            command += ["--recordings", str(workdir / "recordings"), "--room", str(room)]
            command += ["--ports", args.ports]
            if not args.record:
                command.append("--no-record")
            media = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
            )
            processes.append(media)
            assert media.stdin is not None and media.stdout is not None
            media.stdin.write(json.dumps(ports) + "\n")
            media.stdin.flush()
            targets = json.loads(media.stdout.readline())
            extra.update(json.loads(media.stdout.readline()))
            pid = media.pid
        else:
            if RTPENGINE is None:
                raise RuntimeError("rtpengine is not installed (Debian package rtpengine-daemon)")
            ng_port = _free_port()
            engine = subprocess.Popen(
                [
                    *nice,
                    "taskset",
                    "-c",
                    str(args.server_core),
                    RTPENGINE,
                    "--foreground",
                    "--log-stderr",
                    "--log-level=3",
                    "--table=-1",
                    "--interface=127.0.0.1",
                    f"--listen-ng=127.0.0.1:{ng_port}",
                    f"--port-min={args.ports.split('-')[0]}",
                    f"--port-max={args.ports.split('-')[1]}",
                    f"--num-threads={args.rtpengine_threads}",
                    "--config-file=none",
                ],
                stdin=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            processes.append(engine)
            ng = NgClient(ng_port)
            for _ in range(50):
                with contextlib.suppress(OSError):
                    ng.command(command="ping")
                    break
                time.sleep(0.1)
            targets = rtpengine_targets(ng, ports)
            pid = engine.pid
        load.stdin.write("TARGETS " + " ".join(map(str, targets)) + "\n")
        load.stdin.flush()
        time.sleep(2.05)  # the load's warm-up
        cpu0, t0 = _cpu_seconds(pid), time.monotonic()
        profile = None
        if args.profile and server == "sautikit" and not room:
            profile = subprocess.Popen(
                [
                    PYSPY,
                    "record",
                    "-p",
                    str(pid),
                    "-d",
                    str(max(1, int(args.seconds) - 1)),
                    "-f",
                    "raw",
                    "-o",
                    str(workdir / "profile.txt"),
                    "-r",
                    "200",
                    "--nonblocking",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        time.sleep(args.seconds - 0.1)
        cpu1, t1 = _cpu_seconds(pid), time.monotonic()
        report = json.loads(load.stdout.readline())
        if profile is not None:
            profile.wait(timeout=30)
            extra["profile"] = summarise_profile(workdir / "profile.txt")
        if server == "sautikit":
            media.stdin.write("stop\n")
            media.stdin.flush()
            extra.update(json.loads(media.stdout.readline()))
        cpu = 100 * (sum(cpu1) - sum(cpu0)) / (t1 - t0)
        system = 100 * (cpu1[1] - cpu0[1]) / (t1 - t0)
        return Result(
            server=server,
            legs=legs,
            room=room,
            held=report["lost"] == 0 and report["interval_dev_p99_ms"] <= MAX_P99_DEVIATION_MS,
            lost=report["lost"],
            delay_p50_ms=report["delay_p50_ms"],
            delay_p99_ms=report["delay_p99_ms"],
            deviation_p99_ms=report["interval_dev_p99_ms"],
            packets_per_second=(report["sent"] + report["received"]) / args.seconds,
            packets_delivered_per_second=report["received"] / args.seconds,
            cpu_percent=cpu,
            system_percent=system,
            load=os.getloadavg()[0],
            extra=extra,
        )
    finally:
        if ng is not None:
            ng.close()
        for process in reversed(processes):
            if process.poll() is None:
                process.kill()
                process.wait()
        shutil.rmtree(workdir, ignore_errors=True)


def summarise_profile(path: Path, top: int = 12) -> list[tuple[str, float, float]]:
    """(frame, % of samples where it is the leaf, % where it is anywhere on the stack)."""
    if not path.exists():
        return []
    leaf: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [
            frame.split(" (")[0] + " " + frame.split("/")[-1].rstrip(")")
            for frame in stack.split(";")
        ]
        total += count
        leaf[frames[-1]] = leaf.get(frames[-1], 0) + count
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count
    ranked = sorted(inclusive, key=lambda f: leaf.get(f, 0), reverse=True)[:top]
    return [(f, 100 * leaf.get(f, 0) / total, 100 * inclusive[f] / total) for f in ranked]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _row(result: Result) -> str:
    if result.room:
        # The far ends hear mixed audio, which carries no send stamps: only CPU counts here.
        what = f"{result.room}-party x{result.legs // result.room}"
        return (
            f"{result.server:>9} {what:>14} {'-':>4} {'-':>5} {'-':>7} {'-':>7} {'-':>7} "
            f"{result.packets_per_second / 2:>7.0f} {result.cpu_percent:>6.1f} "
            f"{result.system_percent:>5.1f} {result.cpu_per_call_ms:>7.3f} {'-':>6} "
            f"{result.load:>5.2f}"
        )
    what = f"{result.calls} calls"
    return (
        f"{result.server:>9} {what:>14} {'yes' if result.held else 'no':>4} {result.lost:>5} "
        f"{result.delay_p50_ms:>7.2f} {result.delay_p99_ms:>7.2f} {result.deviation_p99_ms:>7.2f} "
        f"{result.packets_per_second:>7.0f} {result.cpu_percent:>6.1f} "
        f"{result.system_percent:>5.1f} {result.cpu_per_call_ms:>7.3f} "
        f"{result.cpu_per_packet_us:>6.2f} {result.load:>5.2f}"
    )


def drive(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="sautikit-relay-load-"))
    try:
        binary = build_load(workdir)
        servers = ["sautikit"] + (["rtpengine"] if RTPENGINE and not args.no_rtpengine else [])
        print(
            f"server on core {args.server_core}, far ends on core {args.load_core}; "
            f"{args.seconds:.0f} s measured per trial; Sautikit bridges "
            f"{'recorded' if args.record else 'not recorded'}, rtpengine relaying only; "
            f"{os.cpu_count()} cores; niceness {args.nice}"
        )
        print(
            f"{'server':>9} {'load':>14} {'held':>4} {'lost':>5} {'d p50':>7} {'d p99':>7} "
            f"{'dev p99':>7} {'pkt/s':>7} {'CPU %':>6} {'sys %':>5} {'ms/s/u':>7} "
            f"{'us/pkt':>6} {'load1':>5}"
        )
        results: dict[tuple[str, int], Result] = {}
        for calls in args.calls:
            for server in servers:
                result = trial(server, 2 * calls, args, binary)
                results[(server, calls)] = result
                print(_row(result), flush=True)
            if ("rtpengine", calls) in results:
                ours, theirs = results[("sautikit", calls)], results[("rtpengine", calls)]
                ratio = (
                    ours.cpu_percent / theirs.cpu_percent if theirs.cpu_percent else float("inf")
                )
                print(f"{'':>9} {'':>14} Sautikit/rtpengine CPU per call: {ratio:.2f}x", flush=True)
        for room in args.conference:
            legs = max(room, (args.conference_legs // room) * room)
            print(_row(trial("sautikit", legs, args, binary, room)), flush=True)
        for (server, calls), result in results.items():
            profile = result.extra.get("profile")
            if profile:
                print(f"py-spy, {server} at {calls} calls (frame, % leaf, % inclusive):")
                for frame, own, total in profile:
                    print(f"  {own:5.1f} {total:5.1f}  {frame}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, nargs="+", default=[100, 200, 400])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured per trial")
    parser.add_argument("--server-core", type=int, default=0)
    parser.add_argument("--load-core", type=int, default=1)
    parser.add_argument("--no-record", dest="record", action="store_false")
    parser.add_argument(
        "--ports",
        default="20000-29999",
        help="the servers' RTP/RTCP port range, FIRST-LAST (4 ports per call)",
    )
    parser.add_argument("--no-rtpengine", action="store_true")
    parser.add_argument("--rtpengine-threads", type=int, default=1)
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="niceness of both servers and the far ends (negative: ahead of a busy machine's "
        "other work; the capacity goal is at 0)",
    )
    parser.add_argument("--conference", type=int, nargs="*", default=[], help="room sizes")
    parser.add_argument("--conference-legs", type=int, default=150)
    parser.add_argument("--profile", action="store_true", help="py-spy the Sautikit server")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--core", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--recordings", help=argparse.SUPPRESS)
    parser.add_argument("--room", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args)
    else:
        with contextlib.suppress(KeyboardInterrupt):
            drive(args)


if __name__ == "__main__":
    main()
