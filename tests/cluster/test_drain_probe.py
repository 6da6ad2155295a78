"""A draining node tells a balancer's probe to go elsewhere: after SIGTERM, while a live
call keeps it in its grace, OPTIONS outside a dialog answer 503 (Kamailio's dispatcher
then marks it down) as ``/readyz`` does for HTTP."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest
from tests.serve_process import NUMBER, ServeProcess, calls, seed, serve_database
from tests.sipp import Sipp, requires_sipp
from tests.voice.voice_rig import document, serve_app

pytestmark = [pytest.mark.sipp, requires_sipp]

SCENARIOS = Path(__file__).parent / "scenarios"
VOICE_SCENARIOS = Path(__file__).parent.parent / "voice" / "scenarios"


async def test_options_answer_503_while_the_node_drains(tmp_path: Path) -> None:
    with serve_app() as app:
        answer = app.route("/voice", document({"pause": {"length": 30}}))
        async with serve_database("sqlite", tmp_path) as (url, database):
            await seed(database, voice_url=answer, trunk_port=9)
            async with ServeProcess(tmp_path / "var", url, grace=30) as node:
                serving = tmp_path / "options_serving.xml"
                serving.write_text(
                    (SCENARIOS / "options_draining.xml")
                    .read_text()
                    .replace('response="503"', 'response="200"')
                )
                up = await Sipp(scenario=serving, remote=node.sip).run()
                assert up.returncode == 0, up.explain()  # before the drain: 200
                caller = asyncio.ensure_future(
                    Sipp(
                        scenario=VOICE_SCENARIOS / "caller_talks_then_hangs_up.xml",
                        remote=node.sip,
                        service=NUMBER,
                        timeout=30,
                    ).run()
                )
                for _ in range(200):
                    found = await calls(database)
                    if found and found[0].status == "answered":
                        break
                    await asyncio.sleep(0.05)
                node.send_signal(signal.SIGTERM)
                async with node.api() as api:
                    for _ in range(100):
                        if (await api.get("/readyz")).status_code == 503:
                            break
                        await asyncio.sleep(0.05)
                probe = await Sipp(
                    scenario=SCENARIOS / "options_draining.xml", remote=node.sip
                ).run()
                assert probe.returncode == 0, probe.explain()
                result = await caller
                assert result.returncode == 0, result.explain()  # the live call went on
                assert await node.wait_exit(20) == 0
