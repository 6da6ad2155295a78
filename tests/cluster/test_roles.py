"""Split roles (``sautikit serve --roles``): three nodes on one PostgreSQL, one role each.
The api node takes the API request and binds no SIP; the pbx node places the call; the
worker node delivers its events. The api-less nodes answer only for operations."""

from __future__ import annotations

import asyncio
import socket
import sys
from pathlib import Path

import pytest
from tests.serve_process import CALLEE, NUMBER, ServeProcess, calls, seed, serve_database
from tests.sipp import SCENARIOS as SIP_SCENARIOS
from tests.sipp import Sipp, requires_sipp
from tests.voice.voice_rig import document, serve_app

from sautikit.db.models import WebhookSubscription

pytestmark = [pytest.mark.sipp, requires_sipp]


def role_node(role: str, data: Path, url: str, rtp: tuple[int, int]) -> ServeProcess:
    return ServeProcess(
        data, url, rtp_ports=rtp, env={"SAUTIKIT_NODE_ID": role, "SAUTIKIT_ROLES": role}
    )


def sip_port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


async def test_an_api_node_a_pbx_node_and_a_worker_node_carry_one_call(tmp_path: Path) -> None:
    with serve_app() as app:
        app.route("/answered", document({"say": {"text": "Hello."}}, {"hangup": {}}))
        app.route("/hooks", document())
        async with (
            serve_database("postgresql", tmp_path) as (url, database),
            Sipp(scenario=SIP_SCENARIOS / "uas_answer.xml", timeout=60) as callee,
        ):
            seeded = await seed(database, voice_url=app.url("/voice"), trunk_port=callee.port)
            async with database.transaction() as session:
                session.add(
                    WebhookSubscription(
                        workspace_id=seeded.workspace_id,
                        url=app.url("/hooks"),
                        events=["*"],
                        secret="s",
                    )
                )
            api_node = role_node("api", tmp_path / "api" / "var", url, (32000, 32099))
            pbx_node = role_node("pbx", tmp_path / "pbx" / "var", url, (32100, 32199))
            worker_node = role_node("worker", tmp_path / "worker" / "var", url, (32200, 32299))
            nodes = [api_node, pbx_node, worker_node]
            try:
                for node in nodes:
                    await node.start()
                assert "no SIP; roles api" in api_node.log
                assert sip_port_is_free(api_node.sip_port)  # an api node binds no SIP
                assert sip_port_is_free(worker_node.sip_port)
                assert not sip_port_is_free(pbx_node.sip_port)
                async with api_node.api(seeded.headers) as api:
                    ready = (await api.get("/readyz")).json()
                    assert ready["status"] == "ready" and "sip" not in ready["checks"]
                    placed = await api.post(
                        "/v1/calls",
                        json={"to": CALLEE, "from": NUMBER, "action_url": app.url("/answered")},
                    )
                    assert placed.status_code == 201, placed.text
                for _ in range(300):
                    (call,) = await calls(database)
                    if call.status == "completed":
                        break
                    await asyncio.sleep(0.1)
                assert (call.status, call.owner) == ("completed", "pbx"), call.hangup_cause
                answered = await callee.wait()
                assert answered.returncode == 0, answered.explain()
                for _ in range(300):  # only the worker node delivers events
                    kinds = {hit.headers.get("x-sautikit-event") for hit in app.hits_to("/hooks")}
                    if "call.completed" in kinds:
                        break
                    await asyncio.sleep(0.1)
                assert "call.completed" in kinds, kinds
                for node in (pbx_node, worker_node):  # no API there, only operations
                    async with node.api(seeded.headers) as api:
                        assert (await api.get("/v1/calls")).status_code == 404
                        assert (await api.get("/readyz")).status_code == 200
                        metrics = await api.get("/metrics")
                        assert f'node_id="{node.env["SAUTIKIT_NODE_ID"]}"' in metrics.text
            finally:
                for node in nodes:
                    await node.kill()


async def test_split_roles_on_sqlite_are_refused_plainly(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sautikit",
        "serve",
        "--roles",
        "api",
        "--data-dir",
        str(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    assert process.returncode == 2
    assert b"split roles need a database the nodes share" in output


async def test_an_unknown_role_is_named(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sautikit",
        "serve",
        "--roles",
        "api,mixer",
        "--data-dir",
        str(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    assert process.returncode == 2
    assert b"unknown role 'mixer'" in output
