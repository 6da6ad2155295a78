"""``sautikit trunks``: a trunk that would carry nothing is refused; an inbound-only trunk
says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sautikit.cli import app


@pytest.fixture(autouse=True)
def _data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SAUTIKIT_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("SAUTIKIT_LOG_LEVEL", "warning")


def test_a_trunk_without_prefix_or_inbound_address_is_refused() -> None:
    result = CliRunner().invoke(app, ["trunks", "add", "carrier", "--host", "192.0.2.10"])
    assert result.exit_code == 2
    assert "would carry nothing" in " ".join(result.output.split())
    listed = CliRunner().invoke(app, ["trunks", "list", "--json"])
    assert listed.exit_code == 0 and listed.stdout.strip() == ""


def test_what_a_trunk_carries_is_said_when_it_is_saved() -> None:
    runner = CliRunner()
    inbound = runner.invoke(
        app, ["trunks", "add", "in", "--host", "192.0.2.10", "--inbound", "192.0.2.0/24"]
    )
    assert inbound.exit_code == 0, inbound.output
    assert "inbound only: no --prefix, so no outbound call routes here" in inbound.stdout
    both = runner.invoke(
        app, ["trunks", "add", "out", "--host", "192.0.2.11", "--prefix", "+254", "--port", "5070"]
    )
    assert both.exit_code == 0, both.output
    assert "carries calls to +254 out to 192.0.2.11:5070" in both.stdout
    rows = [
        json.loads(line)
        for line in runner.invoke(app, ["trunks", "list", "--json"]).stdout.splitlines()
    ]
    assert {row["name"]: row["prefixes"] for row in rows} == {"in": "(inbound only)", "out": "+254"}
