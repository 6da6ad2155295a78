"""A real ``sautikit serve`` process, configured as an operator would, for lifetime tests.

Shutdown and crash recovery are about a process: its signals, its exit, what the next
process on the same data finds. So these tests run ``python -m sautikit serve`` as a
child, configured through ``SAUTIKIT_*`` variables alone, and talk to it over loopback:
HTTP for the API, SIP from SIPp.

:func:`serve_database` gives each test its own database on either engine: a SQLite file
(which ``serve`` migrates itself), or a PostgreSQL role whose default ``search_path`` is
a schema of its own (``ALTER ROLE … SET search_path``, an operator's way to share a
server; the test migrates it, as ``sautikit db upgrade`` would). :func:`seed` writes a
workspace with a key, a funded wallet, ``NUMBER`` pointing at the test app and a trunk
routing ``+254`` to a SIPp callee.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy import delete, select
from tests.conftest import POSTGRES_URL
from tests.sipp import SCENARIOS as SIP_SCENARIOS
from tests.sipp import Sipp, free_port
from tests.support import active_number

from sautikit import accounts
from sautikit.billing.ledger import top_up
from sautikit.config import Settings
from sautikit.crypto import encrypt_secret
from sautikit.db import Database, upgrade_database
from sautikit.db.models import Call, Event, Trunk

__all__ = [
    "CALLEE",
    "NUMBER",
    "Seeded",
    "ServeProcess",
    "calls",
    "carrier_trunk",
    "crash_mid_call",
    "events",
    "seed",
    "serve_database",
    "serve_signing_key",
]

NUMBER = "+254700000001"
SERVE_SECRET_KEY = "test-secret"
TRUNK_LOGIN = ("trunk", "pa55")
CALLEE = "+254720000001"
_LISTENING = re.compile(r"API listening on (http://[0-9.]+:[0-9]+)")


@contextlib.asynccontextmanager
async def serve_database(engine: str, tmp_path: Path) -> AsyncIterator[tuple[str, Database]]:
    """(URL for the child process, a Database on it for the test), dropped afterwards."""
    if engine == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'var' / 'sautikit.db'}"
        database = Database(url)
        await upgrade_database(database)
        try:
            yield url, database
        finally:
            await database.close()
        return
    role = f"t_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await admin.execute(f"CREATE ROLE {role} LOGIN")
        await admin.execute(f"CREATE SCHEMA {role} AUTHORIZATION {role}")
        await admin.execute(f"ALTER ROLE {role} SET search_path = {role}")
        url = POSTGRES_URL.replace("postgres@", f"{role}@", 1)
        database = Database(url)
        await upgrade_database(database)
        try:
            yield url, database
        finally:
            await database.close()
    finally:
        await admin.execute(f"DROP SCHEMA IF EXISTS {role} CASCADE")
        await admin.execute(f"DROP ROLE IF EXISTS {role}")
        await admin.close()


@dataclass(frozen=True)
class Seeded:
    workspace_id: str
    headers: dict[str, str]


def carrier_trunk(port: int, *, name: str = "local", login_key: bytes | None = None) -> Trunk:
    """A trunk at 127.0.0.1:``port`` routing ``+254`` out and trusted for calls in. With
    ``login_key`` it has the login ``TRUNK_LOGIN``, its password encrypted under that key
    as ``sautikit trunks add --username --password`` stores it (a serve process's key is
    :func:`serve_signing_key`)."""
    trunk = Trunk(
        name=name, host="127.0.0.1", port=port, prefixes=["+254"], inbound_addresses=["127.0.0.1"]
    )
    if login_key is not None:
        username, password = TRUNK_LOGIN
        trunk.username = username
        trunk.password_encrypted = encrypt_secret(password, login_key, context=f"trunk:{name}")
    return trunk


def serve_signing_key() -> bytes:
    """The key a :class:`ServeProcess` encrypts secrets with (its SAUTIKIT_SECRET_KEY)."""
    return Settings(secret_key=SERVE_SECRET_KEY).signing_key()


async def seed(
    database: Database, *, voice_url: str, trunk_port: int, trunk_login: bool = False
) -> Seeded:
    """See the module's doc; with ``trunk_login`` the trunk has the login ``TRUNK_LOGIN``,
    stored for a serve process."""
    async with database.transaction() as session:
        workspace = await accounts.create_workspace(session, "Acme")
        key = await accounts.create_api_key(session, workspace.id, sorted(accounts.SCOPES))
        session.add(active_number(NUMBER, workspace.id, voice_url=voice_url))
        await top_up(session, workspace.id, 100_000, idempotency_key="seed")
        await session.execute(delete(Trunk))
        login_key = serve_signing_key() if trunk_login else None
        session.add(carrier_trunk(trunk_port, login_key=login_key))
    return Seeded(workspace.id, {"Authorization": f"Bearer {key.secret}"})


async def calls(database: Database) -> list[Call]:
    async with database.sessions() as session:
        return list((await session.scalars(select(Call).order_by(Call.id))).all())


async def events(database: Database, call_id: str) -> list[str]:
    async with database.sessions() as session:
        found = await session.scalars(
            select(Event.kind).where(Event.call_id == call_id).order_by(Event.id)
        )
        return list(found.all())


def free_sip_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (SIP listens on both)."""
    for _ in range(100):
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no port is free for both UDP and TCP")


