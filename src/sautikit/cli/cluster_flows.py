"""The flows ``sautikit cluster-demo`` runs on the cluster it brought up (cli.cluster):
the seed's voicemail and record-dial apps and a three-party conference, every caller
through Kamailio, then a table of where each leg ran."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import uvicorn
from fastapi import FastAPI
from sqlalchemy import select

from sautikit import accounts
from sautikit.actions import conference, response
from sautikit.billing.ledger import top_up
from sautikit.billing.numbers import InventoryLine, claim_number, import_inventory
from sautikit.cli.common import console
from sautikit.cli.demo import EXAMPLES, MESSAGE, _load_example, _voiced_seconds
from sautikit.db import Database
from sautikit.db.models import Call, ConferenceRoom, Number, Recording, Trunk
from sautikit.db.types import utcnow
from sautikit.events.delivery import workspace_signing_secret
from sautikit.media import TextToSpeech
from sautikit.pbx import CallScript, Phone

if TYPE_CHECKING:
    from sautikit.cli.cluster import Cluster, DemoPorts

__all__ = ["Seeded", "run_flows", "seed_demo"]

VOICEMAIL = "+254700000201"
RECORD_DIAL = "+254700000202"
CONFERENCE = "+254700000203"
CUSTOMER = "+254722999000"
AGENT = "+254720000001"
ROOM = "cluster-demo"


@dataclass
class Seeded:
    key: str
    secret: str
    workspace_id: str


@dataclass
class Legs:
    """Which flow each call belongs to, and where the conference room was held."""

    flows: dict[str, str] = field(default_factory=dict)
    room_node: str | None = None


def app_urls(ports: DemoPorts) -> dict[str, str]:
    """Where the demo's three apps listen."""
    return {
        name: f"http://127.0.0.1:{ports.app(index)}"
        for index, name in enumerate(("voicemail", "record_dial", "conference"))
    }


async def seed_demo(database_url: str, ports: DemoPorts) -> Seeded:
    """The operator's part: a workspace with a key and credit, the numbers routed to the
    apps, and a carrier trunk on loopback."""
    database = Database(database_url)
    try:
        return await _seed(database, ports.carrier, app_urls(ports))
    finally:
        await database.close()


async def _seed(database: Database, carrier_port: int, app_urls: dict[str, str]) -> Seeded:
    async with database.transaction() as session:
        workspace = await accounts.create_workspace(session, "Cluster demo")
        key = await accounts.create_api_key(session, workspace.id, sorted(accounts.SCOPES), "demo")
        await top_up(session, workspace.id, 100_000, idempotency_key="cluster-demo")
        lines = [
            InventoryLine(index, e164, 10_000, ("voice",))
            for index, e164 in enumerate((VOICEMAIL, RECORD_DIAL, CONFERENCE))
        ]
        await import_inventory(session, lines)
        for e164, voice_url in (
            (VOICEMAIL, f"{app_urls['voicemail']}/voicemail/prompt"),
            (RECORD_DIAL, None),
            (CONFERENCE, f"{app_urls['conference']}/conference"),
        ):
            number = await session.scalar(select(Number).where(Number.e164 == e164))
            assert number is not None
            number = await claim_number(
                session, workspace_id=workspace.id, number_id=number.id, now=utcnow()
            )
            number.voice_url = voice_url
        # One carrier on loopback: the phones call in from 127.0.0.1 (through Kamailio),
        # and calls out to +254 reach the carrier phone.
        session.add(
            Trunk(
                name="demo-carrier",
                host="127.0.0.1",
                port=carrier_port,
                prefixes=["+254"],
                inbound_addresses=["127.0.0.1/32"],
            )
        )
        secret = await workspace_signing_secret(session, workspace.id)
    return Seeded(key.secret, secret, workspace.id)


def _conference_app() -> FastAPI:
    app = FastAPI()

    @app.post("/conference")
    async def join() -> dict[str, Any]:
        return response(conference(ROOM, beep=False))

    return app


