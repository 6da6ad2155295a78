"""One node against three behind Kamailio (issue 16, item 5).

For each layout, ``sautikit serve`` nodes on one PostgreSQL behind Kamailio (configured by
``sautikit kamailio-config``, round-robin); SIPp places ``--calls`` calls at ``--rate``
calls/s through Kamailio, each answered by an app on loopback and held 300 ms. Printed:
calls completed, INVITE→200 p50/p95 (SIPp ``-trace_rtt``) and the load average. Ports:
Kamailio on ``--base-port``, the nodes' SIP and RTP in the 1,000 after it.

    PYTHONPATH=src:. .venv/bin/python benchmarks/cluster_scale.py --calls 60 --rate 6

On one shared machine three nodes share its cores: this shows what the balancer and the
shared database cost and how set-up latency spreads, not three machines' capacity.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from pathlib import Path

from benchmarks.balancer_hop import run_calls, summary
from tests.cluster.test_kamailio import kamailio, write_config
from tests.serve_process import ServeProcess, seed, serve_database
from tests.voice.voice_rig import document, serve_app


async def layout(nodes: int, calls: int, rate: float, base: int) -> str:
    with tempfile.TemporaryDirectory() as folder, serve_app() as app:
        tmp = Path(folder)
        answer = app.route("/voice", document({"pause": {"length": 30}}))
        async with serve_database("postgresql", tmp) as (url, database):
            await seed(database, voice_url=answer, trunk_port=9)
            running = [
                ServeProcess(
                    tmp / f"n{index}" / "var",
                    url,
                    sip_port=base + 10 + index,
                    rtp_ports=(base + 100 + 200 * index, base + 299 + 200 * index),
                    env={"SAUTIKIT_NODE_ID": f"n{index}"},
                )
                for index in range(nodes)
            ]
            try:
                for node in running:
                    await node.start()
                await write_config(tmp / "kamailio", running, base)
                async with kamailio(tmp / "kamailio"):
                    await asyncio.sleep(2)  # the first OPTIONS probes
                    times = await run_calls(("127.0.0.1", base), calls, rate)
            finally:
                for node in running:
                    await node.kill()
    load = " ".join(f"{average:.2f}" for average in os.getloadavg())
    return f"{summary(f'{nodes} node(s), {rate:g}/s', times)}; load {load}"


async def main(calls: int, rate: float, base: int) -> None:
    for nodes in (1, 3):
        print(await layout(nodes, calls, rate, base), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=60)
    parser.add_argument("--rate", type=float, default=6.0)
    parser.add_argument("--base-port", type=int, default=27000)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.calls, arguments.rate, arguments.base_port))