class ServeProcess:
    """``python -m sautikit serve`` on ``database_url`` and ``data_dir``, its SIP on a
    fixed port (a restarted process takes it over, as in production), its API on an
    ephemeral one (:attr:`base_url` once started). Its log is kept in :attr:`log_path`."""

    def __init__(
        self,
        data_dir: Path,
        database_url: str,
        *,
        sip_port: int | None = None,
        grace: float = 2.0,
        rtp_ports: tuple[int, int] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self._port_chosen_here = sip_port is None
        self.sip_port = sip_port or free_sip_port()
        low = 30000 + (os.getpid() % 50) * 200
        low, high = rtp_ports or (low, low + 199)
        self.env = {
            **os.environ,
            "SAUTIKIT_DATA_DIR": str(data_dir),
            "SAUTIKIT_DATABASE_URL": database_url,
            "SAUTIKIT_HTTP_PORT": "0",
            "SAUTIKIT_SIP_PORT": str(self.sip_port),
            "SAUTIKIT_RTP_PORTS": f"{low}-{high}",
            "SAUTIKIT_SHUTDOWN_GRACE_SECONDS": str(grace),
            "SAUTIKIT_ALLOW_PRIVATE_HTTP": "true",
            "SAUTIKIT_SECRET_KEY": SERVE_SECRET_KEY,
            "SAUTIKIT_NODE_ID": "serve-test",
            "SAUTIKIT_APP_TIMEOUT_SECONDS": "3",
            "SAUTIKIT_LOG_LEVEL": "info",
            # Trunks in tests are SIPp callees: an OPTIONS ping would be a failed call.
            "SAUTIKIT_TRUNK_PING_SECONDS": "0",
            **(env or {}),
        }
        self.env.pop("SAUTIKIT_CONFIG_FILE", None)
        self.log_path = data_dir.parent / f"serve-{secrets.token_hex(3)}.log"
        self.base_url = ""
        self._process: asyncio.subprocess.Process | None = None

    @property
    def sip(self) -> tuple[str, int]:
        return "127.0.0.1", self.sip_port

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    async def start(self, within: float = 60.0) -> str:
        """Start the process; answers the API's base URL once it listens. A SIP port
        another test took meanwhile (the free-port probe races) is replaced, unless the
        port was given (a restart must keep it)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for _attempt in range(3):
            offset = len(self.log)
            if await self._spawn(within, offset):
                return self.base_url
            if not self._port_chosen_here or "Errno 98" not in self.log[offset:]:
                break
            self.sip_port = free_sip_port()
            self.env["SAUTIKIT_SIP_PORT"] = str(self.sip_port)
        raise AssertionError(f"sautikit serve did not start:\n{self.log[-4000:]}")

    async def _spawn(self, within: float, offset: int) -> bool:
        with self.log_path.open("ab") as log:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "sautikit",
                "serve",
                env=self.env,
                cwd=self.data_dir.parent,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        for _ in range(int(within / 0.05)):
            found = _LISTENING.search(self.log, offset)
            if found:
                self.base_url = found.group(1)
                return True
            if self._process.returncode is not None:
                return False
            await asyncio.sleep(0.05)
        return False

    def api(self, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, headers=headers or {}, timeout=10)

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the process has used so far, from /proc."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        # After the command name: state is field 3, utime and stime fields 14 and 15.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def send_signal(self, signum: signal.Signals) -> None:
        assert self._process is not None
        self._process.send_signal(signum)

    async def wait_exit(self, within: float) -> int | None:
        """The exit code, or None if it still runs after ``within`` seconds."""
        assert self._process is not None
        try:
            return await asyncio.wait_for(self._process.wait(), within)
        except TimeoutError:
            return None

    async def kill(self) -> None:
        process = self._process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()

    async def __aenter__(self) -> ServeProcess:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.kill()


async def crash_mid_call(
    database_url: str, data_dir: Path, callee: Sipp, until: Callable[[], Awaitable[object]]
) -> None:
    """A SIPp caller dials NUMBER on a new serve process (whose trunk leads to the running
    ``callee``); once ``until`` returns the process is SIGKILLed and the next one started
    on its data and SIP port. Returns once both SIPp scenarios have ended, each on what
    that next process sent it (BYE, or CANCEL), as a live process would have."""
    serve = ServeProcess(data_dir, database_url)
    try:
        await serve.start()
        async with Sipp(
            scenario=SIP_SCENARIOS / "uac_answered_waits_for_bye.xml",
            remote=serve.sip,
            service=NUMBER,
            timeout=60,
        ) as caller:
            await until()
            serve.send_signal(signal.SIGKILL)
            await serve.wait_exit(10)
            async with ServeProcess(data_dir, database_url, sip_port=serve.sip_port):
                results = await caller.wait(), await callee.wait()
    finally:
        await serve.kill()
    for result in results:
        assert result.returncode == 0, result.explain()
