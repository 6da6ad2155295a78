"""sdk/node: the Node SDK's own ``node --test`` suite, run against a real ``sautikit serve``.

The server is configured as an operator would (``SAUTIKIT_*`` variables, a seeded
workspace with a key, a funded wallet, a number and a trunk); the Node tests get its URL
and key in their environment. The signature and action-document fixtures the Node tests
compare against are written by the Python code itself, and checked here to be current.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from tests.sdk.node_package import SDK, install_packed_sdk
from tests.sdk.node_types import TYPES, openapi_document, render
from tests.serve_process import CALLEE, NUMBER, ServeProcess, seed, serve_database
from tests.sipp import free_port

from sautikit_sdk.actions import dial, get_digits, hangup, play, record, redirect, response, say
from sautikit_sdk.signing import sign

FIXTURE = SDK / "test" / "fixtures" / "python.json"

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="Node is not installed")


def python_fixture() -> dict[str, Any]:
    """What sdk/node/test/fixtures/python.json must hold: signatures and an action
    document made by the server's own code."""
    secret = "whsec_test_fixture"
    bodies = [
        b'{"kind":"call.completed","call_id":"c1","data":{"duration_seconds":3}}',
        b"CallSid=c2&From=%2B254700000001&Digits=1&SpeechResult=habari+yako",
        '{"text":"Karibu \u2014 n\u00e4"}'.encode(),
    ]
    signatures = [
        {"body": body.decode(), "timestamp": moment, "header": sign(secret, body, moment)}
        for moment, body in enumerate(bodies, start=1764870000)
    ]
    document = response(
        say("Karibu", language="sw", loop=2),
        get_digits(
            nested=[play("https://cdn.example.com/menu.wav")],
            num_digits=1,
            finish_on_key="#",
            action="https://app.example.com/menu",
        ),
        record(
            action="https://app.example.com/rec", max_length=60, play_beep=True, transcribe=True
        ),
        dial(
            number=["+254720000001", "+254720000002"],
            caller_id="+254700000001",
            record="record-from-answer",
            hangup_on_star=True,
        ),
        redirect("https://app.example.com/next", method="GET"),
        hangup(),
    )
    return {"secret": secret, "signatures": signatures, "action_document": document}


def test_the_node_fixtures_are_what_the_python_code_makes() -> None:
    assert json.loads(FIXTURE.read_text()) == python_fixture()


def test_the_node_types_are_the_openapi_documents_schemas() -> None:
    assert TYPES.read_text() == render(openapi_document()), (
        "sdk/node/schemas.d.ts is stale: PYTHONPATH=src python -m tests.sdk.node_types"
    )


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")
def test_the_packed_sdk_installs_and_loads_with_require_and_import(tmp_path: Path) -> None:
    app = tmp_path / "app"
    installed_at = install_packed_sdk(app)
    installed = json.loads((installed_at / "package.json").read_text())
    assert "dependencies" not in installed
    load = (
        "const cjs = require('@sautikit/sdk');"
        "import('@sautikit/sdk').then((esm) => {"
        "  if (esm.Sautikit !== cjs.Sautikit) process.exit(1);"
        "  if (typeof esm.verifyWebhook !== 'function') process.exit(1);"
        "  console.log(JSON.stringify(esm.actions.response(esm.actions.hangup())));"
        "});"
    )
    loaded = subprocess.run(
        ["node", "-e", load], cwd=app, capture_output=True, text=True, check=True
    )
    assert json.loads(loaded.stdout) == {"actions": [{"hangup": {}}]}


async def _node_test(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    process = await asyncio.create_subprocess_exec(
        "node",
        "--test",
        "--test-reporter=spec",
        "test/",
        cwd=SDK,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), 90)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return subprocess.CompletedProcess(["node", "--test"], process.returncode, output.decode())


async def test_node_sdk_suite_passes_against_sautikit_serve(tmp_path: Path) -> None:
    async with serve_database("sqlite", tmp_path) as (url, database):
        # Nothing listens on the trunk port: the placed call fails on its own, unanswered.
        seeded = await seed(database, voice_url="http://127.0.0.1:9/voice", trunk_port=free_port())
        async with ServeProcess(tmp_path / "var", url) as serve:
            env = {
                **os.environ,
                "SAUTIKIT_TEST_API_URL": serve.base_url,
                "SAUTIKIT_TEST_API_KEY": seeded.headers["Authorization"].removeprefix("Bearer "),
                "SAUTIKIT_TEST_NUMBER": NUMBER,
                "SAUTIKIT_TEST_CALLEE": CALLEE,
            }
            result = await _node_test(env)
    assert result.returncode == 0, result.stdout
    assert "# fail 0" in result.stdout or "ℹ fail 0" in result.stdout, result.stdout
    assert "skipped 0" in result.stdout, result.stdout
