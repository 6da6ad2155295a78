"""Run baresip (Debian ``baresip``), a real softphone Sautikit did not write, from tests.

Each :class:`Baresip` gets its own config folder: it listens on 127.0.0.1, speaks a WAV
(``aufile``) as its voice, auto-answers, and dumps what it sends and hears with
``sndfile`` (the ``*-dec.wav`` file is what it heard). Ports are spaced by two because
baresip also takes SIP port + 1 for TCP.

With ``control=True`` it is driven while it runs, as a user at its console would: commands
over its ``ctrl_tcp`` module (netstring JSON, :meth:`Baresip.control`), whose call and
registration events (:meth:`Baresip.expect_event`) are what a test waits for, and key
presses over its ``cons`` module (:meth:`Baresip.press`: DTMF has no long command in 1.0).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

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
        control: bool = False,
        ca: Path | None = None,
        srtp: Literal["mandatory"] | None = None,
    ) -> None:
        """``register`` (host, port, password) registers ``name`` there with digest auth,
        over ``transport`` (``udp``, ``tcp`` or ``tls``: then ``ca`` is the CA it trusts).
        ``audio_codecs`` is what it offers and accepts (baresip's names: ``PCMU``,
        ``G722/16000/1``, ``opus/48000/2``; Opus wants a two-channel 48 kHz voice file,
        G.722 a 16 kHz one).
        ``address`` is where it listens; ``wrap`` turns its command line into another
        (e.g. run inside a network namespace, where every port is free). ``control``: see
        the module's doc. ``srtp="mandatory"``: its calls use SRTP (SDES) or fail."""
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
        self.control_port = self.cons_port = 0
        if control:
            self.control_port = free_port(socket.SOCK_STREAM)
            self.cons_port = free_port()
            lines += [
                "module ctrl_tcp.so",
                "module cons.so",
                f"ctrl_tcp_listen 127.0.0.1:{self.control_port}",
                f"cons_listen 127.0.0.1:{self.cons_port}",
            ]
        if srtp is not None:  # before the account module, whose accounts name it
            lines.insert(lines.index("module account.so"), "module srtp.so")
        if ca is not None:
            lines.append(f"sip_cafile {ca}")
        (folder / "config").write_text("\n".join(lines) + "\n")
        if register is None:
            account = f"<sip:{name}@{address}:{self.port};transport=udp>;regint=0"
        else:
            host, port, password = register
            account = (
                f"<sip:{name}@{host}:{port};transport={transport}>;auth_pass={password};regint=60"
            )
        if srtp is not None:
            account += ";mediaenc=srtp-mand"
        (folder / "accounts").write_text(f"{account};answermode=auto;audio_codecs={audio_codecs}\n")
        self._process: asyncio.subprocess.Process | None = None
        self.seconds = 0.0
        self._control: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._events: list[dict[str, Any]] = []
        self._checked = 0
        self._arrived = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

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
        if not self.control_port:
            await asyncio.sleep(0.3)  # let it bind before anyone calls it
            return
        for _ in range(200):  # it is up once its control port answers
            with contextlib.suppress(OSError):
                self._control = await asyncio.open_connection("127.0.0.1", self.control_port)
                break
            if self._process.returncode is not None:
                break
            await asyncio.sleep(0.05)
        if self._control is None:
            self.kill()
            raise AssertionError(f"baresip did not start:\n{(await self.wait())[-3000:]}")
        self._reader = asyncio.create_task(self._read_events())

    async def _read_events(self) -> None:
        assert self._control is not None
        reader = self._control[0]
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:  # netstrings: "<length>:<json>,"
                length = int((await reader.readuntil(b":"))[:-1])
                message = json.loads(await reader.readexactly(length))
                await reader.readexactly(1)
                self._events.append(message)
                self._arrived.set()
        self._arrived.set()

    async def control(self, command: str, params: str = "") -> str:
        """Run a long command (``dial``, ``hangup``, ``hold``, ``resume``, ``transfer``,
        ``reginfo``…); answers what it printed."""
        assert self._control is not None, "start baresip with control=True"
        body = json.dumps({"command": command, "params": params, "token": command}).encode()
        self._control[1].write(str(len(body)).encode() + b":" + body + b",")
        await self._control[1].drain()
        answer = await self._expect(lambda m: m.get("response") and m.get("token") == command, 10)
        if not answer.get("ok"):
            raise AssertionError(f"baresip refused /{command} {params}: {answer.get('data')}")
        return str(answer.get("data", ""))

    async def wait_registered_itself(self, within: float = 20.0) -> None:
        """Wait until its own registration info says OK (it may have registered
        before the control connection was up, so the event alone is not enough)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not re.search(r"\bOK\b", _plain(info := await self.control("reginfo"))):
            if loop.time() > deadline:
                raise AssertionError(f"baresip did not register: {info}")
            with contextlib.suppress(AssertionError):
                await self.expect_event("REGISTER_OK", within=1)

    def press(self, keys: str) -> None:
        """Press keys at its console (in a call: DTMF)."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as console:
            console.sendto(keys.encode(), ("127.0.0.1", self.cons_port))

    async def expect_event(
        self, kind: str, *, param: str | None = None, within: float = 20.0
    ) -> dict[str, Any]:
        """Wait for the next event ``kind`` (``REGISTER_OK``, ``CALL_ESTABLISHED``,
        ``CALL_CLOSED``, …) after those an earlier wait matched."""

        def wanted(message: dict[str, Any]) -> bool:
            matches = message.get("event") and message.get("type") == kind
            return bool(matches and (param is None or message.get("param") == param))

        return await self._expect(wanted, within)

    async def _expect(
        self,
        wanted: Callable[[dict[str, Any]], Any],
        within: float,
    ) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            for index in range(self._checked, len(self._events)):
                found = self._events[index]
                if wanted(found):
                    if found.get("event"):
                        self._checked = index + 1
                    else:  # a command's answer is taken, so the next one is seen anew
                        del self._events[index]
                    return found
            if self._reader is None or self._reader.done():
                raise AssertionError(f"baresip exited; events: {self._events[-20:]}")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"baresip never reported it; events: {self._events[-20:]}")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)

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

    async def quit(self, within: float = 5.0) -> str:
        """Quit as a user would (``/quit``: it unregisters first), killed if it lingers;
        answers what it printed."""
        assert self._process is not None
        if self._control is not None and self._process.returncode is None:
            with contextlib.suppress(AssertionError, ConnectionError):
                await self.control("quit")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._process.wait(), within)
        self.kill()
        return await self.wait()

    def kill(self) -> None:
        if self._control is not None:
            self._control[1].close()
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


def _plain(text: str) -> str:
    """``text`` without the colour codes baresip prints."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)
