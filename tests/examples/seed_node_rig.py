"""A rig for examples/seed-node: Node apps as a developer runs them, against a real
``sautikit serve`` started and configured as an operator does (the CLI, then the API).

:func:`install_seed_node` copies the example to a folder and runs ``npm ci`` from its
committed lockfile. :class:`Server` is ``python -m sautikit serve`` in a process of its own
(SQLite under its data dir, recordings in a SeaweedFS bucket); :class:`NodeApp` is
``node <file>.js`` with its output kept, so a test can wait for what the app logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "seed-node"
SEED_PAGE = Path(__file__).parent / "fixtures" / "call-recording-use-case.txt"


def free_port(kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def install_seed_node(folder: Path) -> Path:
    """The example's files in ``folder``, with ``npm ci`` run there (the lockfile's
    versions exactly)."""
    for name in os.listdir(EXAMPLE):
        if name != "node_modules" and (EXAMPLE / name).is_file():
            shutil.copy2(EXAMPLE / name, folder / name)
    result = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--prefer-offline"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return folder


@dataclass
class Server:
    """``sautikit serve`` on ephemeral ports, and the operator's CLI on the same data."""

    data_dir: Path
    storage_url: str
    key: str = ""  # the workspace's API key, once the operator made it
    http_port: int = field(default_factory=free_port)
    sip_port: int = field(default_factory=lambda: free_port(socket.SOCK_DGRAM))
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SAUTIKIT_")}
        rtp = 36000 + (os.getpid() % 40) * 50
        env |= {
            "SAUTIKIT_DATA_DIR": str(self.data_dir),
            "SAUTIKIT_HTTP_PORT": str(self.http_port),
            "SAUTIKIT_SIP_PORT": str(self.sip_port),
            "SAUTIKIT_RTP_PORTS": f"{rtp}-{rtp + 49}",
            "SAUTIKIT_STORAGE_URL": self.storage_url,
            # The apps of these tests listen on loopback; the operator lets calls reach them.
            "SAUTIKIT_ALLOW_PRIVATE_HTTP": "true",
            "SAUTIKIT_LOG_LEVEL": "info",
            "COLUMNS": "200",
        }
        return env

    def cli(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "sautikit", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result.stdout.strip()

    async def start(self) -> None:
        log = (self.data_dir / "serve.log").open("wb")
        self.process = subprocess.Popen(  # noqa: ASYNC220 - Popen returns at once
            [sys.executable, "-m", "sautikit", "serve"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + 90
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                assert self.process.poll() is None, self.log()
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{self.url}/readyz")).status_code == 200:
                        return
                await asyncio.sleep(0.3)
        raise AssertionError(f"sautikit serve did not become ready:\n{self.log()}")

    def log(self) -> str:
        return (self.data_dir / "serve.log").read_text(errors="replace")[-6000:]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


class NodeApp:
    """``node <script>`` in the installed example folder, its output collected as it comes."""

    def __init__(self, folder: Path, script: str, env: Mapping[str, str]) -> None:
        self.folder = folder
        self.script = script
        self.port = free_port()
        self.env = {**os.environ, **env, "PORT": str(self.port)}
        self.output = ""
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> NodeApp:
        self._process = await asyncio.create_subprocess_exec(
            "node",
            self.script,
            cwd=self.folder,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        self._reader = asyncio.create_task(self._read())
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self._process.returncode is None, self.output
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return self
            await asyncio.sleep(0.1)
        raise AssertionError(f"node {self.script} did not listen on {self.port}:\n{self.output}")

    async def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        async for line in self._process.stdout:
            self.output += line.decode(errors="replace")

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def wait_for(self, text: str, seconds: float) -> str:
        """The first line of output containing ``text``, waiting up to ``seconds``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for line in self.output.splitlines():
                if text in line:
                    return line
            assert self.running, f"node {self.script} exited:\n{self.output}"
            await asyncio.sleep(0.2)
        raise AssertionError(f"node {self.script} never logged {text!r}:\n{self.output}")

    async def __aexit__(self, *exc_info: object) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.terminate()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(10):
                    await self._process.wait()
            if self._process.returncode is None:
                self._process.kill()
                await self._process.wait()
        if self._reader is not None:
            await self._reader


@contextlib.asynccontextmanager
async def running(server: Server) -> AsyncIterator[Server]:
    await server.start()
    try:
        yield server
    finally:
        await asyncio.to_thread(server.stop)
