"""examples/seed-node: the seed page's Express code, run with Node exactly as printed.

The apps are checked against the page's text (only base URLs may differ), installed with
``npm ci`` from the committed lockfile, and run against a real ``sautikit serve`` that an
operator set up with the CLI, recordings in a SeaweedFS bucket, and SIPp on the line. The
voicemail box stores each message in the app's own bucket at
``voicemails/<CallId>/<RecordingSid>.wav`` with its metadata (strings: Sautikit posts a
form), and logs the transcript when it arrives.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import secrets
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.examples.seed_node_rig import (
    EXAMPLE,
    SEED_PAGE,
    NodeApp,
    Server,
    install_seed_node,
    running,
)
from tests.sipp import Sipp, requires_sipp
from tests.storage.conftest import S3Server, s3_server  # noqa: F401 - a fixture, by import

pytestmark = [
    requires_sipp,
    pytest.mark.skipif(shutil.which("npm") is None, reason="Node and npm are not installed"),
]

NUMBER = "+254700000001"  # the seed's "from"
SCENARIO = Path(__file__).parent / "scenarios" / "caller_leaves_voicemail.xml"
PBX_SCENARIOS = Path(__file__).parent.parent / "pbx" / "scenarios"


def _seed_block(first: str, last: str) -> str:
    """Lines of the seed page from ``first`` to the next ``last``, as a reader copies them
    (the page's blank lines carry a stray space)."""
    lines = [line.rstrip() for line in SEED_PAGE.read_text().splitlines()]
    start = lines.index(first)
    end = lines.index(last, start)
    return "\n".join(lines[start : end + 1]) + "\n"


def test_the_apps_are_the_seed_pages_code_apart_from_base_urls() -> None:
    voicemail = (EXAMPLE / "voicemail.js").read_text()
    printed = _seed_block('import express from "express";', "app.listen(3000);")
    for path in ("/voicemail/recording", "/voicemail/transcript"):
        printed = printed.replace(f'"https://yourapp.example.com{path}"', f"`${{APP_URL}}{path}`")
    printed = printed.replace("app.listen(3000);", "app.listen(PORT);")
    preamble, _, code = voicemail.partition('import express from "express";\n')
    assert 'import express from "express";\n' + code == printed
    assert [line for line in preamble.splitlines() if not line.startswith("//")] == [
        'const APP_URL = process.env.APP_URL ?? "https://yourapp.example.com";',
        "const PORT = Number(process.env.PORT ?? 3000);",
        "",
    ]

    handler = _seed_block("// action_url handler: returns Dial with recording", "});")
    assert handler in (EXAMPLE / "record-dial.js").read_text()
    curl = _seed_block(
        "# Place an outbound call; action_url will return a Dial with record enabled", "  }'"
    )
    curl = curl.replace("https://api.sautikit.com", "$SAUTIKIT_API_URL")
    curl = curl.replace('"https://yourapp.example.com/', '"\'"$APP_URL"\'/')
    assert curl in (EXAMPLE / "place-call.sh").read_text()


@pytest.fixture(scope="module")
def seed_node(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install_seed_node(tmp_path_factory.mktemp("seed-node"))


@pytest.fixture
def callee() -> Sipp:
    """The carrier's far end: answers (up to two calls) and speaks; not started yet."""
    return Sipp(scenario=PBX_SCENARIOS / "callee_answers_and_speaks.xml", calls=2, timeout=90)


@pytest.fixture
async def server(
    tmp_path: Path,
    callee: Sipp,
    s3_server: S3Server,  # noqa: F811 - the imported fixture
) -> AsyncIterator[Server]:
    rig = Server(tmp_path / "var", s3_server.url(f"seed-node-{secrets.token_hex(4)}"))
    rig.data_dir.mkdir()
    # The operator's part, with the CLI: a workspace and its key, a number, credit, and a
    # trunk that trusts the SIPp "carrier" on loopback and carries +254 out to the callee.
    rig.cli(
        "trunks", "add", "carrier", "--host", "127.0.0.1", "--port", str(callee.port),
        "--prefix", "+254", "--inbound", "127.0.0.1",
    )  # fmt: skip
    workspace = rig.cli("workspaces", "create", "Acme Corp")
    rig.key = rig.cli("keys", "create", "--workspace", workspace, "--scopes", "all")
    inventory = tmp_path / "numbers.csv"
    inventory.write_text(f"number,monthly_price_minor,capabilities\n{NUMBER},10000,voice\n")
    rig.cli("numbers", "import", str(inventory))
    rig.cli("wallet", "credit", workspace, "100000", "--reference", "seed-node test")
    async with running(rig):
        yield rig


async def _claim_and_route(server: Server, voice_url: str | None) -> str:
    headers = {"Authorization": f"Bearer {server.key}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers) as api:
        (number,) = (await api.get("/v1/numbers/available")).json()["data"]
        claimed = await api.post(f"/v1/numbers/{number['id']}/claim")
        assert claimed.status_code == 200, claimed.text
        if voice_url is not None:
            routed = await api.patch(
                f"/v1/numbers/{number['id']}/routing", json={"voice_url": voice_url}
            )
            assert routed.status_code == 200, routed.text
    return str(number["id"])


async def test_the_voicemail_box_stores_the_message_in_the_apps_bucket(
    seed_node: Path,
    server: Server,
    s3_server: S3Server,  # noqa: F811 - the imported fixture
) -> None:
    app_env = {
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_S3": s3_server.endpoint,
        "AWS_ACCESS_KEY_ID": s3_server.app.access_key,
        "AWS_SECRET_ACCESS_KEY": s3_server.app.secret_key,
        "S3_BUCKET": s3_server.app_bucket,
    }
    app = NodeApp(seed_node, "voicemail.js", app_env)
    app.env["APP_URL"] = app.url  # the app builds its action URLs from it
    async with app:
        await _claim_and_route(server, f"{app.url}/voicemail/prompt")
        caller = Sipp(
            scenario=SCENARIO, remote=("127.0.0.1", server.sip_port), service=NUMBER, timeout=60
        )
        result = await caller.run()
        assert result.returncode == 0, result.explain() + server.log()

        stored = await app.wait_for("Stored voicemail for call ", seconds=60)
        call_id, duration = re.fullmatch(
            r"Stored voicemail for call (\S+), duration (\d+)s", stored.strip()
        ).groups()  # type: ignore[union-attr]
        transcript = await app.wait_for(f"Transcript for {call_id}: ", seconds=180)
        assert transcript.split(": ", 1)[1].strip()  # words, not an empty string
        assert "Error" not in app.output and app.running

    headers = {"Authorization": f"Bearer {server.key}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers) as api:
        call = (await api.get(f"/v1/calls/{call_id}")).json()
        (recording,) = call["recordings"]
        shown = (await api.get(f"/v1/recordings/{recording['id']}")).json()
    assert call["status"] == "completed" and recording["status"] == "ready"
    assert 5 <= int(duration) <= 10  # 7 s of speech, cut at the '#'

    bucket = s3_server.client(s3_server.app)
    key = f"voicemails/{call_id}/{recording['id']}.wav"
    listed = bucket.list_objects_v2(Bucket=s3_server.app_bucket, Prefix=f"voicemails/{call_id}/")
    assert [item["Key"] for item in listed["Contents"]] == [key]
    obj = bucket.get_object(Bucket=s3_server.app_bucket, Key=key)
    body = obj["Body"].read()
    assert obj["Metadata"] == {"callid": call_id, "duration": duration}
    assert obj["ContentType"] == "audio/wav"
    assert hashlib.sha256(body).hexdigest() == shown["sha256"]  # the very file Sautikit kept


async def _wait_for(api: httpx.AsyncClient, path: str, done: Callable[[Any], bool]) -> Any:
    for _ in range(600):
        shown = (await api.get(path)).json()
        if done(shown):
            return shown
        await asyncio.sleep(0.1)
    raise AssertionError(f"{path} never got there: {shown}")


async def test_the_seeds_curl_and_handler_record_a_two_party_call(
    seed_node: Path, server: Server, callee: Sipp
) -> None:
    await _claim_and_route(server, None)
    app = NodeApp(seed_node, "record-dial.js", {})
    async with app, callee:
        curl = await asyncio.create_subprocess_exec(
            "sh",
            str(seed_node / "place-call.sh"),
            env={
                **os.environ,
                "SAUTIKIT_API_URL": server.url,
                "SAUTIKIT_API_KEY": server.key,
                "APP_URL": app.url,
            },
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(curl.communicate(), 30)
        assert curl.returncode == 0, err
        call_id = json.loads(out)["id"]
        headers = {"Authorization": f"Bearer {server.key}"}
        async with httpx.AsyncClient(base_url=server.url, headers=headers) as api:
            path = f"/v1/calls/{call_id}"
            await _wait_for(
                api, path, lambda call: [leg["status"] for leg in call["legs"]] == ["answered"]
            )
            await asyncio.sleep(3)  # both parties talk for a while
            hung_up = await api.post(path, json={"status": "completed"})
            assert hung_up.status_code in (200, 202), hung_up.text
            call = await _wait_for(
                api,
                path,
                lambda call: (
                    [r["status"] for r in call["recordings"]] == ["ready"]
                    and call["status"] == "completed"
                ),
            )
            (recording,) = call["recordings"]
            shown = (await api.get(f"/v1/recordings/{recording['id']}")).json()
        callee_result = await callee.wait()
    assert callee_result.returncode == 0, callee_result.explain()
    (leg,) = call["legs"]
    assert (call["to"], call["from"]) == ("+254722999000", NUMBER)
    # callerId: req.body.To — the form's To, the number the API call rang.
    assert (leg["to"], leg["from"], leg["status"]) == (
        "+254720000001",
        "+254722999000",
        "completed",
    )
    assert (recording["source"], shown["channels"]) == ("dial", 2)
    assert shown["duration_seconds"] >= 2
    assert "Error" not in app.output
