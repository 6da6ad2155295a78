"""Call setup on the full ``sautikit serve`` path (issue 11, item 7).

Each trial starts, on loopback, everything a carrier call touches and stops it again:

* ``sautikit serve`` as its own process (a fresh data directory; SQLite, or a fresh
  PostgreSQL database), seeded with a workspace, the number ``+254700000001`` whose
  ``voice_url`` is the app below, a funded wallet and a carrier trunk to the callee;
* the app, a real HTTP server in this process (uvicorn): every call's first request is
  answered with ``dial`` to ``+254720000001`` with ``record: record-from-answer`` and the
  caller's number as caller id; the app times its own answers;
* SIPp as callee on the trunk: answers at once (180 then 200) and echoes RTP;
* SIPp as caller: ``--rate`` calls per second for ``--seconds`` seconds, each plays the
  A-law speech capture that ships with SIPp into its leg, holds ``--hold`` seconds, hangs up.

Both SIPp processes stamp the wall clock (``gettimeofday``) when the caller sends the
INVITE and receives 100, 180 and 200, and when the callee receives its INVITE (matched to
the caller by the caller id). From those: INVITE→100/180/200 at the caller and INVITE→INVITE
at the callee, p50/p95/p99. *Setup overhead* is INVITE→callee INVITE minus the app's own
answer time (p50 of each). A call *failed* when the caller saw no 200, or the call did not
end cleanly. The serve process's log is searched for ``database is locked`` and pool
timeouts, and its ``/metrics`` give the event loop's lag over the trial.

    # 10, 50, 100 and 200 calls/s on both engines, then the search for the ceiling:
    .venv/bin/python benchmarks/call_setup.py
    .venv/bin/python benchmarks/call_setup.py --engine sqlite --rate 50 --seconds 5 --no-search

Figures depend on the machine: run it where nothing else runs, and note ``uptime``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import uvicorn

from sautikit import accounts
from sautikit.billing.ledger import top_up
from sautikit.db import Database, upgrade_database
from sautikit.db.models import Number, Trunk
from sautikit.db.types import utcnow

SIPP = shutil.which("sipp") or "sipp"
SPEECH_PCAP = Path("/usr/share/sip-tester/g711a.pcap")
NUMBER = "+254700000001"
CALLEE = "+254720000001"
POSTGRES = os.environ.get("SAUTIKIT_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
RTP_PORTS = "24000-27999"
"""Below Linux's ephemeral range (so no SIPp socket lands on a leg's port) and apart from
benchmarks/pbx_calls.py's range."""
MAX_FAILED = 0.01

_STAMP = '<gettimeofday assign_to="s,u"/>'