@contextlib.asynccontextmanager
async def _serving(app: FastAPI, port: int) -> AsyncIterator[str]:
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off")
    )
    server.config.setup_event_loop = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    while not server.started and not task.done():  # noqa: ASYNC110 - uvicorn has no event
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def run_flows(cluster: Cluster) -> bool:
    ports = cluster.ports
    voicemail = _load_example(EXAMPLES / "voicemail" / "app.py")
    record_dial = _load_example(EXAMPLES / "record-dial" / "app.py")
    urls = app_urls(ports)
    database = Database(cluster.database_url)
    tts = TextToSpeech(cluster.root / "tts")
    legs = Legs()
    try:
        seeded = cluster.seeded
        apps = (
            voicemail.create_app(
                voicemail.VoicemailSettings(
                    signing_secret=seeded.secret, local_dir=cluster.root / "voicemails"
                )
            ),
            record_dial.create_app(
                record_dial.RecordDialSettings(agent_number=AGENT, signing_secret=seeded.secret)
            ),
            _conference_app(),
        )
        async with (
            contextlib.AsyncExitStack() as stack,
            httpx.AsyncClient(
                base_url=cluster.api,
                headers={"Authorization": f"Bearer {seeded.key}"},
                timeout=30,
            ) as api,
        ):
            for index, app in enumerate(apps):
                await stack.enter_async_context(_serving(app, ports.app(index)))
            console.print("[green]✓[/] the voicemail, record-dial and conference apps are up")
            ok = await _voicemail(cluster, database, tts, voicemail.GREETING, legs)
            ok = await _record_dial(cluster, database, api, tts, urls, legs) and ok
            ok = await _conference(cluster, database, tts, legs) and ok
        await _print_legs(database, legs)
        return ok
    finally:
        await database.close()


async def _calls(database: Database) -> list[Call]:
    async with database.sessions() as session:
        return list((await session.scalars(select(Call).order_by(Call.created_at))).all())


async def _label_new_calls(database: Database, legs: Legs, flow: str) -> None:
    for call in await _calls(database):
        legs.flows.setdefault(call.id, flow)


async def _ready_recording(database: Database, source: str, seconds: float) -> Recording | None:
    for _ in range(int(seconds / 0.3)):
        async with database.sessions() as session:
            found = await session.scalar(
                select(Recording).where(Recording.source == source, Recording.status == "ready")
            )
        if found is not None:
            return found
        await asyncio.sleep(0.3)
    return None


async def _voicemail(
    cluster: Cluster, database: Database, tts: TextToSpeech, greeting: str, legs: Legs
) -> bool:
    console.rule("voicemail (examples/voicemail)")
    spoken = await tts.synthesize(greeting, "en-US")
    async with Phone(tts=tts, rtp_ports=cluster.ports.phone_rtp(1)) as phone:
        report = await phone.call(
            VOICEMAIL,
            CallScript(say=MESSAGE, speak_after=len(spoken) / 8000 + 2.5, dtmf="#", linger=10),
            server=cluster.balancer,
            caller_id="+254711000201",
        )
    await _label_new_calls(database, legs, "voicemail")
    if not report.answered:
        console.print(f"[red]✗[/] the voicemail call was not answered: {report.status}")
        return False
    stored = await _ready_recording(database, "record", 30)
    if stored is None:
        console.print("[red]✗[/] no voicemail recording was stored")
        return False
    console.print(
        f"[green]✓[/] the caller left a message; recording {stored.id} "
        f"({stored.duration_seconds} s) is in the S3 store"
    )
    return True


async def _record_dial(
    cluster: Cluster,
    database: Database,
    api: httpx.AsyncClient,
    tts: TextToSpeech,
    urls: dict[str, str],
    legs: Legs,
) -> bool:
    console.rule("record-dial (examples/record-dial, placed through node-1's API)")
    async with Phone(
        tts=tts, sip_port=cluster.ports.carrier, rtp_ports=cluster.ports.phone_rtp(0)
    ) as carrier:
        customer = asyncio.ensure_future(
            carrier.answer(CallScript(say="Hello, this is the customer.", linger=20), within=60)
        )
        try:
            return await _place_record_dial(database, api, carrier, customer, urls, legs)
        finally:
            customer.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await customer


