"""Settings come from SAUTIKIT_* variables and a TOML file; a wrong one is named."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sautikit.cli import app
from sautikit.config import ConfigError, load_settings
from sautikit.sip.digest import DEFAULT_CHALLENGE_ALGORITHMS


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("SAUTIKIT_"):
            monkeypatch.delenv(name)


def test_embedded_defaults() -> None:
    settings = load_settings()
    assert settings.http_port == 8080 and settings.sip_port == 5080
    assert settings.effective_database_url.startswith("sqlite+aiosqlite:///")
    assert settings.effective_database_url.endswith("var/sautikit.db")
    assert settings.rtp_port_range == (20000, 29999)
    assert settings.max_body_bytes == 1024 * 1024
    assert settings.sip_digest_algorithm_list == DEFAULT_CHALLENGE_ALGORITHMS


def test_digest_algorithms_are_a_setting_in_canonical_spelling(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SAUTIKIT_SIP_DIGEST_ALGORITHMS", "sha-256, md5")
    assert load_settings().sip_digest_algorithm_list == ("SHA-256", "MD5")


def test_environment_beats_the_toml_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "sautikit.toml").write_text(
        'http_port = 9000\nsip_port = 5999\nlog_format = "json"\n'
    )
    monkeypatch.setenv("SAUTIKIT_HTTP_PORT", "9100")
    settings = load_settings()
    assert settings.http_port == 9100
    assert settings.sip_port == 5999
    assert settings.log_format == "json"


def test_postgres_urls_use_asyncpg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAUTIKIT_DATABASE_URL", "postgresql://sautikit:pw@db.internal/sautikit")
    assert load_settings().database_url.startswith("postgresql+asyncpg://")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SAUTIKIT_HTTP_PORT", "eighty"),
        ("SAUTIKIT_RTP_PORTS", "30000-20000"),
        ("SAUTIKIT_DATABASE_URL", "mysql://x"),
        ("SAUTIKIT_LOG_FORMAT", "xml"),
        ("SAUTIKIT_SIP_DIGEST_ALGORITHMS", "SHA-512"),
        ("SAUTIKIT_SIP_DIGEST_ALGORITHMS", ""),
        ("SAUTIKIT_SIP_ADVERTISED_HOST", "0.0.0.0"),
        ("SAUTIKIT_MEDIA_ADVERTISED_ADDRESS", "::"),
    ],
)
def test_a_wrong_setting_is_named(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=variable):
        load_settings()


def test_a_misspelt_setting_in_the_file_is_named() -> None:
    Path("sautikit.toml").write_text("http_portt = 8081\n")
    with pytest.raises(ConfigError, match="HTTP_PORTT"):
        load_settings()


def test_config_show_masks_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAUTIKIT_OPERATOR_TOKEN", "op-secret-123")
    monkeypatch.setenv("SAUTIKIT_DATABASE_URL", "postgresql://sautikit:hunter2@db/sautikit")
    result = CliRunner().invoke(app, ["config", "show"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["operator_token"] == "********"
    assert shown["database_url"] == "postgresql+asyncpg://sautikit:********@db/sautikit"
    assert "hunter2" not in result.stdout and "op-secret-123" not in result.stdout


def test_start_up_stops_on_a_wrong_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAUTIKIT_HTTP_PORT", "99999")
    result = CliRunner().invoke(app, ["serve"])
    assert result.exit_code == 2
    assert "SAUTIKIT_HTTP_PORT" in result.output


def test_realtime_priority_takes_effect_in_its_own_process() -> None:
    script = (
        "import os; from sautikit.app import raise_to_realtime_priority as r; "
        "print(r(), os.sched_getscheduler(0) == os.SCHED_RR)"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    allowed = os.geteuid() == 0  # CAP_SYS_NICE
    assert done.stdout.split() == ([str(allowed)] * 2), done.stderr
