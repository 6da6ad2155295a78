"""Operator commands: workspaces and keys, end to end through the real API."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from sautikit.api import create_api
from sautikit.app import open_database
from sautikit.cli import app
from sautikit.config import load_settings


@pytest.fixture(autouse=True)
def _data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SAUTIKIT_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("SAUTIKIT_LOG_LEVEL", "warning")


def run(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


async def _get(path: str, key: str) -> httpx.Response:
    settings = load_settings()
    async with open_database(settings) as database:
        transport = httpx.ASGITransport(app=create_api(settings, database))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            return await http.get(path, headers={"Authorization": f"Bearer {key}"})


def test_workspace_key_list_and_revoke() -> None:
    assert run("db", "upgrade") == "database schema is current"
    workspace_id = run("workspaces", "create", "Acme Kenya")
    (workspace,) = [json.loads(line) for line in run("workspaces", "list", "--json").splitlines()]
    assert workspace["id"] == workspace_id and workspace["name"] == "Acme Kenya"

    scopes = "calls.read,webhooks.manage"
    key = run("keys", "create", "--workspace", workspace_id, "--scopes", scopes)
    assert key.startswith("sk_live_")
    listing = run("keys", "list", "--workspace", workspace_id, "--json")
    assert key not in listing
    (listed,) = [json.loads(line) for line in listing.splitlines()]
    assert key.startswith(listed["prefix"].rstrip("…"))
    assert listed["scopes"] == scopes and listed["revoked_at"] == ""

    assert asyncio.run(_get("/v1/webhooks", key)).status_code == 200
    run("keys", "revoke", listed["id"])
    assert asyncio.run(_get("/v1/webhooks", key)).json()["error"]["code"] == "api_key.revoked"


def test_unknown_scope_and_workspace_are_refused() -> None:
    workspace_id = run("workspaces", "create", "w")
    result = CliRunner().invoke(
        app, ["keys", "create", "--workspace", workspace_id, "--scopes", "calls.everything"]
    )
    assert result.exit_code == 1
    assert "unknown scope" in result.output
    result = CliRunner().invoke(app, ["keys", "create", "--workspace", "nope", "--scopes", "all"])
    assert result.exit_code == 1
    assert "no workspace" in result.output


def test_every_command_has_help() -> None:
    for command in (["workspaces"], ["keys"], ["db"], ["config"], ["serve"], ["demo"]):
        assert "Usage" in run(*command, "--help")


def test_version_prints_the_package_version() -> None:
    import sautikit

    assert run("--version") == f"sautikit {sautikit.__version__}"
