"""A node dies mid-call and the platform does not: two ``sautikit serve`` nodes on one
PostgreSQL; the one running a recorded call is SIGKILLed; the other closes the call
within the lease — ended, billed once for the seconds it ran, hold released, the far end
sent BYE, the recording recovered from the spool it can read, the events delivered."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from tests.serve_process import CALLEE, NUMBER, ServeProcess, calls, seed, serve_database
from tests.sipp import Sipp, requires_sipp
from tests.storage.conftest import S3Server
from tests.voice.voice_rig import AppServer, document, serve_app

from sautikit.calls.manager import HEARTBEAT_SECONDS
from sautikit.cluster.lease import NodeLease, recovery_owner
from sautikit.db import Database
from sautikit.db.models import (
    Call,
    Node,
    Recording,
    WalletEntry,
    WalletReservation,
    WebhookSubscription,
)
from sautikit.db.types import utcnow

pytestmark = [pytest.mark.sipp, requires_sipp]

PBX_SCENARIOS = Path(__file__).parent.parent / "pbx" / "scenarios"
LEASE_SECONDS = 4.0
#: The bound on recovery once the node is dead: the lease, a renewal round of the
#: survivor, and room for a loaded machine (a bound, not a timing).
RECOVERY_BOUND = LEASE_SECONDS + LEASE_SECONDS / 3 + 20.0


def node(name: str, data: Path, url: str, rtp: tuple[int, int], storage: str) -> ServeProcess:
    return ServeProcess(
        data,
        url,
        rtp_ports=rtp,
        env={
            "SAUTIKIT_NODE_ID": name,
            "SAUTIKIT_NODE_LEASE_SECONDS": str(LEASE_SECONDS),
            "SAUTIKIT_STORAGE_URL": storage,  # one bucket for every node
        },
    )


async def until(check: object, what: str, seconds: float) -> None:
    assert callable(check)
    for _ in range(int(seconds / 0.1)):
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"never happened within {seconds:g} s: {what}")


async def count(database: Database, statement: object) -> int:
    async with database.sessions() as session:
        return int(await session.scalar(statement) or 0)  # type: ignore[call-overload]


async def test_a_survivor_closes_a_killed_nodes_call_within_the_lease(
    tmp_path: Path, s3_server: S3Server
) -> None:
    with serve_app() as app:
        await _kill_mid_call(app, tmp_path, s3_server.url(f"cluster-{tmp_path.name}"))


async def _kill_mid_call(app: AppServer, tmp_path: Path, storage: str) -> None:
    answered = app.route(
        "/answered",
        document({"record": {"action": app.url("/recorded"), "timeout": 30, "maxLength": 120}}),
    )
    app.route("/recorded", document({"hangup": {}}))
    app.route("/hooks", document())
    async with (
        serve_database("postgresql", tmp_path) as (url, database),
        Sipp(scenario=PBX_SCENARIOS / "callee_answers_and_speaks.xml", timeout=90) as callee,
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
        node_b = node("node-b", tmp_path / "b" / "var", url, (31000, 31099), storage)
        node_a = node("node-a", tmp_path / "a" / "var", url, (31100, 31199), storage)
        try:
            await node_b.start()
            async with node_b.api(seeded.headers) as api:
                placed = await api.post(
                    "/v1/calls", json={"to": CALLEE, "from": NUMBER, "action_url": answered}
                )
            assert placed.status_code == 201, placed.text
            call_id = placed.json()["id"]

            async def recording() -> bool:
                return await count(database, select(func.count(Recording.id))) == 1

            await until(recording, "the call was answered and its recording began", 30)
            await node_a.start()
            await asyncio.sleep(1.5)  # some of the callee's speech reaches B's spool
            await node_b.kill()  # SIGKILL: no drain, no goodbye
            killed_at = utcnow()

            async def closed() -> bool:
                (row,) = await calls(database)
                return row.status not in ("queued", "ringing", "answered")

            await until(closed, "node A closed the dead node's call", RECOVERY_BOUND)
            result = await callee.wait()
            assert result.returncode == 0, result.explain()  # node A sent the BYE

            async def delivered() -> bool:
                kinds = {hit.headers.get("x-sautikit-event") for hit in app.hits_to("/hooks")}
                return {"call.completed", "call.recording.ready"} <= kinds

            await until(delivered, "node A delivered the call's last events", 30)
            async with node_a.api(seeded.headers) as api:
                (listed,) = (await api.get("/v1/recordings")).json()["data"]
                shown = (await api.get(f"/v1/recordings/{listed['id']}")).json()
            async with httpx.AsyncClient() as http:  # straight from the S3 store
                audio = await http.get(shown["download_url"])
            assert audio.status_code == 200 and audio.content[:4] == b"RIFF"
            assert "X-Amz-Signature" in shown["download_url"]  # the store's own URL
        finally:
            await node_b.kill()
            await node_a.kill()

        (call,) = await calls(database)
        assert call.id == call_id
        assert (call.status, call.hangup_cause) == ("completed", "network_error")
        assert call.owner == recovery_owner("node-b", "node-a")
        assert call.answered_at is not None and call.duration_seconds is not None
        ran = (killed_at - call.answered_at).total_seconds()
        assert 1 <= call.duration_seconds <= ran + HEARTBEAT_SECONDS + 1
        assert call.price_minor is not None and call.price_minor > 0
        debits = select(func.count(WalletEntry.id)).where(
            WalletEntry.call_id == call_id, WalletEntry.amount_minor < 0
        )
        assert await count(database, debits) == 1
        assert await count(database, select(func.count(WalletReservation.id))) == 0
        async with database.sessions() as session:
            dead = await session.get_one(Node, "node-b")
            (stored,) = (await session.scalars(select(Recording))).all()
        assert dead.recovered_by == "node-a"
        assert stored.status == "ready", stored.failure_reason  # B's spool was readable


async def test_a_recording_whose_spool_is_gone_fails_with_the_reason(database: Database) -> None:
    """No spool readable from the survivor: the recording is ``failed``, and says why."""
    seeded = await seed(database, voice_url="http://127.0.0.1:9/voice", trunk_port=9)
    now = utcnow()
    async with database.transaction() as session:
        session.add(
            Node(
                id="gone",
                started_at=now - timedelta(minutes=5),
                renewed_at=now - timedelta(minutes=1),
                lease_expires_at=now - timedelta(seconds=30),
            )
        )
        call = Call(
            workspace_id=seeded.workspace_id,
            direction="outbound",
            from_number=NUMBER,
            to_number=CALLEE,
            status="answered",
            owner="gone",
            answered_at=now - timedelta(seconds=40),
        )
        session.add(call)
        await session.flush()
        session.add(
            Recording(
                workspace_id=seeded.workspace_id,
                call_id=call.id,
                source="record",
                status="recording",
                spool_path="/nonexistent/spool/x.wav",
            )
        )
    asked: list[str] = []

    async def recover_calls(owner: str) -> int:
        asked.append(owner)
        return 1

    lease = NodeLease(database, node="me", lease_seconds=5, recover_calls=recover_calls)
    await lease.register()
    assert await lease.recover_dead() == ["gone"]
    assert await lease.recover_dead() == []  # recovered once
    assert asked == [recovery_owner("gone", "me")]
    async with database.sessions() as session:
        (recording,) = (await session.scalars(select(Recording))).all()
        row = await session.get_one(Call, call.id)
    assert row.owner == recovery_owner("gone", "me")
    assert recording.status == "failed"
    assert recording.failure_reason is not None and "node gone" in recording.failure_reason


async def test_a_node_declared_dead_ends_its_calls_and_takes_a_new_lease(
    database: Database,
) -> None:
    """A node stalled past its lease is recovered by another; when it wakes, its renewal
    fails, it ends what it still runs, and it is a live node again."""
    now = [utcnow()]
    fenced: list[str] = []

    async def closed(owner: str) -> int:
        return 0

    async def end_calls() -> None:
        fenced.append("ended")

    def clock() -> datetime:
        return now[0]

    stalled = NodeLease(
        database,
        node="stalled",
        lease_seconds=5,
        recover_calls=closed,
        on_fenced=end_calls,
        clock=clock,
    )
    survivor = NodeLease(
        database, node="survivor", lease_seconds=5, recover_calls=closed, clock=clock
    )
    await stalled.register()
    await survivor.register()
    now[0] += timedelta(seconds=6)
    await survivor.renew()
    assert await survivor.recover_dead() == ["stalled"]
    assert await stalled.renew() is False
    assert fenced == ["ended"]
    assert await stalled.renew() is True  # a new lease, recovered by nobody
    async with database.sessions() as session:
        row = await session.get_one(Node, "stalled")
    assert row.recovered_at is None and row.lease_expires_at > now[0]
