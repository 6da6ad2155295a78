"""The command line starts light and speaks plainly (issue: a CLI that feels instant).

Each test runs ``python -m sautikit`` as an operator would, in a subprocess with this
checkout first on the path. Timings are measured in benchmarks/cli_startup.py, not here:
these check the causes — what gets imported, what gets printed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[2] / "src")
HEAVY = ("sqlalchemy", "fastapi", "numpy", "alembic", "boto3", "sautikit.api", "sautikit.sip")


def sautikit(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {key: value for key, value in os.environ.items() if not key.startswith("SAUTIKIT_")}
    environ |= {
        "PYTHONPATH": SRC,
        "SAUTIKIT_DATA_DIR": str(tmp_path / "var"),
        "COLUMNS": "80",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "sautikit", *args],
        capture_output=True,
        text=True,
        env=environ,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("args", [("--version",), ("--help",), ("trunks", "--help")])
def test_help_and_version_import_nothing_heavy(tmp_path: Path, args: tuple[str, ...]) -> None:
    probe = (
        "import runpy, sys\n"
        f"sys.argv = ['sautikit', *{list(args)!r}]\n"
        "try:\n"
        "    runpy.run_module('sautikit', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print('LOADED', [m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": SRC},
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert "LOADED []" in done.stdout, done.stdout + done.stderr


def test_a_current_schema_migrates_silently(tmp_path: Path) -> None:
    first = sautikit(tmp_path, "workspaces", "list", "--json")
    assert first.returncode == 0, first.stderr
    assert "Running upgrade" in first.stderr  # a new database: something migrated
    again = sautikit(tmp_path, "workspaces", "list", "--json")
    assert again.returncode == 0, again.stderr
    assert again.stderr == "" and again.stdout == ""


def test_tables_show_whole_ids_at_80_columns(tmp_path: Path) -> None:
    made = sautikit(tmp_path, "workspaces", "create", "A workspace with a rather long name")
    workspace_id = made.stdout.strip()
    assert len(workspace_id) == 36, made.stdout + made.stderr
    key = sautikit(tmp_path, "keys", "create", "--workspace", workspace_id, "--scopes", "all")
    assert key.returncode == 0, key.stderr
    table = sautikit(tmp_path, "keys", "list").stdout
    assert workspace_id in table, table
    listed = [
        json.loads(line)
        for line in sautikit(tmp_path, "keys", "list", "--json").stdout.splitlines()
    ]
    assert [row["workspace"] for row in listed] == [workspace_id]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SAUTIKIT_STORAGE_URL", "ftp://files.example.com/recordings"),
        ("SAUTIKIT_SIP_HOST", "999.1.1.1"),
        ("SAUTIKIT_SIP_PORT", "five thousand"),
    ],
)
def test_a_bad_setting_stops_serve_with_one_line_naming_it(
    tmp_path: Path, variable: str, value: str
) -> None:
    done = sautikit(tmp_path, "serve", **{variable: value})
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: invalid setting") and variable in lines[0]


def test_a_misspelt_variable_is_warned_about_with_the_closest_name(tmp_path: Path) -> None:
    done = sautikit(tmp_path, "config", "show", SAUTIKIT_LOG_LEVL="debug")
    assert done.returncode == 0, done.stderr
    assert "SAUTIKIT_LOG_LEVL is not a Sautikit setting" in done.stderr
    assert "did you mean SAUTIKIT_LOG_LEVEL?" in done.stderr


def test_serve_flags_override_the_settings(tmp_path: Path) -> None:
    shown = sautikit(tmp_path, "serve", "--help").stdout
    for flag in ("--data-dir", "--database-url", "--http-port", "--sip-host", "--sip-port"):
        assert flag in shown, shown
    # A flag is checked like its variable, and wins over it.
    done = sautikit(tmp_path, "serve", "--sip-host", "999.1.1.1", SAUTIKIT_SIP_HOST="127.0.0.1")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: invalid setting — SAUTIKIT_SIP_HOST: Value error, '999.1.1.1' is not an IP address"
    ]
