"""``sautikit console add-member``: the operator makes a workspace's first owner."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from sautikit.cli import app


@pytest.fixture(autouse=True)
def _settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SAUTIKIT_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("SAUTIKIT_LOG_LEVEL", "warning")


def test_add_member_asks_for_the_password_twice_and_refuses_bad_input() -> None:
    runner = CliRunner()
    workspace_id = runner.invoke(app, ["workspaces", "create", "Acme"]).stdout.strip()
    added = runner.invoke(
        app,
        ["console", "add-member", workspace_id, "Wanjiru@Example.co.ke"],
        input="a long passphrase\na long passphrase\n",
    )
    assert added.exit_code == 0, added.output
    assert "wanjiru@example.co.ke (owner) can now sign in" in added.output
    assert "a long passphrase" not in added.output
    again = runner.invoke(
        app,
        ["console", "add-member", workspace_id, "wanjiru@example.co.ke", "--password", "x" * 12],
    )
    assert again.exit_code == 1 and "a member already" in again.output
    short = runner.invoke(
        app, ["console", "add-member", workspace_id, "b@example.co.ke", "--password", "short"]
    )
    assert short.exit_code == 1 and "at least 10" in short.output
    role = runner.invoke(
        app,
        [
            "console",
            "add-member",
            workspace_id,
            "c@example.co.ke",
            "--role",
            "admin",
            "--password",
            "x" * 12,
        ],
    )
    assert role.exit_code == 1 and "role must be one of" in role.output


def test_invite_prints_a_link_that_works_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAUTIKIT_PUBLIC_URL", "https://voice.example.co.ke")
    runner = CliRunner()
    workspace_id = runner.invoke(app, ["workspaces", "create", "Acme"]).stdout.strip()
    made = runner.invoke(app, ["console", "invite", workspace_id, "owner@example.co.ke"])
    assert made.exit_code == 0, made.output
    link = made.output.splitlines()[0]
    assert link.startswith("https://voice.example.co.ke/console/invite/")
    assert len(link.rsplit("/", 1)[1]) >= 40
    unknown = runner.invoke(app, ["console", "invite", "no-such-workspace", "x@example.co.ke"])
    assert unknown.exit_code == 1 and "no workspace" in unknown.output
