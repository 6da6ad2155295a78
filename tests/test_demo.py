"""`sautikit demo`, as a new user runs it: a real server, real requests, a clean exit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_demo_runs_on_embedded_defaults(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAUTIKIT_")}
    env["SAUTIKIT_HTTP_PORT"] = "0"
    env["COLUMNS"] = "200"
    result = subprocess.run(
        [sys.executable, "-m", "sautikit", "demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "GET /v1/workspace → 200" in result.stdout
    assert "Idempotent-Replayed: true" in result.stdout
    assert "auth.missing_key" in result.stdout
    assert (tmp_path / "var" / "sautikit.db").exists()
    assert "Traceback" not in result.stderr
