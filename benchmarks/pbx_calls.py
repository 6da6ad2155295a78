"""Concurrent recorded bridged calls through one Sautikit media process (issue 3, item 14).

End to end with SIP: SIPp places and answers every call. Same-codec bridges now take the
relay path, whose send times are those of the relayed packets (so they follow the
caller's own pacing); benchmarks/media_relay.py measures the media plane alone, at the
callee, beside rtpengine.

Each trial starts three processes on loopback and stops by itself:

* the media process (this script with ``--serve``), pinned to one core: a :class:`Pbx`
  whose inbound handler answers each call, dials the callee, and bridges the two legs
  with a two-channel recording to a temporary folder (a recorded ``dial``, recording from
  the callee's answer);
* SIPp as callee, on the other core: the built-in ``uas`` scenario with ``-rtp_echo``, so
  every packet the outbound leg sends comes back to it;
* SIPp as caller, on the other core: offers PCMA and PCMU, plays the 7 s A-law speech
  capture that ships with SIPp (``g711a.pcap``) into the inbound leg, holds the call,
  then hangs up. Calls are placed at ``--rate`` per second up to the trial's count, and
  each is held long enough that all of them overlap for ``--window`` seconds.

Inside the media process each session's :meth:`RtpSession.flush` (which sends the frame the
engine queued) is wrapped to note when every packet left, so send intervals are measured
per channel, where the clock's jitter shows. Lost packets are the RFC 3550 count (expected
minus received) of every stream received: the caller's speech and the callee's echo of our
own packets, which counts a loss in either direction. CPU and packets/s are taken over the
window in which every call of the trial was up; CPU covers the whole process (event loop,
media clock and the recording thread).

A count is *held* when a majority of its runs bridged every call, lost no packet and kept
the p99 send-interval deviation under 2 ms. Figures are medians over the runs.

    .venv/bin/python benchmarks/pbx_calls.py --calls 50 100 150 200 --runs 3
    .venv/bin/python benchmarks/pbx_calls.py --calls 200 --runs 1 --profile /tmp/media.prof
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import csv
import gc
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from sautikit.media import Bridge
from sautikit.media.session import RtpSession
from sautikit.pbx import InboundLeg, OutboundLeg, Pbx
from sautikit.runtime import run
from sautikit.sip import CallError

SIPP = shutil.which("sipp") or "sipp"
SPEECH_PCAP = Path("/usr/share/sip-tester/g711a.pcap")
RTP_PORTS = (20000, 23999)
"""Below Linux's ephemeral range, so no SIPp or SIP socket lands on a leg's port."""
FRAME_SECONDS = 0.020
MAX_P99_DEVIATION_MS = 2.0

CALLER_SCENARIO = f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="bridged call caller">
  <send retrans="500">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:+254711[call_number]@[local_ip]:[local_port]>;tag=[pid]bench[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:sipp@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 8 0 101
      a=rtpmap:8 PCMA/8000
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="true"/>
  <send>
    <![CDATA[
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:+254711[call_number]@[local_ip]:[local_port]>;tag=[pid]bench[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <nop><action><exec play_pcap_audio="{SPEECH_PCAP}"/></action></nop>
  <pause/>
  <send retrans="500">
    <![CDATA[
      BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:+254711[call_number]@[local_ip]:[local_port]>;tag=[pid]bench[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <recv response="200" crlf="true"/>
</scenario>
"""


# --- the media process ----------------------------------------------------------------------


def _time_sends(session: RtpSession, sent_at: list[float]) -> None:
    """Note the time of every packet the session sends: the engine's clocked frames go
    through flush, a relaying bridge's packets through _relay."""
    flush = session.flush
    relay = session._relay
    clock = time.perf_counter

    def timed() -> bool:
        sent = flush()
        if sent:
            sent_at.append(clock())
        return sent

    def timed_relay(*packet: Any) -> None:
        relay(*packet)
        sent_at.append(clock())

    session.flush = timed  # type: ignore[method-assign]
    session._relay = timed_relay  # type: ignore[method-assign]


def _lost(session: RtpSession) -> int:
    return sum(max(0, source.lost) for source in session.sources.values())


@dataclass
class _MediaTotals:
    """What the media process saw, reported as JSON when it stops."""

    bridged_at: list[float] = field(default_factory=list)
    failed: int = 0
    live: int = 0
    lost: int = 0
    foreign: int = 0
    sends: list[npt.NDArray[np.float64]] = field(default_factory=list)
    """Each channel's packet send times."""
    full_since: float = float("inf")
    full_until: float = float("inf")
    """When every expected call was up, and when the first of them ended."""
    samples: list[tuple[float, float, int, int, int]] = field(default_factory=list)
    """(time, CPU seconds, packets sent, packets received, calls bridged) once a second."""


