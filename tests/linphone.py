"""Run linphone-cli 5.1 (Debian ``linphone-cli``, ``linphonec``) from tests.

Each :class:`Linphone` gets its own HOME and ``linphonerc`` (random UDP and TCP ports, no
sound card needed) and is driven through linphonec's command line on stdin, as a user
would type: ``register <identity> <proxy> <password>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from pathlib import Path

import pytest

__all__ = ["LINPHONEC", "Linphone", "requires_linphone"]

LINPHONEC = shutil.which("linphonec")

requires_linphone = pytest.mark.skipif(
    LINPHONEC is None and not os.environ.get("CI"),
    reason="linphonec (Debian package linphone-cli) is not installed",
)


class Linphone:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        (folder / ".local" / "share" / "linphone").mkdir(parents=True, exist_ok=True)
        self.config = folder / "linphonerc"
        # -1: a random port for UDP and TCP (0 would turn the transport off).
        self.config.write_text("[sip]\nsip_port=-1\nsip_tcp_port=-1\n")
        self._process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self._process = await asyncio.create_subprocess_exec(
            LINPHONEC or "linphonec",
            "-c",
            str(self.config),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "HOME": str(self.folder)},
        )

    async def command(self, line: str) -> None:
        assert self._process is not None and self._process.stdin is not None
        self._process.stdin.write(line.encode() + b"\n")
        await self._process.stdin.drain()

    async def stop(self) -> str:
        """Quit (unregistering first) and return what linphonec printed."""
        process = self._process
        if process is None:
            return ""
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            await self.command("quit")
        try:
            output, _ = await asyncio.wait_for(process.communicate(), 15)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            output, _ = await process.communicate()
        return output.decode(errors="replace")
