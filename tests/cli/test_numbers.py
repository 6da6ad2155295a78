"""``sautikit numbers import|list``: the operator loads the inventory from CSV."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from sautikit import accounts
from sautikit.app import open_database
from sautikit.billing import ledger
from sautikit.billing.numbers import claim_number
from sautikit.cli.numbers import app
from sautikit.config import load_settings
from sautikit.db.models import Number
from sautikit.db.types import utcnow


@pytest.fixture(autouse=True)
def _data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SAUTIKIT_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("SAUTIKIT_LOG_LEVEL", "warning")
    monkeypatch.setenv("COLUMNS", "200")


def _listed() -> dict[str, dict[str, str]]:
    result = CliRunner().invoke(app, ["list", "--json"])
    assert result.exit_code == 0, result.output
    return {row["number"]: row for row in map(json.loads, result.stdout.splitlines())}


def test_import_then_reimport_with_new_prices(tmp_path: Path) -> None:
    inventory = tmp_path / "numbers.csv"
    inventory.write_text(
        "number,monthly_price_minor,capabilities\n"
        "+254711000001,10000,voice\n"
        "+254711000002,12000,voice;sms\n"
    )
    result = CliRunner().invoke(app, ["import", str(inventory)])
    assert result.exit_code == 0, result.output
    assert "2 added, 0 updated" in result.stdout
    listed = _listed()
    assert listed["+254711000002"]["capabilities"] == "sms;voice"
    assert listed["+254711000001"]["status"] == "available"

    inventory.write_text("+254711000001,15000,voice\n+254711000002,12000,voice;sms\n")
    result = CliRunner().invoke(app, ["import", str(inventory)])
    assert "0 added, 1 updated, 1 unchanged" in result.stdout
    assert _listed()["+254711000001"]["monthly_price_minor"] == "15000"


def test_a_wrong_line_is_named_and_nothing_is_imported(tmp_path: Path) -> None:
    inventory = tmp_path / "numbers.csv"
    inventory.write_text("+254711000001,10000,voice\n+25471100000,10000,voice\n")
    result = CliRunner().invoke(app, ["import", str(inventory)])
    assert result.exit_code == 1
    assert f"{inventory}:2: '+25471100000' is not a Kenyan E.164 number" in result.output
    assert "nothing was imported" in result.output
    assert _listed() == {}


def test_a_missing_file_is_an_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["import", str(tmp_path / "absent.csv")])
    assert result.exit_code == 1
    assert "cannot read" in result.output


def test_commands_have_help() -> None:
    for command in (["import"], ["list"], ["renew"]):
        result = CliRunner().invoke(app, [*command, "--help"])
        assert result.exit_code == 0 and "Usage" in result.output


def test_renew_suspends_a_number_its_wallet_cannot_pay_for(tmp_path: Path) -> None:
    inventory = tmp_path / "numbers.csv"
    inventory.write_text("+254711000001,10000,voice\n")
    assert CliRunner().invoke(app, ["import", str(inventory)]).exit_code == 0

    async def claim_and_expire() -> None:
        async with (
            open_database(load_settings()) as database,
            database.transaction() as session,
        ):
            workspace_id = (await accounts.create_workspace(session, "w")).id
            await ledger.top_up(session, workspace_id, 10_000, idempotency_key="t")
            number_id = await session.scalar(select(Number.id))
            assert number_id is not None
            number = await claim_number(
                session, workspace_id=workspace_id, number_id=number_id, now=utcnow()
            )
            number.paid_until = utcnow() - timedelta(days=1)

    asyncio.run(claim_and_expire())
    result = CliRunner().invoke(app, ["renew"])
    assert result.exit_code == 0, result.output
    assert "0 renewed, 1 suspended" in result.stdout
    assert _listed()["+254711000001"]["status"] == "suspended"
