"""``sautikit mpesa`` and the Daraja settings, through the command line."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from tests.mpesa_payloads import c2b_payment
from typer.testing import CliRunner

from sautikit import runtime
from sautikit.app import open_database
from sautikit.billing.mpesa.topups import apply_c2b_confirmation
from sautikit.cli import app
from sautikit.config import load_settings

SECRETS = {
    "SAUTIKIT_DARAJA_CONSUMER_KEY": "ck-visible-nowhere",
    "SAUTIKIT_DARAJA_CONSUMER_SECRET": "cs-visible-nowhere",
    "SAUTIKIT_DARAJA_PASSKEY": "pk-visible-nowhere",
}


@pytest.fixture(autouse=True)
def _settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SAUTIKIT_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("SAUTIKIT_LOG_LEVEL", "warning")
    monkeypatch.setenv("SAUTIKIT_PUBLIC_URL", "https://voice.example.co.ke")
    monkeypatch.setenv("SAUTIKIT_DARAJA_SHORTCODE", "600638")
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, " ".join(result.output.split())


def test_config_show_masks_the_daraja_secrets() -> None:
    code, output = invoke("config", "show")
    assert code == 0, output
    shown = json.loads(CliRunner().invoke(app, ["config", "show"]).output)
    for name in ("daraja_consumer_key", "daraja_consumer_secret", "daraja_passkey"):
        assert shown[name] == "********"
    assert shown["daraja_shortcode"] == "600638"
    for value in SECRETS.values():
        assert value not in output


class _DarajaStandIn(BaseHTTPRequestHandler):
    """Answers OAuth and ``registerurl`` as Safaricom documents them (daraja-mock has no
    C2B endpoints) and keeps what it was sent."""

    received: list[tuple[str, dict[str, Any]]] = []

    def do_GET(self) -> None:
        self._answer({"access_token": "token-1", "expires_in": "3599"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.received.append((self.path, json.loads(self.rfile.read(length))))
        self._answer(
            {
                "OriginatorCoversationID": "7619-37765134-1",
                "ResponseCode": "0",
                "ResponseDescription": "success",
            }
        )

    def _answer(self, body: dict[str, str]) -> None:
        raw = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *_args: object) -> None:
        return None


@pytest.fixture
def daraja_stand_in() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _DarajaStandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_register_urls_names_this_deployments_c2b_urls(
    daraja_stand_in: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAUTIKIT_DARAJA_BASE_URL", daraja_stand_in)
    code, output = invoke("mpesa", "register-urls")
    assert code == 0, output
    ((path, body),) = _DarajaStandIn.received
    assert path == "/mpesa/c2b/v1/registerurl"
    assert body["ShortCode"] == "600638" and body["ResponseType"] == "Completed"
    assert body["ConfirmationURL"].startswith("https://voice.example.co.ke/v1/topups/daraja/c2b/")
    for url in (body["ConfirmationURL"], body["ValidationURL"]):
        assert "mpesa" not in url.lower() and "query" not in url.lower()


def test_register_urls_reports_daraja_refusing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAUTIKIT_DARAJA_BASE_URL", "http://127.0.0.1:9")
    code, output = invoke("mpesa", "register-urls")
    assert code == 1 and "Daraja" in output


def test_an_unmatched_payment_is_listed_then_assigned_once() -> None:
    code, workspace_id = invoke("workspaces", "create", "Acme")
    assert code == 0

    async def receive() -> None:
        settings = load_settings()
        async with open_database(settings) as database, database.transaction() as session:
            payment = c2b_payment("RKTQDM7W9Z", amount="75", bill_ref="WRONG1")
            await apply_c2b_confirmation(session, payment, settings=settings)

    runtime.run(receive())
    result = CliRunner().invoke(app, ["mpesa", "unmatched", "--json"])
    (row,) = [json.loads(line) for line in result.output.splitlines()]
    assert (row["receipt"], row["amount"], row["account_reference"]) == (
        "RKTQDM7W9Z",
        "KES 75.00",
        "WRONG1",
    )
    code, output = invoke("mpesa", "assign", row["id"], workspace_id)
    assert code == 0 and "credited KES 75.00" in output, output
    code, output = invoke("mpesa", "assign", row["id"], workspace_id)
    assert code == 1 and "assigned already" in output
    assert CliRunner().invoke(app, ["mpesa", "unmatched", "--json"]).output == ""
