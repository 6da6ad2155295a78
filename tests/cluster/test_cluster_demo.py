"""``sautikit cluster-demo`` as an operator runs it: three nodes with split roles,
Kamailio, a database of its own on PostgreSQL and a SeaweedFS store; the voicemail and
record-dial flows and a three-party conference whose callers land on three nodes, each
hearing the others; everything it started is gone afterwards."""

from __future__ import annotations

import asyncio
import random
import re
import socket
import sys

import asyncpg
import pytest
from tests.cluster.test_kamailio import requires_kamailio
from tests.conftest import POSTGRES_URL

from sautikit.cli.cluster import PORT_BLOCK, DemoPorts

pytestmark = [requires_kamailio]


def _free(port: int, kind: socket.SocketKind) -> bool:
    with socket.socket(socket.AF_INET, kind) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_block() -> int:
    """A base port whose block has every port the demo binds free (UDP and TCP)."""
    for _ in range(20):
        ports = DemoPorts(random.randrange(40, 59) * PORT_BLOCK)
        udp = [ports.kamailio, ports.carrier, *(ports.node_sip(i) for i in range(3))]
        rtp = [p for i in range(3) for p in range(*ports.node_rtp(i))]
        rtp += [p for i in range(5) for p in range(*ports.phone_rtp(i))]
        tcp = udp + [ports.node_http(i) for i in range(3)] + [ports.app(i) for i in range(3)]
        tcp += [ports.weed(i) for i in range(8)]
        if all(_free(p, socket.SOCK_DGRAM) for p in udp + rtp) and all(
            _free(p, socket.SOCK_STREAM) for p in tcp
        ):
            return ports.base
    raise AssertionError("no block of 1,000 free ports")


@pytest.mark.sipp
async def test_the_cluster_demo_runs_every_flow_across_three_nodes() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sautikit",
        "cluster-demo",
        f"--base-port={free_block()}",
        f"--postgres={POSTGRES_URL}",
        "--time-limit=150",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 200)
    text = output.decode(errors="replace")
    assert process.returncode == 0, text[-4000:]
    assert "✗" not in text, text
    for index in (1, 2, 3):
        assert f"participant {index} heard" in text
    legs = text.split("where each leg ran", 1)[1]
    conference_nodes = set(re.findall(r"^(node-\d)\s+conference", legs, re.M))
    assert conference_nodes == {"node-1", "node-2", "node-3"}, legs
    pid = re.search(r"database sautikit_cluster_(\d+)", text)
    assert pid is not None
    admin = await asyncpg.connect(POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        left = await admin.fetchval(
            "SELECT count(*) FROM pg_database WHERE datname = $1",
            f"sautikit_cluster_{pid.group(1)}",
        )
    finally:
        await admin.close()
    assert left == 0  # its database was dropped
