"""Run the real SIPp binary (Debian ``sip-tester``) from asyncio tests.

SIPp is a peer Sautikit did not write, so tests that pass against it say something about
interoperability. This helper builds the command line, runs SIPp as a child process with
:func:`asyncio.create_subprocess_exec` (the test's event loop keeps serving our own SIP
stack meanwhile; ``-bg`` is never used) and kills it when it overstays.

Two ways to use it::

    result = await Sipp(scenario="uac", remote=("127.0.0.1", ua_port)).run()
    assert result.returncode == 0, result.explain()

    async with Sipp(scenario=SCENARIOS / "uas_answer.xml") as sipp:   # SIPp as callee
        call = await ua.place_call(f"sip:bob@127.0.0.1:{sipp.port}", ...)
        result = await sipp.wait()

(``async with`` starts SIPp and kills it on the way out if the test failed first.)

``scenario`` is a built-in name (``uac``, ``uas``, ... passed as ``-sn``) or a path to an
XML file (``-sf``). SIPp runs in ``workdir`` (default: a new temporary folder), where
its ``-trace_stat`` CSV (:attr:`SippResult.stats`) and ``-trace_err`` log
(:attr:`SippResult.errors`) land. Its port is picked free on 127.0.0.1 unless given, and
so is its media port (``-mp``), so tests can run side by side. A pick can race with
another process (SIPp binds its SIP socket first and its audio and video ports after
it), so :meth:`Sipp.start` waits until SIPp itself holds its ports and starts it again on
new ones when it exits with a bind error. Exit codes, from SIPp's
manual: 0 every call succeeded, 1 at least one call failed, 97 exit on an internal
command, 99 normal exit with no call processed, 255/254 fatal errors.

Skip marker for tests: :data:`requires_sipp` skips where SIPp is missing, except under CI
(``CI`` set), where a missing SIPp must fail the run instead of hiding the tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

__all__ = [
    "SCENARIOS",
    "SIPP",
    "Sipp",
    "SippResult",
    "free_port",
    "requires_sipp",
    "sipp_with_tls",
]

#: The SIPp binary, or None where it is not installed.
SIPP = shutil.which("sipp")

#: The SIP scenarios shipped with the tests.
SCENARIOS = Path(__file__).parent / "sip" / "scenarios"

requires_sipp = pytest.mark.skipif(
    SIPP is None and not os.environ.get("CI"),
    reason="SIPp is not installed (Debian package sip-tester)",
)

_BUILT_IN = frozenset({"uac", "uas", "regexp", "3pcc-C-A", "3pcc-C-B", "3pcc-A", "3pcc-B"})
_BUILT_IN |= {"branchc", "branchs", "uac_pcap"}


def sipp_with_tls() -> str | None:
    """A SIPp built with OpenSSL (``-t l1``): ``SAUTIKIT_TEST_SIPP_TLS``, else the system's
    if it has TLS (Debian's 3.6.1 has not). None when there is none."""
    candidates = [
        os.environ.get("SAUTIKIT_TEST_SIPP_TLS"),
        SIPP,
    ]
    for candidate in candidates:
        if not candidate or not os.access(candidate, os.X_OK):
            continue
        try:
            version = subprocess.run(
                [candidate, "-v"], capture_output=True, text=True, timeout=10, check=False
            ).stdout
        except OSError:
            continue
        if "-TLS" in version:
            return candidate
    return None


def free_port(kind: socket.SocketKind = socket.SOCK_DGRAM) -> int:
    """A port free on 127.0.0.1 right now, for a child process to bind (tiny race)."""
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _free_media_port() -> int:
    """A UDP port free on 127.0.0.1 with the port two above it free too: SIPp's ``-mp``
    audio port and the video port it binds beside it."""
    for _ in range(100):
        port = free_port()
        if port + 2 > 65535:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as video:
            try:
                video.bind(("127.0.0.1", port + 2))
            except OSError:
                continue
        return port
    raise RuntimeError("no UDP port pair is free on 127.0.0.1")


#: SIPp's exit code for "Fatal error binding a socket" (its -2).
_EXIT_BIND_ERROR = 254
#: Attempts at starting SIPp on freshly picked ports before a bind error fails the test.
_START_ATTEMPTS = 5


def _bound_ports(pid: int) -> set[int]:
    """Local ports of the sockets process ``pid`` holds, in its own network namespace."""
    inodes: set[str] = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    except OSError:
        return set()
    ports: set[int] = set()
    for table in ("udp", "tcp", "udp6", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


@dataclass
class SippResult:
    """What a SIPp run left behind: exit code, output and its statistics."""

    returncode: int
    stdout: str
    stderr: str
    workdir: Path
    #: The last row of the ``-trace_stat`` CSV (column → value), empty without one.
    stats: dict[str, str] = field(default_factory=dict)
    #: The ``-trace_err`` log: every unexpected message SIPp saw.
    errors: str = ""
    timed_out: bool = False

    def counter(self, name: str) -> int:
        """A cumulative counter of the statistics, e.g. ``counter("SuccessfulCall")``."""
        return int(self.stats.get(f"{name}(C)", "0") or 0)

    @property
    def successful_calls(self) -> int:
        return self.counter("SuccessfulCall")

    @property
    def failed_calls(self) -> int:
        return self.counter("FailedCall")

    def explain(self) -> str:
        """A readable summary for assertion messages."""
        return (
            f"sipp exited {self.returncode}{' (killed on timeout)' if self.timed_out else ''}\n"
            f"errors:\n{self.errors[-3000:]}\nstderr:\n{self.stderr[-2000:]}\n"
            f"stdout:\n{self.stdout[-2000:]}"
        )


class Sipp:
    """One SIPp process; see the module docstring.

    ``remote`` is the ``(host, port)`` SIPp calls or registers to (omit it for a callee).
    ``transport`` is SIPp's ``-t`` mode (``u1`` one UDP socket, ``t1`` one TCP
    connection). ``keys`` become ``-key name value`` for ``[name]`` in scenarios;
    ``extra`` is appended to the command line as is. ``workdir`` (default: a new
    temporary folder) is SIPp's working folder, where its logs land. ``binary`` is another
    SIPp build (e.g. one with TLS: :func:`sipp_with_tls`).
    """

    def __init__(
        self,
        *,
        scenario: str | Path,
        remote: tuple[str, int] | None = None,
        calls: int = 1,
        port: int | None = None,
        timeout: float = 10.0,
        transport: str = "u1",
        service: str | None = None,
        keys: dict[str, str] | None = None,
        trace_stat: bool = True,
        trace_err: bool = True,
        extra: Sequence[str] = (),
        workdir: Path | None = None,
        local: str = "127.0.0.1",
        wrap: Callable[[Sequence[str]], list[str]] | None = None,
        binary: str | None = None,
    ) -> None:
        self.scenario = scenario
        self.binary = binary or SIPP or "sipp"
        self.local = local
        self._wrap = wrap
        # t: TCP, l: TLS (over TCP); u: UDP.
        self._kind = socket.SOCK_STREAM if transport.startswith(("t", "l")) else socket.SOCK_DGRAM
        self._port_given = port is not None
        self.port = port if port is not None else free_port(self._kind)
        self.media_port = _free_media_port()
        self.timeout = timeout
        self.workdir = workdir if workdir is not None else Path(tempfile.mkdtemp(prefix="sipp-"))
        self._arguments = (
            remote,
            calls,
            transport,
            service,
            keys or {},
            trace_stat,
            trace_err,
            extra,
        )
        self.command = self._build_command()
        self._process: asyncio.subprocess.Process | None = None
        # Output of a SIPp that ended while start() watched it (wait() reports it).
        self._early_output: tuple[bytes, bytes] | None = None

    def _build_command(self) -> list[str]:
        command = self._command(*self._arguments)
        return self._wrap(command) if self._wrap is not None else command

    def _command(
        self,
        remote: tuple[str, int] | None,
        calls: int,
        transport: str,
        service: str | None,
        keys: dict[str, str],
        trace_stat: bool,
        trace_err: bool,
        extra: Sequence[str],
    ) -> list[str]:
        scenario = str(self.scenario)
        if isinstance(self.scenario, Path) or scenario not in _BUILT_IN:
            command = [self.binary, "-sf", str(Path(scenario).resolve())]
        else:
            command = [self.binary, "-sn", scenario]
        if remote is not None:
            command.append(f"{remote[0]}:{remote[1]}")
        command += ["-i", self.local, "-p", str(self._port), "-t", transport]
        command += ["-mp", str(self.media_port), "-m", str(calls), "-nostdin"]
        # -timeout ends a stuck run; -timeout_error makes that run a failure (exit 1).
        command += ["-timeout", f"{self.timeout}s", "-timeout_error"]
        if service is not None:
            command += ["-s", service]
        for name, value in keys.items():
            command += ["-key", name, value]
        if trace_stat:
            command += ["-trace_stat", "-stf", str(self.workdir / "stat.csv")]
        if trace_err:
            command += ["-trace_err", "-error_file", str(self.workdir / "errors.log")]
        return command + list(extra)

    async def start(self) -> None:
        """Start SIPp and return once it holds its ports (or has already ended).

        A port another process took between our pick and SIPp's bind makes SIPp exit
        with a bind error; it is then started again on new ports (the SIP port only if
        no one has read :attr:`port` yet, so nothing was told the old one)."""
        for attempt in range(_START_ATTEMPTS):
            self._early_output = None
            self._process = await asyncio.create_subprocess_exec(
                *self.command,
                cwd=self.workdir,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            await self._until_bound(self._process)
            if self._process.returncode != _EXIT_BIND_ERROR or attempt + 1 == _START_ATTEMPTS:
                return
            self._early_output = await self._process.communicate()
            stderr = self._early_output[1].decode(errors="replace")
            if "main socket" in stderr or "server socket" in stderr:
                if self._port_given or self._port_read:
                    return
                self._port = free_port(self._kind)
            elif "RTP socket" not in stderr:
                return
            self.media_port = _free_media_port()
            self.command = self._build_command()

    async def _until_bound(self, process: asyncio.subprocess.Process) -> None:
        """Wait (up to 5 s) until ``process`` holds its SIP and media ports or has ended."""
        wanted = {self.media_port, self.media_port + 2}
        if self._kind == socket.SOCK_DGRAM:
            wanted.add(self._port)
        for _ in range(250):
            if process.returncode is not None or wanted <= _bound_ports(process.pid):
                return
            await asyncio.sleep(0.02)

    @property
    def port(self) -> int:
        """SIPp's SIP port (fixed once read: see :meth:`start`)."""
        self._port_read = True
        return self._port

    @port.setter
    def port(self, value: int) -> None:
        self._port = value
        self._port_read = False

    async def wait(self, grace: float = 5.0) -> SippResult:
        """Wait for SIPp to finish (its own ``timeout`` plus ``grace``), killing it after."""
        process = self._process
        if process is None:
            raise RuntimeError("start SIPp first")
        timed_out = False
        try:
            if self._early_output is not None:
                stdout, stderr = self._early_output
            else:
                stdout, stderr = await asyncio.wait_for(process.communicate(), self.timeout + grace)
        except TimeoutError:
            timed_out = True
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            stdout, stderr = await process.communicate()
        return SippResult(
            returncode=process.returncode if process.returncode is not None else -1,
            stdout=stdout.decode(errors="replace"),
            stderr=stderr.decode(errors="replace"),
            workdir=self.workdir,
            stats=self._stats(),
            errors=self._read("errors.log"),
            timed_out=timed_out,
        )

    async def __aenter__(self) -> Sipp:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def run(self) -> SippResult:
        """Start SIPp, wait for it to finish and return what it reported."""
        await self.start()
        try:
            return await self.wait()
        finally:
            await self.stop()

    async def stop(self) -> None:
        """Kill SIPp if it still runs (for test teardown)."""
        process = self._process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.communicate()

    def _read(self, name: str) -> str:
        path = self.workdir / name
        return path.read_text(errors="replace") if path.exists() else ""

    def _stats(self) -> dict[str, str]:
        rows = list(csv.reader(self._read("stat.csv").splitlines(), delimiter=";"))
        if len(rows) < 2:
            return {}
        return dict(zip(rows[0], rows[-1], strict=False))