CALLER_SCENARIO = f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="call setup caller">
  <send retrans="500">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=z9hG4bK-[pid]-[call_number]-i
      From: <sip:+254711[call_number]@[local_ip]:[local_port]>;tag=[pid]cs[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:sipp@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 8 0 101
      a=rtpmap:8 PCMA/8000
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
    ]]>
    <action>{_STAMP}<log message="INVITE [call_number] [$s] [$u]"/></action>
  </send>
  <recv response="100" optional="true">
    <action>{_STAMP}<log message="100 [call_number] [$s] [$u]"/></action>
  </recv>
  <recv response="180" optional="true">
    <action>{_STAMP}<log message="180 [call_number] [$s] [$u]"/></action>
  </recv>
  <recv response="183" optional="true"/>
  <recv response="503" optional="true" next="refused">
    <action>{_STAMP}<log message="503 [call_number] [$s] [$u]"/></action>
  </recv>
  <recv response="200">
    <action>{_STAMP}<log message="200 [call_number] [$s] [$u]"/></action>
  </recv>
  <send>
    <![CDATA[
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:+254711[call_number]@[local_ip]:[local_port]>;tag=[pid]cs[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <nop><action><exec play_pcap_audio="{SPEECH_PCAP}"/></action></nop>
  <pause/>
  <send retrans="500">
    <![CDATA[
      BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:+254711[call_number]@[local_ip]:[local_port]>;tag=[pid]cs[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <recv response="200" crlf="true">
    <action>{_STAMP}<log message="END [call_number] [$s] [$u]"/></action>
  </recv>
  <nop next="done"/>
  <label id="refused"/>
  <send>
    <![CDATA[
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=z9hG4bK-[pid]-[call_number]-i
      From: <sip:+254711[call_number]@[local_ip]:[local_port]>;tag=[pid]cs[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <label id="done"/>
</scenario>
"""

CALLEE_SCENARIO = f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="call setup callee">
  <recv request="INVITE" crlf="true">
    <action>
      <ereg regexp="sip:\\+?([0-9]+)@" search_in="hdr" header="From:" assign_to="from,caller"/>
      {_STAMP}<log message="INVITE [$caller] [$s] [$u]"/>
    </action>
  </recv>
  <Reference variables="from"/>
  <send>
    <![CDATA[
      SIP/2.0 180 Ringing
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]ce[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:callee@[local_ip]:[local_port]>
      Content-Length: 0
    ]]>
  </send>
  <send retrans="500">
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]ce[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:callee@[local_ip]:[local_port]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 8
      a=rtpmap:0 PCMU/8000
      a=rtpmap:8 PCMA/8000
    ]]>
  </send>
  <recv request="ACK" crlf="true"/>
  <recv request="BYE"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
  <timewait milliseconds="2000"/>
</scenario>
"""


def free_port(kind: socket.SocketKind = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (``/proc/PID/stat``, fields 14 and 15)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


def percentiles(values: list[float]) -> dict[str, float | None]:
    """p50/p95/p99 in milliseconds (None without samples)."""
    if not values:
        return {"p50": None, "p95": None, "p99": None, "n": 0}
    ordered = sorted(values)

    def at(share: float) -> float:
        return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]

    return {"p50": at(0.50), "p95": at(0.95), "p99": at(0.99), "n": len(ordered)}


# --- the app --------------------------------------------------------------------------------


class App:
    """The developer's app: answers every voice request with a recorded dial."""

    def __init__(self) -> None:
        self.answer_ms: list[float] = []
        self.requests = 0
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        try:
            fields = json.loads(body) if body else {}
        except ValueError:
            fields = {}
        self.requests += 1
        if scope["path"] == "/voice" and fields.get("CallStatus", "ringing") != "completed":
            document = {
                "actions": [
                    {
                        "dial": {
                            "number": CALLEE,
                            "record": "record-from-answer",
                            "callerId": fields.get("From", NUMBER),
                        }
                    }
                ]
            }
            content = json.dumps(document).encode()
            status = 200
        else:  # the recording callback and anything else: no more actions
            content, status = b"", 204
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})
        if scope["path"] == "/voice":
            self.answer_ms.append((time.perf_counter() - started) * 1000)

    async def start(self) -> None:
        config = uvicorn.Config(
            self, host="127.0.0.1", port=0, log_level="error", lifespan="off", access_log=False
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:  # uvicorn has no start-up event to await
            if self._task.done():
                raise RuntimeError("the app did not start")
            await asyncio.sleep(0.02)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task


# --- the database ---------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def fresh_database(engine: str, data_dir: Path) -> Any:
    """A database URL for one trial: a SQLite file, or a new PostgreSQL database."""
    if engine == "sqlite":
        yield f"sqlite+aiosqlite:///{data_dir / 'sautikit.db'}"
        return
    name = f"bench_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(POSTGRES)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
        base = POSTGRES.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        yield f"{base}/{name}"
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()


async def seed(url: str, app_url: str, callee_port: int) -> None:
    database = Database(url)
    try:
        await upgrade_database(database)
        async with database.transaction() as session:
            workspace = await accounts.create_workspace(session, "call-setup benchmark")
            workspace.max_concurrent_calls = 1_000_000
            workspace.max_calls_per_second = 1_000_000
            session.add(
                Number(
                    e164=NUMBER,
                    monthly_price_minor=0,
                    status="active",
                    workspace_id=workspace.id,
                    voice_url=app_url,
                    claimed_at=utcnow(),
                    paid_until=utcnow() + timedelta(days=30),
                )
            )
            session.add(
                Trunk(
                    name="carrier",
                    host="127.0.0.1",
                    port=callee_port,
                    prefixes=["+254"],
                    inbound_addresses=["127.0.0.1"],
                )
            )
            await session.flush()
            await top_up(session, workspace.id, 10**12, idempotency_key="benchmark")
    finally:
        await database.close()


# --- one trial ------------------------------------------------------------------------------


@dataclass
class Trial:
    engine: str
    offered_cps: float
    calls: int
    load_average: str
    answered: int = 0
    refused_503: int = 0
    failed: int = 0
    failed_share: float = 0.0
    invite_to_100: dict[str, float | None] = field(default_factory=dict)
    invite_to_180: dict[str, float | None] = field(default_factory=dict)
    invite_to_200: dict[str, float | None] = field(default_factory=dict)
    invite_to_callee_invite: dict[str, float | None] = field(default_factory=dict)
    app_answer: dict[str, float | None] = field(default_factory=dict)
    setup_overhead_p50_ms: float | None = None
    loop_lag: dict[str, float | None] = field(default_factory=dict)
    database_locked: int = 0
    pool_timeouts: int = 0
    tracebacks: int = 0
    achieved_cps: float = 0.0
    cpu_ms_per_call: float | None = None
    """CPU time of the serve process from the first INVITE until every call ended, over the
    calls placed: far less sensitive to other load on the machine than the latencies."""

    @property
    def held(self) -> bool:
        return self.failed_share < MAX_FAILED


def _stamps(log: Path) -> dict[str, dict[str, float]]:
    """``{event: {call: unix time}}`` from a SIPp log of ``EVENT CALL SECONDS MICROS``."""
    found: dict[str, dict[str, float]] = {}
    if not log.exists():
        return found
    for line in log.read_text(errors="replace").splitlines():
        parts = line.split()
        if len(parts) != 4:
            continue
        event, call, seconds, micros = parts
        with contextlib.suppress(ValueError):
            found.setdefault(event, {}).setdefault(call, float(seconds) + float(micros) / 1e6)
    return found


def _between(start: dict[str, float], end: dict[str, float]) -> list[float]:
    return [(end[call] - start[call]) * 1000 for call in end if call in start]


_LAG_BUCKETS = re.compile(r'^sautikit_event_loop_lag_seconds_bucket\{le="([^"]+)"\} ([0-9.e+-]+)$')


def _lag_buckets(metrics: str) -> dict[float, float]:
    buckets: dict[float, float] = {}
    for line in metrics.splitlines():
        match = _LAG_BUCKETS.match(line)
        if match:
            bound = math.inf if match.group(1) == "+Inf" else float(match.group(1))
            buckets[bound] = float(match.group(2))
    return buckets


def _lag_quantiles(
    before: dict[float, float], after: dict[float, float]
) -> dict[str, float | None]:
    """p50/p99 of the loop lag (ms) over the trial: the upper bound of the bucket that holds
    the quantile (the histogram's resolution)."""
    counts = {bound: after.get(bound, 0.0) - before.get(bound, 0.0) for bound in after}
    total = counts.get(math.inf, 0.0)
    if not total:
        return {"p50": None, "p99": None, "samples": 0}
    answer: dict[str, float | None] = {"samples": total}
    for name, share in (("p50", 0.50), ("p99", 0.99)):
        bound = next(b for b in sorted(counts) if counts[b] >= share * total)
        answer[name] = None if bound == math.inf else bound * 1000
    return answer


async def _metrics(http: httpx.AsyncClient) -> str:
    with contextlib.suppress(httpx.HTTPError):
        answer = await http.get("/metrics")
        if answer.status_code == 200:
            return answer.text
    return ""


def _sipp(arguments: list[str], workdir: Path, name: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [SIPP, *arguments, "-nostdin"],
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        stdout=(workdir / f"{name}.out").open("wb"),
        stderr=subprocess.STDOUT,
    )


def _profile(
    pid: int, args: argparse.Namespace, engine: str, rate: float
) -> subprocess.Popen[bytes] | None:
    """py-spy on the serve process while calls are placed (``--py-spy FOLDER``), as
    collapsed stacks: ``FOLDER/ENGINE-RATE.txt``."""
    if not args.py_spy:
        return None
    folder = Path(args.py_spy)
    folder.mkdir(parents=True, exist_ok=True)
    output = folder / f"{engine}-{rate:g}.txt"
    return subprocess.Popen(
        [
            *("py-spy", "record", "--pid", str(pid), "--format", "raw", "--rate", "200"),
            *("--nonblocking", "--output", str(output)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _stop(process: subprocess.Popen[bytes], sig: int = signal.SIGUSR1) -> None:
    """SIPp quits cleanly (flushing its logs) on SIGUSR1; anything else is killed."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def trial(engine: str, rate: float, args: argparse.Namespace) -> Trial:
    calls = max(1, round(rate * args.seconds))
    result = Trial(engine, rate, calls, load_average())
    workdir = Path(tempfile.mkdtemp(prefix="call-setup-"))
    (workdir / "caller.xml").write_text(CALLER_SCENARIO)
    (workdir / "callee.xml").write_text(CALLEE_SCENARIO)
    app = App()
    await app.start()
    callee_port = free_port()
    serve: subprocess.Popen[bytes] | None = None
    callee = caller = None
    try:
        async with fresh_database(engine, workdir / "var") as url:
            (workdir / "var").mkdir(exist_ok=True)
            await seed(url, f"http://127.0.0.1:{app.port}/voice", callee_port)
            environment = dict(
                os.environ,
                SAUTIKIT_DATA_DIR=str(workdir / "var"),
                SAUTIKIT_DATABASE_URL=url,
                SAUTIKIT_RTP_PORTS=args.rtp_ports,
                SAUTIKIT_ALLOW_PRIVATE_HTTP="true",
                SAUTIKIT_SECRET_KEY="call-setup-benchmark",
                SAUTIKIT_NODE_ID="benchmark",
                SAUTIKIT_LOG_LEVEL="warning",
                SAUTIKIT_SHUTDOWN_GRACE_SECONDS="2",
                SAUTIKIT_CONFIG_FILE=str(workdir / "none.toml"),
                SAUTIKIT_REALTIME_PRIORITY="true" if args.realtime else "false",
            )
            serve, http_port, sip_port = await _start_serve(environment, workdir)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}") as http:
                callee = _sipp(
                    [
                        *("-sf", "callee.xml", "-i", "127.0.0.1", "-p", str(callee_port)),
                        *("-t", "u1", "-mp", str(free_port()), "-rtp_echo"),
                        *("-trace_logs", "-log_file", "callee.log"),
                        *("-trace_err", "-error_file", "callee-errors.log"),
                    ],
                    workdir,
                    "callee",
                )
                await asyncio.sleep(0.5)
                before = _lag_buckets(await _metrics(http))
                profiler = _profile(serve.pid, args, engine, rate)
                cpu_before = cpu_seconds(serve.pid)
                started = time.monotonic()
                caller = _sipp(
                    [
                        *("-sf", "caller.xml", f"127.0.0.1:{sip_port}", "-s", NUMBER),
                        *("-i", "127.0.0.1", "-p", str(free_port()), "-t", "u1"),
                        *("-mp", str(free_port()), "-r", str(rate), "-rp", "1000"),
                        *("-m", str(calls), "-d", str(int(args.hold * 1000))),
                        *("-recv_timeout", "20000", "-timeout", f"{int(args.seconds + 60)}s"),
                        *("-trace_logs", "-log_file", "caller.log"),
                        *("-trace_stat", "-stf", "caller-stat.csv", "-fd", "1"),
                        *("-trace_err", "-error_file", "caller-errors.log"),
                    ],
                    workdir,
                    "caller",
                )
                await asyncio.to_thread(caller.wait)
                elapsed = time.monotonic() - started
                await asyncio.sleep(1.0)  # the last calls' end-of-call writes
                result.cpu_ms_per_call = (cpu_seconds(serve.pid) - cpu_before) * 1000 / calls
                if profiler is not None:
                    _stop(profiler, signal.SIGINT)
                result.loop_lag = _lag_quantiles(before, _lag_buckets(await _metrics(http)))
            _stop(callee)
            stamps = _stamps(workdir / "caller.log")
            at_callee = _stamps(workdir / "callee.log")
            # The callee sees the caller's number (+254711N) as its caller id.
            callee_invites = {
                caller_id.removeprefix("254711"): moment
                for caller_id, moment in at_callee.get("INVITE", {}).items()
            }
            invites = stamps.get("INVITE", {})
            result.answered = len(stamps.get("200", {}))
            result.refused_503 = len(stamps.get("503", {}))
            ended = len(stamps.get("END", {}))
            result.failed = calls - ended
            result.failed_share = result.failed / calls
            result.achieved_cps = round(len(invites) / max(elapsed - args.hold, 1e-3), 1)
            result.invite_to_100 = percentiles(_between(invites, stamps.get("100", {})))
            result.invite_to_180 = percentiles(_between(invites, stamps.get("180", {})))
            result.invite_to_200 = percentiles(_between(invites, stamps.get("200", {})))
            result.invite_to_callee_invite = percentiles(_between(invites, callee_invites))
            result.app_answer = percentiles(app.answer_ms)
            to_callee = result.invite_to_callee_invite["p50"]
            app_p50 = result.app_answer["p50"]
            if to_callee is not None and app_p50 is not None:
                result.setup_overhead_p50_ms = to_callee - app_p50
    finally:
        for process in (caller, callee):
            if process is not None:
                _stop(process)
        if serve is not None:
            serve.send_signal(signal.SIGTERM)
            try:
                serve.wait(30)
            except subprocess.TimeoutExpired:
                serve.kill()
                serve.wait()
        await app.stop()
    log_path = workdir / "serve.log"
    log = log_path.read_text(errors="replace") if log_path.exists() else ""
    result.database_locked = log.count("database is locked")
    result.pool_timeouts = log.count("QueuePool limit")
    result.tracebacks = log.count("Traceback")
    if args.keep:
        print(f"  (kept {workdir})", flush=True)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return result


def _spawn_serve(environment: dict[str, str], workdir: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "sautikit", "serve"],
        cwd=workdir,
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=(workdir / "serve.log").open("ab"),
        stderr=subprocess.STDOUT,
    )


async def _start_serve(
    environment: dict[str, str], workdir: Path
) -> tuple[subprocess.Popen[bytes], int, int]:
    """Start ``sautikit serve`` on free ports (again, should another process take one
    first); answers the process, its HTTP port and its SIP port once it is ready."""
    for _ in range(5):
        http_port, sip_port = free_port(socket.SOCK_STREAM), free_port(socket.SOCK_STREAM)
        environment = dict(
            environment, SAUTIKIT_HTTP_PORT=str(http_port), SAUTIKIT_SIP_PORT=str(sip_port)
        )
        serve = _spawn_serve(environment, workdir)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}") as http:
            for _ in range(600):
                if serve.poll() is not None:
                    break
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get("/readyz")).status_code == 200:
                        return serve, http_port, sip_port
                await asyncio.sleep(0.1)
        if serve.poll() is None:
            serve.kill()
            raise RuntimeError("sautikit serve did not become ready within 60 s")
    raise RuntimeError(f"sautikit serve would not start: see {workdir / 'serve.log'}")


# --- reporting and the search ---------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def _row(result: Trial) -> str:
    def trio(figures: dict[str, float | None]) -> str:
        return "/".join(_ms(figures.get(name)) for name in ("p50", "p95", "p99"))

    return (
        f"| {result.engine:10} | {result.offered_cps:6.0f} | {result.achieved_cps:6.1f} "
        f"| {100 * result.failed_share:5.1f} % | {trio(result.invite_to_100):>17} "
        f"| {trio(result.invite_to_180):>17} | {trio(result.invite_to_200):>17} "
        f"| {trio(result.invite_to_callee_invite):>17} | {trio(result.app_answer):>14} "
        f"| {_ms(result.setup_overhead_p50_ms):>6} "
        f"| {_ms(result.loop_lag.get('p50'))}/{_ms(result.loop_lag.get('p99'))} "
        f"| {result.database_locked}/{result.pool_timeouts} | {_ms(result.cpu_ms_per_call)} "
        f"| {result.load_average} |"
    )


HEADER = (
    "| engine     | offered | achieved | failed | INVITE→100 p50/95/99 ms | INVITE→180 "
    "| INVITE→200 | INVITE→callee INVITE | app answer | overhead p50 | loop lag p50/p99 ms "
    "| locked/pool errors | CPU ms/call | load average |"
)


async def search(
    engine: str,
    results: list[Trial],
    args: argparse.Namespace,
    run: Callable[[str, float], Awaitable[Trial]],
) -> float | None:
    """The highest rate with < 1 % failures, by bisection between the highest rate that
    held and the lowest that did not (to within ``--resolution`` calls per second)."""
    mine = [r for r in results if r.engine == engine]
    held = [r.offered_cps for r in mine if r.held]
    failed = [r.offered_cps for r in mine if not r.held]
    low = max(held, default=0.0)
    high = min((rate for rate in failed if rate > low), default=None)
    if high is None:
        return low or None
    while high - low > args.resolution:
        middle = round((low + high) / 2)
        outcome = await run(engine, middle)
        if outcome.held:
            low = middle
        else:
            high = middle
    return low or None


def _environment() -> Iterator[str]:
    yield f"load average before: {load_average()} ({os.cpu_count()} cores)"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        version = subprocess.run([SIPP, "-v"], capture_output=True, text=True, timeout=5)
        yield f"SIPp: {(version.stdout or version.stderr).strip().splitlines()[0]}"
    yield f"Python {sys.version.split()[0]}"


async def main(args: argparse.Namespace) -> None:
    for line in _environment():
        print(line, flush=True)
    results: list[Trial] = []

    async def run(engine: str, rate: float) -> Trial:
        print(f"… {engine}, {rate:g} calls/s for {args.seconds:g} s", flush=True)
        outcome = await trial(engine, rate, args)
        results.append(outcome)
        print(_row(outcome), flush=True)
        return outcome

    for engine in args.engine:
        for rate in args.rate:
            await run(engine, rate)
    ceilings: dict[str, float | None] = {}
    if args.search:
        for engine in args.engine:
            ceilings[engine] = await search(engine, results, args, run)
    print()
    print(HEADER)
    print("|" + "---|" * (HEADER.count("|") - 1))
    for result in results:
        print(_row(result))
    for engine, ceiling in ceilings.items():
        shown = "none held" if ceiling is None else f"{ceiling:g} calls/s"
        print(f"highest rate with < 1 % failures, {engine}: {shown}")
    if args.json:
        figures = {"trials": [asdict(r) for r in results], "ceilings": ceilings}
        await asyncio.to_thread(Path(args.json).write_text, json.dumps(figures, indent=2))


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--rate", nargs="+", type=float, default=[10, 50, 100, 200])
    parser.add_argument("--seconds", type=float, default=10, help="how long calls are placed")
    parser.add_argument("--hold", type=float, default=2, help="seconds each call is held")
    parser.add_argument("--search", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--resolution", type=float, default=10, help="search step, calls/s")
    parser.add_argument("--rtp-ports", default=RTP_PORTS)
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--keep", action="store_true", help="keep each trial's folder")
    parser.add_argument("--py-spy", help="profile the serve process into this folder")
    parser.add_argument(
        "--realtime",
        action="store_true",
        help="run serve at real-time priority (SAUTIKIT_REALTIME_PRIORITY), as media servers "
        "are run; on a shared machine it keeps other work from delaying the event loop",
    )
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse_arguments()
    from sautikit.runtime import run as run_loop

    run_loop(main(arguments))
