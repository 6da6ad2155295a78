"""Limits hold for the platform, not per node: two ``sautikit serve`` nodes on one
PostgreSQL share each API key's request bucket and each workspace's calls-per-second."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import update
from tests.serve_process import CALLEE, NUMBER, ServeProcess, seed, serve_database

from sautikit.db.models import Workspace


async def test_rate_limits_and_call_rate_caps_hold_across_nodes(tmp_path: Path) -> None:
    async with serve_database("postgresql", tmp_path) as (url, database):
        seeded = await seed(database, voice_url="http://127.0.0.1:9/voice", trunk_port=9)
        async with database.transaction() as session:
            await session.execute(
                update(Workspace)
                .where(Workspace.id == seeded.workspace_id)
                .values(max_calls_per_second=1)
            )
        # Slow refill: what one node takes stays taken for the test's few seconds.
        limits = {"SAUTIKIT_RATE_LIMIT_PER_SECOND": "0.05", "SAUTIKIT_RATE_LIMIT_BURST": "4"}
        nodes = [
            ServeProcess(
                tmp_path / name / "var",
                url,
                rtp_ports=ports,
                env={"SAUTIKIT_NODE_ID": name, **limits},
            )
            for name, ports in (("a", (31400, 31499)), ("b", (31500, 31599)))
        ]
        try:
            for node in nodes:
                await node.start()
            node_a, node_b = nodes
            async with node_a.api(seeded.headers) as api_a, node_b.api(seeded.headers) as api_b:
                call = {"to": CALLEE, "from": NUMBER, "action_url": "http://127.0.0.1:9/a"}
                first = await api_a.post("/v1/calls", json=call)
                assert first.status_code == 201, first.text
                second = await api_b.post("/v1/calls", json=call)  # the same second
                assert second.status_code == 429, second.text
                assert "calls per second" in second.json()["error"]["message"]
                assert int(second.headers["Retry-After"]) >= 1
                # Two of the key's four requests are spent; two more, one per node…
                assert (await api_a.get("/v1/calls")).status_code == 200
                assert (await api_b.get("/v1/calls")).status_code == 200
                # …and the bucket is empty on every node.
                refused = [(await api.get("/v1/calls")).status_code for api in (api_a, api_b)]
            assert refused == [429, 429]
        finally:
            for node in nodes:
                await node.kill()