class _GcPauses:
    """The garbage collector's pauses in this process, which stall the media clock."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self._started = 0.0
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses.append(time.perf_counter() - self._started)


async def _serve(args: argparse.Namespace) -> None:
    os.sched_setaffinity(0, {args.core})
    if args.realtime:
        # As `asterisk -p` does: other work on the core can no longer delay a tick.
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(10))
    totals = _MediaTotals()
    gc_pauses = _GcPauses()
    recordings = Path(args.recordings)
    callee = f"sip:callee@127.0.0.1:{args.callee_port}"

    async def bridged_call(leg: InboundLeg) -> None:
        await leg.answer()
        try:
            out: OutboundLeg = await pbx.dial(callee, from_uri="sip:bench@127.0.0.1")
            await out.wait_answer()
        except CallError:
            totals.failed += 1
            await leg.hangup()
            return
        times: tuple[list[float], list[float]] = ([], [])
        _time_sends(leg.channel.session, times[0])
        _time_sends(out.channel.session, times[1])
        recording = recordings / f"{len(totals.bridged_at)}.wav" if args.record else None
        bridge = Bridge(leg.channel, out.channel, recording_path=recording)
        totals.bridged_at.append(time.monotonic())
        totals.live += 1
        if totals.live == args.expect:
            totals.full_since = time.perf_counter()
        await bridge.wait()
        if totals.live == args.expect:
            totals.full_until = time.perf_counter()
        totals.live -= 1
        if not out.ended:
            await out.hangup()
        if not leg.ended:
            await leg.hangup()
        for channel, sent_at in ((leg.channel, times[0]), (out.channel, times[1])):
            totals.lost += _lost(channel.session)
            totals.foreign += channel.session.stats.foreign
            totals.sends.append(np.array(sent_at))
        if bridge.recording is not None:
            await bridge.recording.finished()

    pbx = Pbx(sip_port=0, rtp_ports=RTP_PORTS, on_inbound=bridged_call)
    await pbx.start()
    stop = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_reader(sys.stdin.fileno(), _stop_on_input, stop)
    print(f"READY {pbx.port}", flush=True)
    deadline = time.monotonic() + args.max_seconds
    while not stop.done() and time.monotonic() < deadline:
        sent = received = 0
        for channel in pbx.media.channels:
            sent += channel.session.stats.packets_sent
            received += channel.session.stats.packets_received
        totals.samples.append((time.monotonic(), time.process_time(), sent, received, totals.live))
        await asyncio.wait([stop], timeout=1.0)
    engine = pbx.media.stats()
    await pbx.close()
    whole, full = _deviations(totals.sends, totals.full_since, totals.full_until)
    print(
        json.dumps(
            {
                "bridged": len(totals.bridged_at),
                "failed": totals.failed,
                "bridged_at": totals.bridged_at,
                "lost": totals.lost,
                "foreign": totals.foreign,
                "intervals": int(full.size),
                "deviation_p50_ms": float(np.percentile(full, 50) * 1000),
                "deviation_p99_ms": float(np.percentile(full, 99) * 1000),
                "deviation_max_ms": float(full.max() * 1000),
                "whole_run_deviation_p99_ms": float(np.percentile(whole, 99) * 1000),
                "samples": totals.samples,
                "tick_work_mean_ms": engine.tick_work_mean * 1000,
                "tick_work_p99_ms": engine.tick_work_p99 * 1000,
                "clock_late_ticks": engine.clock.late_ticks,
                "clock_skipped_ticks": engine.clock.skipped_ticks,
                "clock_lateness_p99_ms": engine.clock.lateness_p99 * 1000,
                "tick_work_max_ms": engine.tick_work_max * 1000,
                "gc_pauses": len(gc_pauses.pauses),
                "gc_pause_max_ms": max(gc_pauses.pauses, default=0.0) * 1000,
                "gc_pauses_over_2ms": sum(pause > 0.002 for pause in gc_pauses.pauses),
            }
        ),
        flush=True,
    )


def _deviations(
    sends: Sequence[npt.NDArray[np.float64]], since: float, until: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """|interval - 20 ms| of every channel: over the whole run, and while all calls were up."""
    whole, full = [np.zeros(1)], [np.zeros(1)]
    for times in sends:
        if len(times) < 2:
            continue
        deviation = np.abs(np.diff(times) - FRAME_SECONDS)
        whole.append(deviation)
        full.append(deviation[(times[:-1] >= since) & (times[1:] <= until)])
    return np.concatenate(whole), np.concatenate(full)


def _stop_on_input(stop: asyncio.Future[None]) -> None:
    if not stop.done():
        stop.set_result(None)


def serve(args: argparse.Namespace) -> None:
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        try:
            run(_serve(args))
        finally:
            profiler.disable()
            profiler.dump_stats(args.profile)
    else:
        run(_serve(args))


# --- the driver -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Trial:
    calls: int
    held: bool
    bridged: int
    lost: int
    deviation_p99_ms: float
    deviation_max_ms: float
    packets_per_second: float
    cpu_percent: float
    setup_rate: float
    tick_work_p99_ms: float
    sipp_failed: int


def _sipp(arguments: Sequence[str], core: int, workdir: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["taskset", "-c", str(core), SIPP, *arguments, "-nostdin"],
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _sipp_counter(stat_file: Path, name: str) -> int:
    if not stat_file.exists():
        return 0
    rows = list(csv.reader(stat_file.read_text().splitlines(), delimiter=";"))
    if len(rows) < 2:
        return 0
    return int(dict(zip(rows[0], rows[-1], strict=False)).get(f"{name}(C)", "0") or 0)


def trial(calls: int, args: argparse.Namespace) -> Trial:
    """One run at ``calls`` concurrent calls; every process it starts is gone on return."""
    workdir = Path(tempfile.mkdtemp(prefix="sautikit-pbx-bench-"))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        (workdir / "recordings").mkdir()
        callee_port = free_port()
        ramp = calls / args.rate
        duration = ramp + args.window
        limit = duration + 60
        command = [sys.executable, __file__, "--serve", "--core", str(args.pbx_core)]
        command += ["--callee-port", str(callee_port), "--recordings", str(workdir / "recordings")]
        command += ["--max-seconds", str(limit), "--expect", str(calls)]
        if not args.record:
            command.append("--no-record")
        if args.profile:
            command += ["--profile", args.profile]
        if args.realtime:
            command.append("--realtime")
        media = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        processes.append(media)
        assert media.stdout is not None and media.stdin is not None
        ready = media.stdout.readline().decode().split()
        if not ready or ready[0] != "READY":
            raise RuntimeError("the media process did not start")
        pbx_port = int(ready[1])
        common = ["-i", "127.0.0.1", "-mi", "127.0.0.1", "-timeout", f"{limit:.0f}s"]
        processes.append(
            _sipp(
                [
                    "-sn",
                    "uas",
                    "-rtp_echo",
                    "-p",
                    str(callee_port),
                    "-mp",
                    str(free_port()),
                    "-m",
                    str(calls),
                    *common,
                ],
                args.load_core,
                workdir,
            )
        )
        time.sleep(0.5)  # the callee binds its port
        scenario = workdir / "caller.xml"
        scenario.write_text(CALLER_SCENARIO)
        caller = _sipp(
            [
                "-sf",
                str(scenario),
                f"127.0.0.1:{pbx_port}",
                "-s",
                "100",
                "-p",
                str(free_port()),
                "-mp",
                str(free_port()),
                "-r",
                str(args.rate),
                "-l",
                str(calls),
                "-m",
                str(calls),
                "-d",
                str(int(duration * 1000)),
                "-trace_stat",
                "-stf",
                "caller.csv",
                *common,
            ],
            args.load_core,
            workdir,
        )
        processes.append(caller)
        caller.wait(timeout=limit + 10)
        time.sleep(1.0)  # the last BYEs reach the media process
        media.stdin.write(b"stop\n")
        media.stdin.flush()
        report: dict[str, Any] = json.loads(media.stdout.readline())
        media.wait(timeout=30)
        if args.verbose:
            print({k: v for k, v in report.items() if k not in ("samples", "bridged_at")})
        return _judge(calls, report, _sipp_counter(workdir / "caller.csv", "FailedCall"))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        shutil.rmtree(workdir, ignore_errors=True)


def _judge(calls: int, report: dict[str, Any], sipp_failed: int) -> Trial:
    full = [sample for sample in report["samples"] if sample[4] == calls]
    if len(full) >= 2:
        (t0, cpu0, sent0, received0, _), (t1, cpu1, sent1, received1, _) = full[0], full[-1]
        packets_per_second = (sent1 - sent0 + received1 - received0) / (t1 - t0)
        cpu_percent = 100 * (cpu1 - cpu0) / (t1 - t0)
    else:
        packets_per_second = cpu_percent = float("nan")
    bridged_at = report["bridged_at"]
    setup_rate = (
        (len(bridged_at) - 1) / (bridged_at[-1] - bridged_at[0])
        if len(bridged_at) > 1
        else float("nan")
    )
    held = (
        report["bridged"] == calls
        and report["intervals"] >= calls  # send times were taken while every call was up
        and sipp_failed == 0
        and report["lost"] == 0
        and report["deviation_p99_ms"] < MAX_P99_DEVIATION_MS
    )
    return Trial(
        calls=calls,
        held=held,
        bridged=report["bridged"],
        lost=report["lost"],
        deviation_p99_ms=report["deviation_p99_ms"],
        deviation_max_ms=report["deviation_max_ms"],
        packets_per_second=packets_per_second,
        cpu_percent=cpu_percent,
        setup_rate=setup_rate,
        tick_work_p99_ms=report["tick_work_p99_ms"],
        sipp_failed=sipp_failed,
    )


def _median(trials: Sequence[Trial], pick: Callable[[Trial], float]) -> float:
    return statistics.median(pick(t) for t in trials)


def drive(args: argparse.Namespace) -> None:
    if shutil.which("sipp") is None:
        sys.exit("SIPp is not installed (Debian package sip-tester)")
    print(
        f"media process on core {args.pbx_core}{' (SCHED_RR)' if args.realtime else ''}, "
        f"SIPp on core {args.load_core}; recording {'on' if args.record else 'off'}; "
        f"{args.rate} calls/s offered, {args.window} s with every call up; "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}"
    )
    header = (
        f"{'calls':>5} {'held':>5} {'bridged':>7} {'lost':>5} {'p99 dev':>8} {'max dev':>8} "
        f"{'pkt/s':>7} {'CPU %':>6} {'setup/s':>7} {'tick p99':>8}"
    )
    print(header)
    most_held = 0
    for calls in args.calls:
        trials = []
        for index in range(args.runs):
            result = trial(calls, args)
            trials.append(result)
            if args.verbose:
                print(f"  run {index + 1}: {result}", flush=True)
        held = sum(t.held for t in trials) * 2 > len(trials)
        if held:
            most_held = max(most_held, calls)
        print(
            f"{calls:>5} {'yes' if held else 'no':>5} "
            f"{_median(trials, lambda t: t.bridged):>7.0f} "
            f"{_median(trials, lambda t: t.lost):>5.0f} "
            f"{_median(trials, lambda t: t.deviation_p99_ms):>6.2f}ms "
            f"{_median(trials, lambda t: t.deviation_max_ms):>6.1f}ms "
            f"{_median(trials, lambda t: t.packets_per_second):>7.0f} "
            f"{_median(trials, lambda t: t.cpu_percent):>6.1f} "
            f"{_median(trials, lambda t: t.setup_rate):>7.1f} "
            f"{_median(trials, lambda t: t.tick_work_p99_ms):>6.2f}ms",
            flush=True,
        )
    print(f"most concurrent recorded bridged calls held: {most_held}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, nargs="+", default=[50, 100, 150, 200, 250])
    parser.add_argument("--runs", type=int, default=3, help="runs per call count (median)")
    parser.add_argument("--rate", type=float, default=25.0, help="calls per second offered")
    parser.add_argument("--window", type=float, default=10.0, help="seconds all calls are up")
    parser.add_argument("--pbx-core", type=int, default=0)
    parser.add_argument("--load-core", type=int, default=1)
    parser.add_argument(
        "--no-record", dest="record", action="store_false", help="bridge without recording"
    )
    parser.add_argument("--profile", help="write a cProfile of the media process here")
    parser.add_argument(
        "--realtime", action="store_true", help="run the media process as SCHED_RR (needs root)"
    )
    parser.add_argument("--verbose", action="store_true", help="print every run")
    # The media process's own options (this script runs itself with --serve).
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--core", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--callee-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--recordings", help=argparse.SUPPRESS)
    parser.add_argument("--max-seconds", type=float, default=120.0, help=argparse.SUPPRESS)
    parser.add_argument("--expect", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args)
    else:
        with contextlib.suppress(KeyboardInterrupt):
            drive(args)


if __name__ == "__main__":
    main()
