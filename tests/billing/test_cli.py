"""``sautikit rates import`` and ``sautikit wallet``, run through the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sautikit import runtime
from sautikit.app import open_database
from sautikit.billing.rating import RateLine, published_rates, rate_for
from sautikit.cli import app as sautikit_app
from sautikit.cli.billing import app
from sautikit.config import load_settings

DECK = """prefix,destination,direction,rate_per_minute_minor
+254,Kenya,outbound,300
+2547,Kenya mobile,outbound,250
+254,Kenya,inbound,0
"""


@pytest.fixture(autouse=True)
def _data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SAUTIKIT_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("SAUTIKIT_LOG_LEVEL", "warning")


def invoke(*args: str) -> tuple[int, str]:
    """Exit code and everything printed, with rich's line wrapping undone."""
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, " ".join(result.output.split())


def run(*args: str) -> str:
    code, output = invoke(*args)
    assert code == 0, output
    return output


def _workspace() -> str:
    result = CliRunner().invoke(sautikit_app, ["workspaces", "create", "Acme"])
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def _outbound_deck() -> list[RateLine]:
    async def read() -> list[RateLine]:
        settings = load_settings()
        async with open_database(settings) as database, database.transaction() as session:
            return await published_rates(session, "outbound", settings=settings)

    return runtime.run(read())


def _rate(workspace_id: str, destination: str) -> int:
    async def read() -> int:
        settings = load_settings()
        async with open_database(settings) as database, database.transaction() as session:
            applied = await rate_for(
                session, workspace_id, "outbound", destination, settings=settings
            )
            return applied.rate_per_minute_minor

    return runtime.run(read())


def test_a_deck_is_imported_then_replaced() -> None:
    Path("deck.csv").write_text(DECK)
    assert run("rates", "import", "deck.csv") == "3 rates: 3 added, 0 updated, 0 removed"
    assert [(line.prefix, line.rate_per_minute_minor) for line in _outbound_deck()] == [
        ("+254", 300),
        ("+2547", 250),
    ]
    Path("new.csv").write_text("prefix,destination,rate_per_minute_minor\n+254,Kenya,280\n")
    assert run("rates", "import", "new.csv", "--replace") == (
        "1 rates: 0 added, 1 updated, 2 removed"
    )
    assert _outbound_deck() == [RateLine("+254", "Kenya", "outbound", 280)]


def test_a_wrong_line_is_named_and_nothing_is_imported() -> None:
    Path("deck.csv").write_text(DECK)
    run("rates", "import", "deck.csv")
    Path("bad.csv").write_text(
        "prefix,destination,direction,rate_per_minute_minor\n"
        "+254,Kenya,outbound,100\n"
        "254,Kenya,outbound,100\n"
        "+255,Tanzania,outbound,3.5\n"
    )
    code, output = invoke("rates", "import", "bad.csv", "--replace")
    assert code == 1
    assert "bad.csv:3: prefix '254' must be '+' and 1–15 digits" in output
    assert "bad.csv:4: rate_per_minute_minor '3.5' must be a whole number" in output
    assert output.endswith("nothing was imported")
    assert [(line.prefix, line.rate_per_minute_minor) for line in _outbound_deck()] == [
        ("+254", 300),
        ("+2547", 250),
    ]


def test_a_workspace_gets_its_own_rates() -> None:
    workspace_id = _workspace()
    Path("deck.csv").write_text(DECK)
    run("rates", "import", "deck.csv")
    Path("mine.csv").write_text("prefix,destination,rate_per_minute_minor\n+254,Agreed,180\n")
    run("rates", "import", "mine.csv", "--workspace", workspace_id)
    assert _rate(workspace_id, "+254711000000") == 180
    assert [line.rate_per_minute_minor for line in _outbound_deck()] == [300, 250]

    code, output = invoke("rates", "import", "mine.csv", "--workspace", "nope")
    assert (code, output) == (1, "error: no workspace nope")
    code, output = invoke("rates", "import", "missing.csv")
    assert code == 1 and "cannot read missing.csv" in output


def test_a_wallet_is_credited_once_per_key_and_its_balance_shown() -> None:
    workspace_id = _workspace()
    output = run("wallet", "credit", workspace_id, "150000", "--reference", "M-Pesa QK12")
    assert output.startswith("credited KES 1,500.00; balance KES 1,500.00 (entry ")
    for _ in range(2):
        run(
            "wallet",
            "credit",
            workspace_id,
            "2550",
            "--reference",
            "bank",
            "--idempotency-key",
            "tx-9",
        )
    code, output = invoke(
        "wallet", "credit", workspace_id, "99", "--reference", "bank", "--idempotency-key", "tx-9"
    )
    assert code == 1 and "already credited KES 25.50 (bank); nothing was added" in output

    assert run("wallet", "balance", workspace_id) == "balance KES 1,525.50, available KES 1,525.50"
    assert json.loads(run("wallet", "balance", workspace_id, "--json")) == {
        "workspace_id": workspace_id,
        "balance_minor": 152_550,
        "available_minor": 152_550,
        "currency": "KES",
    }


def test_wallet_commands_refuse_unknown_workspaces_and_non_positive_amounts() -> None:
    run_db = CliRunner().invoke(sautikit_app, ["db", "upgrade"])
    assert run_db.exit_code == 0, run_db.output
    assert invoke("wallet", "credit", "nope", "100", "--reference", "r") == (
        1,
        "error: no workspace nope",
    )
    assert invoke("wallet", "balance", "nope") == (1, "error: no workspace nope")
    code, output = invoke("wallet", "credit", "nope", "0", "--reference", "r")
    assert code == 2 and "greater than or equal to 1" in output
