"""PostgreSQL restarted under a live call: two nodes on a private PostgreSQL (initdb and
pg_ctl from Debian's postgresql, on a port of the test's own, so restarting it disturbs
nobody). The call placed before the restart ends normally and is billed once, its hold
released; neither node is declared dead; both nodes take new calls after it."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from tests.serve_process import CALLEE, NUMBER, ServeProcess, calls, seed
from tests.sipp import SCENARIOS as SIP_SCENARIOS
from tests.sipp import Sipp, free_port, requires_sipp
from tests.voice.voice_rig import document, serve_app

from sautikit.db import Database, upgrade_database
from sautikit.db.models import Node, WalletEntry, WalletReservation

PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"))), Path("/nonexistent"))
requires_postgres_server = pytest.mark.skipif(
    not (PG_BIN / "pg_ctl").exists() or shutil.which("runuser") is None,
    reason="Debian's postgresql (initdb, pg_ctl) is not installed",
)
pytestmark = [pytest.mark.sipp, requires_sipp, requires_postgres_server]


class PrivatePostgres:
    """A PostgreSQL cluster of this test's own, run as the postgres user."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.data = root / "data"

    def _as_postgres(self, *command: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *command],
            check=True,
            # The server's output goes to its log (-l), never to a pipe it would hold open.
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
        )

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c max_connections=200"
        )
        self._as_postgres(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options, "-l",
            str(self.root / "postgres.log"), "-w", "start",
        )  # fmt: skip

    def restart(self) -> None:
        self._as_postgres(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "restart"
        )

    def stop(self) -> None:
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")


@pytest.fixture
def private_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivatePostgres]:
    root = Path(f"/tmp/sautikit-pg-{free_port()}")
    root.mkdir()
    shutil.chown(root, "postgres", "postgres")
    server = PrivatePostgres(root)
    try:
        server._as_postgres(
            str(PG_BIN / "initdb"), "-D", str(server.data), "-A", "trust", "-U", "postgres",
            "--no-sync",
        )  # fmt: skip
        server.start()
        yield server
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


async def test_a_postgresql_restart_mid_call_loses_no_call_and_no_money(
    private_postgres: PrivatePostgres, tmp_path: Path
) -> None:
    database = Database(private_postgres.url, pool_pre_ping=True)  # its own reads, too
    await upgrade_database(database)
    with serve_app() as app:
        app.route("/answered", document({"pause": {"length": 8}}, {"hangup": {}}))
        try:
            async with Sipp(
                scenario=SIP_SCENARIOS / "uas_answer.xml", calls=2, timeout=90
            ) as callee:
                seeded = await seed(database, voice_url=app.url("/voice"), trunk_port=callee.port)
                nodes = [
                    ServeProcess(
                        tmp_path / name / "var",
                        private_postgres.url,
                        rtp_ports=ports,
                        env={"SAUTIKIT_NODE_ID": name, "SAUTIKIT_NODE_LEASE_SECONDS": "9"},
                    )
                    for name, ports in (("a", (32600, 32699)), ("b", (32700, 32799)))
                ]
                try:
                    for node in nodes:
                        await node.start()
                    call = {"to": CALLEE, "from": NUMBER, "action_url": app.url("/answered")}
                    async with nodes[0].api(seeded.headers) as api:
                        assert (await api.post("/v1/calls", json=call)).status_code == 201
                    for _ in range(300):
                        found = await calls(database)
                        if found and found[0].status == "answered":
                            break
                        await asyncio.sleep(0.1)
                    assert found[0].status == "answered", found[0].status
                    await asyncio.to_thread(private_postgres.restart)  # every connection cut
                    for _ in range(300):
                        found = await calls(database)
                        if found[0].status == "completed":
                            break
                        await asyncio.sleep(0.1)
                    assert (found[0].status, found[0].hangup_cause) == (
                        "completed",
                        "normal_clearing",
                    )
                    async with nodes[1].api(seeded.headers) as api:  # after it: a new call
                        for _ in range(50):
                            placed = await api.post("/v1/calls", json=call)
                            if placed.status_code == 201:
                                break
                            await asyncio.sleep(0.2)
                        assert placed.status_code == 201, placed.text
                    for _ in range(300):
                        found = await calls(database)
                        if len(found) == 2 and found[1].status == "completed":
                            break
                        await asyncio.sleep(0.1)
                    assert [call.status for call in found] == ["completed", "completed"]
                    result = await callee.wait()
                    assert result.returncode == 0, result.explain()
                finally:
                    for node in nodes:
                        await node.kill()
            async with database.sessions() as session:
                for row in found:
                    debits = await session.scalar(
                        select(func.count(WalletEntry.id)).where(
                            WalletEntry.call_id == row.id, WalletEntry.amount_minor < 0
                        )
                    )
                    assert debits == 1, row.id  # billed exactly once
                held = await session.scalar(select(func.count(WalletReservation.id)))
                assert held == 0
                recovered = (
                    await session.scalars(select(Node.id).where(Node.recovered_at.is_not(None)))
                ).all()
                assert recovered == []  # the restart declared no node dead
        finally:
            await database.close()