async def _place_record_dial(
    database: Database,
    api: httpx.AsyncClient,
    carrier: Phone,
    customer: asyncio.Future[Any],
    urls: dict[str, str],
    legs: Legs,
) -> bool:
    placed = await api.post(
        "/v1/calls",
        json={
            "to": CUSTOMER,
            "from": RECORD_DIAL,
            "action_url": f"{urls['record_dial']}/calls/connect-and-record",
            "events_url": f"{urls['record_dial']}/calls/events",
        },
    )
    if placed.status_code != 201:
        console.print(f"[red]✗[/] POST /v1/calls answered {placed.status_code}")
        return False
    agent = await carrier.answer(
        CallScript(say="Good morning, this is the agent.", speak_after=1, hangup_after=6),
        within=60,
    )
    await customer
    await _label_new_calls(database, legs, "record-dial")
    stored = await _ready_recording(database, "dial", 30)
    if not agent.answered or stored is None:
        console.print("[red]✗[/] the dialled call was not recorded")
        return False
    console.print(
        f"[green]✓[/] the customer was connected to the agent; the two-party recording "
        f"{stored.id} ({stored.duration_seconds} s) is in the S3 store"
    )
    return True


async def _conference(cluster: Cluster, database: Database, tts: TextToSpeech, legs: Legs) -> bool:
    console.rule(f"a three-party conference (room {ROOM!r}), the callers on three nodes")
    heard = [cluster.root / f"participant-{index + 1}.wav" for index in range(3)]

    async def participant(index: int) -> bool:
        await asyncio.sleep(1.0 * index)
        async with Phone(tts=tts, rtp_ports=cluster.ports.phone_rtp(2 + index)) as phone:
            report = await phone.call(
                CONFERENCE,
                CallScript(
                    say=f"Participant {index + 1} here. Can everybody hear me?",
                    speak_after=4.0 + 3.0 * index,
                    record_to=heard[index],
                    hangup_after=16.0 - index,
                ),
                server=cluster.balancer,
                caller_id=f"+25471100030{index + 1}",
            )
        return report.answered

    async def watch_room() -> None:
        while legs.room_node is None:
            async with database.sessions() as session:
                legs.room_node = await session.scalar(
                    select(ConferenceRoom.node).where(ConferenceRoom.name == ROOM)
                )
            await asyncio.sleep(0.2)

    watching = asyncio.ensure_future(watch_room())
    try:
        answered = await asyncio.gather(*(participant(index) for index in range(3)))
    finally:
        watching.cancel()
    await _label_new_calls(database, legs, "conference")
    if not all(answered):
        console.print("[red]✗[/] not every participant got in")
        return False
    ok = True
    for index, path in enumerate(heard):
        voiced = await asyncio.to_thread(_voiced_seconds, path) if path.exists() else 0.0
        mark = "[green]✓[/]" if voiced >= 1.0 else "[red]✗[/]"
        ok = ok and voiced >= 1.0
        console.print(f"{mark} participant {index + 1} heard {voiced:.1f} s of the others")
    console.print(f"the room was held on {legs.room_node or '?'}")
    return ok


async def _print_legs(database: Database, legs: Legs) -> None:
    for _ in range(50):  # the last hang-ups are still being written
        found = [call for call in await _calls(database) if call.id in legs.flows]
        if all(call.status in ("completed", "failed", "busy", "no-answer") for call in found):
            break
        await asyncio.sleep(0.2)
    console.rule("where each leg ran")
    for call in found:
        flow = legs.flows[call.id]
        if flow == "conference" and call.owner == legs.room_node:
            flow = "conference, room here"
        leg = "dial leg" if call.parent_call_id else call.direction
        console.print(
            f"{call.owner or '?':7} {flow:22} {leg:9} {call.from_number} → {call.to_number}  "
            f"{call.status} {call.duration_seconds or 0} s  {call.id}",
            highlight=False,
            soft_wrap=True,
        )
