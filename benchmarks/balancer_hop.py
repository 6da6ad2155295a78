"""The set-up latency Kamailio adds in front of a node (issue 16, item 5, in part).

One ``sautikit serve`` node on PostgreSQL, its number answered by an app on loopback;
SIPp places ``--calls`` calls at ``--rate`` calls/s straight to the node, then the same
through Kamailio (Debian ``kamailio``, configured by ``sautikit kamailio-config``, the node
as its only destination), each call holding 300 ms. SIPp's per-call response times
(INVITE→200, ``-trace_rtt``) give p50/p95 for each path; the difference is the hop.

    PYTHONPATH=src:. .venv/bin/python benchmarks/balancer_hop.py --calls 40 --rate 4

Figures depend on the machine: note ``uptime`` beside them.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import statistics
import sys
import tempfile
from pathlib import Path

from tests.cluster.test_kamailio import kamailio, write_config
from tests.serve_process import NUMBER, ServeProcess, free_sip_port, seed, serve_database
from tests.sipp import Sipp
from tests.voice.voice_rig import document, serve_app

CALLER = Path(__file__).parent.parent / "tests" / "cluster" / "scenarios" / "caller_via_proxy.xml"


def response_times(workdir: Path) -> list[float]:
    """INVITE→200 of each call, in ms, from SIPp's ``-trace_rtt`` file."""
    times: list[float] = []
    for path in workdir.glob("*_rtt.csv"):
        with path.open() as handle:
            for row in csv.reader(handle, delimiter=";"):
                if len(row) >= 2 and row[1].replace(".", "", 1).isdigit():
                    times.append(float(row[1]))
    return times


async def run_calls(target: tuple[str, int], calls: int, rate: float) -> list[float]:
    """Place ``calls`` at ``rate``/s to ``target``; answers their INVITE→200 times (ms)."""
    with tempfile.TemporaryDirectory(prefix="hop-") as folder:
        return await _run_calls(Path(folder), target, calls, rate)


async def _run_calls(
    workdir: Path, target: tuple[str, int], calls: int, rate: float
) -> list[float]:
    result = await Sipp(
        scenario=CALLER,
        remote=target,
        service=NUMBER,
        calls=calls,
        timeout=calls / rate + 60,
        workdir=workdir,
        extra=["-r", str(rate), "-trace_rtt", "-rtt_freq", "1"],
    ).run()
    if result.returncode != 0:
        raise SystemExit(result.explain())
    return response_times(workdir)


def summary(name: str, times: list[float]) -> str:
    ordered = sorted(times)
    p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
    p50 = statistics.median(times)
    return f"{name:>22}: {len(times)} calls, INVITE→200 p50 {p50:.1f} ms, p95 {p95:.1f} ms"


async def main(calls: int, rate: float) -> None:
    with tempfile.TemporaryDirectory() as folder, serve_app() as app:
        tmp = Path(folder)
        answer = app.route("/voice", document({"pause": {"length": 30}}))
        async with serve_database("postgresql", tmp) as (url, database):
            await seed(database, voice_url=answer, trunk_port=9)
            node = ServeProcess(tmp / "a" / "var", url, env={"SAUTIKIT_NODE_ID": "a"})
            async with node:
                listen = free_sip_port()
                await write_config(tmp / "kamailio", [node], listen)
                async with kamailio(tmp / "kamailio"):
                    await asyncio.sleep(2)  # the first OPTIONS probes
                    direct = await run_calls(node.sip, calls, rate)
                    hop = await run_calls(("127.0.0.1", listen), calls, rate)
    load = " ".join(f"{average:.2f}" for average in os.getloadavg())
    print(summary("straight to the node", direct))
    print(summary("through Kamailio", hop))
    print(f"added by the hop: p50 {statistics.median(hop) - statistics.median(direct):+.1f} ms")
    print(f"load average: {load}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--rate", type=float, default=4.0)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.calls, arguments.rate))
    sys.exit(0)
