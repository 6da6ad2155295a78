"""One conference room wherever its callers land: two callers to one room name through
Kamailio (round-robin over two nodes) land on different nodes and are in one room. The
room lives on the first caller's node (named in PostgreSQL); the second caller's media is
relayed there. The room's recording, made on the first node, holds the second caller's
speech: it crossed the nodes."""

from __future__ import annotations

import asyncio
import io
import wave
from pathlib import Path

import httpx
import numpy as np
import pytest
from sqlalchemy import select
from tests.cluster.test_kamailio import kamailio, requires_kamailio, write_config
from tests.serve_process import NUMBER, ServeProcess, calls, free_sip_port, seed, serve_database
from tests.sipp import Sipp, requires_sipp
from tests.storage.conftest import S3Server
from tests.voice.voice_rig import document, serve_app

from sautikit.db.models import ConferenceRoom

pytestmark = [pytest.mark.sipp, requires_sipp, requires_kamailio]

SCENARIOS = Path(__file__).parent / "scenarios"


def caller(balancer: tuple[str, int], workdir: Path, *, talks: bool, seconds: float) -> Sipp:
    scenario = workdir / f"caller_{'talks' if talks else 'listens'}.xml"
    text = (SCENARIOS / "talking_caller_via_proxy.xml").read_text()
    if not talks:
        pcap = '<exec play_pcap_audio="/usr/share/sip-tester/g711a.pcap"/>'
        text = text.replace(f"<nop><action>{pcap}</action></nop>", "")
    scenario.write_text(text)
    return Sipp(
        scenario=scenario,
        remote=balancer,
        service=NUMBER,
        timeout=seconds + 30,
        extra=["-d", str(int(seconds * 1000))],
    )


def loudest_second(wav: bytes) -> float:
    with wave.open(io.BytesIO(wav)) as reader:
        rate = reader.getframerate()
        samples = np.frombuffer(reader.readframes(reader.getnframes()), dtype=np.int16)
    seconds = [samples[i : i + rate].astype(np.float64) for i in range(0, len(samples), rate)]
    return max(float(np.sqrt(np.mean(part**2))) for part in seconds if len(part))


async def test_two_callers_on_two_nodes_are_in_one_room(
    tmp_path: Path, s3_server: S3Server
) -> None:
    storage = s3_server.url(f"rooms-{tmp_path.name}")
    with serve_app() as app:
        app.route(
            "/voice",
            document(
                {"conference": {"name": "standup", "beep": False, "record": True}},
                {"hangup": {}},
            ),
        )
        async with serve_database("postgresql", tmp_path) as (url, database):
            seeded = await seed(database, voice_url=app.url("/voice"), trunk_port=9)
            nodes = [
                ServeProcess(
                    tmp_path / name / "var",
                    url,
                    rtp_ports=ports,
                    env={"SAUTIKIT_NODE_ID": name, "SAUTIKIT_STORAGE_URL": storage},
                )
                for name, ports in (("a", (32400, 32499)), ("b", (32500, 32599)))
            ]
            try:
                for node in nodes:
                    await node.start()
                listen = free_sip_port()
                await write_config(tmp_path / "kamailio", nodes, listen)
                async with kamailio(tmp_path / "kamailio"):
                    balancer = ("127.0.0.1", listen)
                    async with caller(balancer, tmp_path, talks=False, seconds=12) as first:
                        for _ in range(200):
                            if any(c.status == "answered" for c in await calls(database)):
                                break
                            await asyncio.sleep(0.05)
                        async with caller(balancer, tmp_path, talks=True, seconds=8) as second:
                            await asyncio.sleep(3)
                            found = await calls(database)
                            async with database.sessions() as session:
                                (room,) = (await session.scalars(select(ConferenceRoom))).all()
                            (holder,) = [
                                node for node in nodes if node.env["SAUTIKIT_NODE_ID"] == room.node
                            ]
                            async with holder.api(seeded.headers) as api:
                                shown = (await api.get("/v1/conferences/standup")).json()
                            talked = await second.wait()
                        listened = await first.wait()
                assert talked.returncode == 0, talked.explain()
                assert listened.returncode == 0, listened.explain()
                owners = sorted(call.owner or "" for call in found)
                assert owners == ["a", "b"], owners  # the balancer spread the callers
                first_call = min(found, key=lambda call: call.created_at)
                assert room.node == first_call.owner  # the room lives where it began
                assert shown["status"] == "in-progress"
                assert sorted(p["call_id"] for p in shown["participants"]) == sorted(
                    call.id for call in found
                )
                async with holder.api(seeded.headers) as api:
                    for _ in range(300):
                        listed = (await api.get("/v1/recordings")).json()["data"]
                        if listed and listed[0]["status"] == "ready":
                            break
                        await asyncio.sleep(0.1)
                    assert listed and listed[0]["status"] == "ready", listed
                    recording = (await api.get(f"/v1/recordings/{listed[0]['id']}")).json()
                async with httpx.AsyncClient() as http:
                    audio = (await http.get(recording["download_url"])).content
                # Only the caller on the other node spoke: its speech is in the room's mix.
                assert loudest_second(audio) > 300
                async with database.sessions() as session:  # the room ended: its row is gone
                    assert (await session.scalars(select(ConferenceRoom))).all() == []
            finally:
                for node in nodes:
                    await node.kill()
