"""Run baresip (Debian ``baresip``), a real softphone Sautikit did not write, from tests.

Each :class:`Baresip` gets its own config folder: it listens on 127.0.0.1, speaks a WAV
(``aufile``) as its voice, auto-answers, and dumps what it sends and hears with
``sndfile`` (the ``*-dec.wav`` file is what it heard). Ports are spaced by two because
baresip also takes SIP port + 1 for TCP.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from tests.sipp import free_port

__all__ = ["BARESIP", "Baresip", "requires_baresip"]

BARESIP = shutil.which("baresip")

requires_baresip = pytest.mark.skipif(
    BARESIP is None and not os.environ.get("CI"),
    reason="baresip (Debian package baresip) is not installed",
)

_MODULES = ("stdio", "g711", "g722", "opus", "aufile", "sndfile", "account", "menu", "uuid")


class Baresip:
    def __init__(
        self,
        folder: Path,
        name: str,
        voice: Path,
        rtp_ports: tuple[int, int],
        *,
        register: tuple[str, int, str] | None = None,
        address: str = "127.0.0.1",
        wrap: Callable[[Sequence[str]], list[str]] | None = None,
        transport: str = "udp",
        audio_codecs: str = "PCMU",
    ) -> None:
        """``register`` (host, port, password) registers ``name`` there with digest auth,
        over ``transport`` (``udp`` or ``tcp``). ``audio_codecs`` is what it offers and
        accepts (baresip's names: ``PCMU``, ``G722/16000/1``, ``opus/48000/2``; Opus wants a
        two-channel 48 kHz voice file, G.722 a 16 kHz one).
        ``address`` is where it listens; ``wrap`` turns its command line into another
        (e.g. run inside a network namespace, where every port is free)."""
        self.folder = folder
        self.name = name
        self.address = address
        self._wrap = wrap
        self.port = _free_pair() if wrap is None else 5060
        (folder / "snd").mkdir(parents=True, exist_ok=True)
        lines = [
            "poll_method epoll",
            f"sip_listen {address}:{self.port}",
            f"net_interface {address}",
            "module_path /usr/lib/baresip/modules",
            *(f"module {module}.so" for module in _MODULES),
            f"audio_source aufile,{voice}",
            "audio_player aufile,/dev/null",
            "audio_alert aufile,/dev/null",
            f"snd_path {folder / 'snd'}",
            f"rtp_ports {rtp_ports[0]}-{rtp_ports[1]}",
        ]
        (folder / "config").write_text("\n".join(lines) + "\n")
        if register is None:
            account = f"<sip:{name}@{address}:{self.port};transport=udp>;regint=0"
        else:
            host, port, password = register
            account = (
                f"<sip:{name}@{host}:{port};transport={transport}>;auth_pass={password};regint=60"
            )
        (folder / "accounts").write_text(f"{account};answermode=auto;audio_codecs={audio_codecs}\n")
        self._process: asyncio.subprocess.Process | None = None
        self.seconds = 0.0

    @property
    def uri(self) -> str:
        return f"sip:{self.name}@{self.address}:{self.port}"

    async def start(self, seconds: float, dial: str | None = None) -> None:
        """Run for ``seconds`` (then baresip hangs up and quits), dialling ``dial`` if given."""
        self.seconds = seconds
        command = [BARESIP or "baresip", "-f", str(self.folder), "-t", str(int(seconds))]
        if dial is not None:
            command += ["-e", f"/dial {dial}"]
        if self._wrap is not None:
            command = self._wrap(command)
        self._process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        await asyncio.sleep(0.3)  # let it bind before anyone calls it

    async def wait(self) -> str:
        """Wait for baresip to quit (its ``-t`` limit); kill it if it overstays."""
        assert self._process is not None
        try:
            async with asyncio.timeout(self.seconds + 10):
                output, _ = await self._process.communicate()
        except TimeoutError:
            self.kill()
            raise
        return output.decode(errors="replace")

    async def wait_registered(self, registered: Callable[[], bool], seconds: float = 20) -> None:
        """Wait until ``registered()`` holds; else stop baresip and fail with what it said."""
        for _ in range(int(seconds * 10)):
            if registered():
                return
            await asyncio.sleep(0.1)
        self.kill()
        output = await self.wait()
        raise AssertionError(f"baresip did not register; it said:\n{output[-3000:]}")

    def kill(self) -> None:
        if self._process is not None and self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._process.kill()

    def heard(self) -> Path:
        """The WAV of what this phone heard in its (single) call."""
        (dump,) = sorted((self.folder / "snd").glob("*-dec.wav"))
        return dump


def _free_pair() -> int:
    """A free UDP port whose successor is free too (baresip takes it for TCP)."""
    while True:
        port = free_port()
        if port < 65535 and _is_free(port + 1):
            return port


def _is_free(port: int) -> bool:
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True
