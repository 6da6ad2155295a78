"""`sautikit demo`, as a new user runs it: a real server, a real call, the whole product."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_demo_runs_on_embedded_defaults(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAUTIKIT_")}
    env["SAUTIKIT_HTTP_PORT"] = "0"
    env["SAUTIKIT_SIP_PORT"] = "0"
    env["SAUTIKIT_RTP_PORTS"] = "32000-32999"
    env["COLUMNS"] = "200"
    result = subprocess.run(
        [sys.executable, "-m", "sautikit", "demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
    )
    output = " ".join(result.stdout.split())  # rich wraps long lines
    assert result.returncode == 0, result.stdout + result.stderr
    for step in (
        "the prompt played",
        "stored: ",
        "the app fetched RecordingUrl and stored it",
        "transcript: ",
        "the app got the transcript callback",
        "cost KES",
        "every signature valid: call.started",
    ):
        assert step in output, step
    assert "✗" not in output
    assert "order tomorrow morning" in output.lower()  # the phone's words, transcribed
    assert list((tmp_path / "var" / "demo-app" / "voicemails").glob("*/*.wav"))
    assert "Traceback" not in result.stderr
