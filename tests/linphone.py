"""Run linphone-cli 5.1 (Debian ``linphone-cli``, ``linphonec``) from tests.

Each :class:`Linphone` gets its own HOME and ``linphonerc`` (random UDP and TCP ports, no
sound card needed) and is driven through linphonec's command line on stdin, as a user
would type: ``register <identity> <proxy> <password>``. ``config`` adds linphonerc
sections (e.g. TLS trust and SRTP); :meth:`Linphone.expect` waits for a line it prints.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
from pathlib import Path

import pytest

__all__ = ["LINPHONEC", "Linphone", "requires_linphone", "tls_srtp_config"]

LINPHONEC = shutil.which("linphonec")

requires_linphone = pytest.mark.skipif(
    LINPHONEC is None and not os.environ.get("CI"),
    reason="linphonec (Debian package linphone-cli) is not installed",
)


def tls_srtp_config(ca: Path) -> str:
    """linphonerc as docs/pbx.md tells a user: TLS, the CA trusted, SRTP mandatory."""
    return (
        "[sip]\n"
        "sip_tls_port=-1\n"
        f"root_ca={ca}\n"
        "verify_server_certs=1\n"
        "verify_server_cn=1\n"
        "media_encryption=srtp\n"
        "media_encryption_mandatory=1\n"
    )


class Linphone:
    """One linphonec. What it prints is read all along (into :attr:`seen`), so a phone
    that talks a lot (``debug``) never blocks on a full pipe while the test waits on
    another one."""

    def __init__(self, folder: Path, config: str = "") -> None:
        self.folder = folder
        (folder / ".local" / "share" / "linphone").mkdir(parents=True, exist_ok=True)
        self.config = folder / "linphonerc"
        # -1: a random port for UDP and TCP (0 would turn the transport off).
        sip = "[sip]\nsip_port=-1\nsip_tcp_port=-1\n"
        if config.startswith("[sip]\n"):
            sip, config = sip + config.removeprefix("[sip]\n"), ""
        self.config.write_text(sip + config)
        self._process: asyncio.subprocess.Process | None = None
        self._seen: list[str] = []
        self._printed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    async def start(self, *, debug: bool = False) -> None:
        """Start linphonec; ``debug`` makes it log everything (``-d 6``) to its output."""
        self._process = await asyncio.create_subprocess_exec(
            LINPHONEC or "linphonec",
            "-c",
            str(self.config),
            *(["-d", "6"] if debug else []),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "HOME": str(self.folder)},
        )
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        while raw := await self._process.stdout.readline():
            self._seen.append(raw.decode(errors="replace"))
            self._printed.set()
        self._printed.set()

    async def command(self, line: str) -> None:
        assert self._process is not None and self._process.stdin is not None
        self._process.stdin.write(line.encode() + b"\n")
        await self._process.stdin.drain()

    async def expect(self, pattern: str, within: float = 20.0) -> str:
        """Wait until linphonec prints a line matching ``pattern`` (a regex) after the
        lines an earlier :meth:`expect` matched."""
        wanted = re.compile(pattern)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            for index in range(self._checked, len(self._seen)):
                if wanted.search(self._seen[index]):
                    self._checked = index + 1
                    return self._seen[index]
            self._checked = len(self._seen)
            if self._reader is None or self._reader.done():
                raise AssertionError(f"linphonec exited before {pattern!r}:\n{self.seen[-3000:]}")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"linphonec never printed {pattern!r}:\n{self.seen[-3000:]}")
            self._printed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._printed.wait(), remaining)

    _checked = 0

    @property
    def seen(self) -> str:
        return "".join(self._seen)

    async def stop(self) -> str:
        """Quit (unregistering first) and return what linphonec printed."""
        process = self._process
        if process is None:
            return ""
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            await self.command("quit")
        try:
            await asyncio.wait_for(process.wait(), 15)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
        if self._reader is not None:
            await self._reader
        return self.seen
