"""The OpenAPI document, held to account by schemathesis against a real server.

The API runs under uvicorn on loopback in a thread of its own (its own event loop and
SQLite database, a funded workspace with a key holding every scope, M-Pesa configured
against daraja-mock), and the schemathesis command line runs every phase (examples,
coverage, fuzzing, stateful) with bounded examples and every check but
``positive_data_acceptance``, first with the workspace key over the keyed and public
routes, then with the operator token over ``/v1/operator``. It must find no server error
and no conformance failure: every status, header, content type and body as documented,
invalid input refused, missing auth refused.

``positive_data_acceptance`` is left out on purpose: requests valid by the schema are
still refused for reasons no schema states (a ``from`` number the workspace does not
hold, a dial target off the allow-list, a cross-field rule such as "``async_amd`` needs
``async_amd_status_callback``"), and those answers are the documented 4xx.
"""

from __future__ import annotations

import asyncio
import queue
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from pydantic import SecretStr
from tests.daraja import DarajaMockProcess

from sautikit import accounts
from sautikit.api import create_api
from sautikit.billing.ledger import top_up
from sautikit.billing.mpesa import TopUpService
from sautikit.config import Settings
from sautikit.db import Database, upgrade_database
from sautikit.storage import open_store

OPERATOR_TOKEN = "op_" + "t" * 40
MAX_EXAMPLES = "5"
CHECKS = ["--checks", "all", "--exclude-checks", "positive_data_acceptance"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _settings(data_dir: Path, daraja_url: str) -> Settings:
    return Settings(
        data_dir=data_dir,
        secret_key=SecretStr("test-secret"),
        operator_token=SecretStr(OPERATOR_TOKEN),
        public_url="https://voice.example.co.ke",
        daraja_consumer_key=SecretStr("test_key"),
        daraja_consumer_secret=SecretStr("test_secret"),
        daraja_shortcode="600638",
        daraja_passkey=SecretStr(
            "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"
        ),
        daraja_base_url=daraja_url,
        # Thousands of requests on one key: the limiter's 429s would hide the routes.
        rate_limit_per_second=10_000,
        rate_limit_burst=10_000,
    )


class ThreadedApi:
    """``create_api`` under uvicorn in a thread with its own loop; ``url`` and ``key``
    once :meth:`start` returns."""

    def __init__(self, data_dir: Path, daraja_url: str) -> None:
        self.data_dir = data_dir
        self.daraja_url = daraja_url
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.key = ""
        self._ready: queue.Queue[str | BaseException] = queue.Queue()
        self._server: uvicorn.Server | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        database = Database(f"sqlite+aiosqlite:///{self.data_dir / 'api.db'}")
        service: TopUpService | None = None
        try:
            await upgrade_database(database)
            settings = _settings(self.data_dir / "var", self.daraja_url)
            async with database.transaction() as session:
                workspace = await accounts.create_workspace(session, "schemathesis")
                created = await accounts.create_api_key(
                    session, workspace.id, sorted(accounts.SCOPES)
                )
                await top_up(session, workspace.id, 1_000_000, idempotency_key="seed")
            service = TopUpService(settings, database)
            app = create_api(settings, database, open_store(settings), topups=service)
            config = uvicorn.Config(
                app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
            )
            self._server = uvicorn.Server(config)
            serving = asyncio.ensure_future(self._server.serve())
            for _ in range(1200):  # up to a minute
                if self._server.started or serving.done():
                    break
                await asyncio.sleep(0.05)
            self._ready.put(created.secret)
            await serving
        except BaseException as error:
            self._ready.put(error)
            raise
        finally:
            if service is not None:
                await service.aclose()
            await database.close()

    def start(self) -> None:
        self._thread.start()
        answer = self._ready.get(timeout=60)
        if isinstance(answer, BaseException):
            raise answer
        self.key = answer

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        self._thread.join(timeout=30)


@pytest.fixture
def api(tmp_path: Path, daraja_mock: DarajaMockProcess) -> Iterator[ThreadedApi]:
    served = ThreadedApi(tmp_path, daraja_mock.base_url)
    served.start()
    try:
        yield served
    finally:
        served.stop()


def _schemathesis(api: ThreadedApi, token: str, *selection: str) -> None:
    executable = shutil.which("st", path=str(Path(sys.executable).parent)) or "st"
    command = [
        executable,
        "--no-color",
        "run",
        f"{api.url}/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        MAX_EXAMPLES,
        "--workers",
        "1",
        "--seed",
        "20261204",
        *CHECKS,
        *selection,
    ]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=840,
        check=False,
        cwd=api.data_dir,  # its cache folder goes there, not into the checkout
    )
    summary = done.stdout[-6000:]
    assert done.returncode == 0, f"schemathesis found problems:\n{summary}\n{done.stderr[-2000:]}"
    assert "No issues found" in done.stdout or " passed" in done.stdout, summary


@pytest.mark.timeout(900)
def test_the_keyed_and_public_routes_behave_as_documented(api: ThreadedApi) -> None:
    _schemathesis(api, api.key, "--exclude-path-regex", "^/v1/operator")


@pytest.mark.timeout(900)
def test_the_operator_routes_behave_as_documented(api: ThreadedApi) -> None:
    _schemathesis(api, OPERATOR_TOKEN, "--include-path-regex", "^/v1/operator")
