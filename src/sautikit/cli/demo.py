"""``sautikit demo``: the whole product on embedded defaults, with no network.

It starts Sautikit (SQLite and a local object store under ``./var``), loads a demo number
and some credit, starts the voicemail example app (the seed page's app, in Python) and
an event receiver on loopback, then calls the number with the test phone, which speaks a
sentence and presses ``#``. Each step is reported as it happens: the prompt heard, the
recording stored, RecordingUrl fetched by the app, the transcript, the call's cost in
KES, and the events delivered with valid signatures.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import httpx
import numpy as np
import uvicorn
from fastapi import FastAPI, Request, Response
from rich.console import Console
from sqlalchemy import select

from sautikit import accounts
from sautikit.app import open_database, serve
from sautikit.billing.ledger import format_kes, top_up
from sautikit.billing.numbers import InventoryLine, claim_number, import_inventory
from sautikit.config import Settings
from sautikit.db.models import Number, Rate, Trunk, Workspace
from sautikit.db.types import utcnow
from sautikit.events.delivery import workspace_signing_secret
from sautikit.media import TextToSpeech, load_wav
from sautikit.pbx import CallScript, Phone
from sautikit.webhooks import SIGNATURE_HEADER, WebhookVerificationError, verify

__all__ = ["run_demo"]

T = TypeVar("T")

DEMO_NUMBER = "+254700000100"
CALLER = "+254711000200"
MESSAGE = "Hello, this is Wanjiku. Please call me back about my order tomorrow morning."
DEMO_INBOUND_RATE = 100  # minor units a minute: KES 1.00
EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
EXAMPLE = EXAMPLES / "voicemail" / "app.py"


@dataclass
class Demo:
    """What the demo set up: the key, the number's id and the signing secret."""

    key: str
    number_id: str
    secret: str


@dataclass
class EventLog:
    """What the demo's event receiver got, by kind, and whether each signature held."""

    received: list[tuple[str, bool]] = field(default_factory=list)

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.received]


def _free(host: str, port: int, kind: socket.SocketKind = socket.SOCK_STREAM) -> bool:
    with socket.socket(socket.AF_INET, kind) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _any_free_port(host: str, kind: socket.SocketKind) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _load_example(path: Path = EXAMPLE) -> ModuleType:
    """The example app at ``path`` (examples/NAME/app.py), loaded as a module."""
    if not path.exists():
        raise FileNotFoundError(f"the demo runs from a source checkout ({path} is missing)")
    spec = importlib.util.spec_from_file_location(f"sautikit_demo_{path.parent.name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


async def _prepare(settings: Settings) -> Demo:
    """The operator's part, repeatable: a workspace, a key, a number, credit, a trunk."""
    async with (
        open_database(settings, migrate=True) as database,
        database.transaction() as session,
    ):
        workspace = await session.scalar(
            select(Workspace).where(Workspace.name == "Demo workspace")
        ) or await accounts.create_workspace(session, "Demo workspace")
        key = await accounts.create_api_key(session, workspace.id, sorted(accounts.SCOPES), "demo")
        await top_up(session, workspace.id, 50_000, idempotency_key="demo-credit")
        await import_inventory(session, [InventoryLine(0, DEMO_NUMBER, 10_000, ("voice",))])
        number = await session.scalar(select(Number).where(Number.e164 == DEMO_NUMBER))
        assert number is not None
        if number.workspace_id is None:
            number = await claim_number(
                session, workspace_id=workspace.id, number_id=number.id, now=utcnow()
            )
        if await session.scalar(select(Trunk).where(Trunk.name == "demo-loopback")) is None:
            # The demo's phone calls in from 127.0.0.1, as a carrier would.
            session.add(
                Trunk(name="demo-loopback", host="127.0.0.1", inbound_addresses=["127.0.0.1/32"])
            )
        if not await session.scalar(select(Rate.id).where(Rate.workspace_id == workspace.id)):
            # Inbound calls are free by default; this workspace pays for them, per second,
            # so the demo has a cost to show.
            session.add(
                Rate(
                    workspace_id=workspace.id,
                    direction="inbound",
                    prefix="+254",
                    destination="Kenya (demo rate)",
                    rate_per_minute_minor=DEMO_INBOUND_RATE,
                )
            )
        secret = await workspace_signing_secret(session, workspace.id)
    return Demo(key.secret, number.id, secret)


def _event_receiver(secret: str, log: EventLog) -> FastAPI:
    receiver = FastAPI()

    @receiver.post("/events")
    async def event(request: Request) -> Response:
        body = await request.body()
        try:
            verify(body, request.headers.get(SIGNATURE_HEADER), secret)
            valid = True
        except WebhookVerificationError:
            valid = False
        log.received.append((request.headers.get("X-Sautikit-Event", "?"), valid))
        return Response(status_code=204)

    return receiver


@contextlib.asynccontextmanager
async def _serving(app: Any) -> AsyncIterator[str]:
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="off")
    )
    # The demo already runs inside its event loop; uvicorn must not install another.
    server.config.setup_event_loop = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    while not server.started and not task.done():  # noqa: ASYNC110 - uvicorn has no event
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def _voiced_seconds(path: Path) -> float:
    """Seconds of a recording louder than a whisper, in 20 ms frames."""
    samples = load_wav(path).astype(np.float64)
    frames = samples[: len(samples) // 160 * 160].reshape(-1, 160)
    return float(np.count_nonzero(np.sqrt((frames**2).mean(axis=1)) > 300) * 0.02)


def _first(folder: Path, pattern: str) -> Path | None:
    return next(folder.glob(pattern), None)


async def _until(probe: Callable[[], Awaitable[T | None]], seconds: float) -> T | None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = await probe()
        if found:
            return found
        await asyncio.sleep(0.3)
    return None


async def run_demo(settings: Settings, console: Console) -> int:
    started = time.monotonic()
    updates: dict[str, Any] = {"allow_private_http": True}  # the demo's apps are on loopback
    # Taken (or 0) ports are swapped for free ones, named up front: signed recording URLs
    # and the phone need the real port.
    if settings.http_port == 0 or not _free(settings.http_host, settings.http_port):
        updates["http_port"] = _any_free_port(settings.http_host, socket.SOCK_STREAM)
    sip_port = settings.sip_port
    if sip_port == 0 or not _free(settings.sip_host, sip_port, socket.SOCK_DGRAM):
        sip_port = updates["sip_port"] = _any_free_port(settings.sip_host, socket.SOCK_DGRAM)
    settings = settings.model_copy(update=updates)
    step = _Steps(console)

    console.rule("[bold]Sautikit demo")
    console.print(f"data directory: {settings.data_dir.resolve()}")
    demo = await _prepare(settings)
    step.ok(f"demo workspace with {DEMO_NUMBER} and {format_kes(50_000)} of credit")

    listening: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    sautikit: asyncio.Future[Any] = asyncio.create_task(
        serve(settings, on_ready=listening.set_result)
    )
    await asyncio.wait([sautikit, listening], return_when=asyncio.FIRST_COMPLETED)
    if not listening.done():
        await sautikit  # start-up failed: let its error surface
    base = listening.result()
    step.ok(f"Sautikit is up: API {base}, SIP udp/tcp 127.0.0.1:{sip_port}")

    events = EventLog()
    voicemail = _load_example()
    folder = settings.data_dir / "demo-app"
    app = voicemail.create_app(
        voicemail.VoicemailSettings(signing_secret=demo.secret, local_dir=folder)
    )
    try:
        async with (
            _serving(app) as app_url,
            _serving(_event_receiver(demo.secret, events)) as receiver_url,
            httpx.AsyncClient(
                base_url=base, headers={"Authorization": f"Bearer {demo.key}"}, timeout=30
            ) as api,
        ):
            step.ok(f"the voicemail app (examples/voicemail) is up: {app_url}")
            routing = {
                "voice_url": f"{app_url}/voicemail/prompt",
                "events_url": f"{receiver_url}/events",
            }
            answer = await api.patch(f"/v1/numbers/{demo.number_id}/routing", json=routing)
            answer.raise_for_status()
            step.ok(f"{DEMO_NUMBER} routes to the app; events go to {receiver_url}/events")
            ok = await _call_and_report(settings, api, step, events, folder, sip_port, voicemail)
    finally:
        sautikit.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sautikit
    console.rule()
    console.print(f"finished in {time.monotonic() - started:.0f} s")
    console.print(
        "Next: [bold]sautikit serve[/] and open http://127.0.0.1:8080/docs (the API "
        "reference; /openapi.json for the document). README.md has the quickstart and "
        "the operator guide; docs/ has a page per voice action; examples/ holds the apps."
    )
    return 0 if ok else 1


class _Steps:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.failed = 0

    def ok(self, text: str) -> None:
        self.console.print(f"[green]✓[/] {text}")

    def fail(self, text: str) -> None:
        self.failed += 1
        self.console.print(f"[red]✗[/] {text}")


async def _call_and_report(
    settings: Settings,
    api: httpx.AsyncClient,
    step: _Steps,
    events: EventLog,
    folder: Path,
    sip_port: int,
    voicemail: ModuleType,
) -> bool:
    tts = TextToSpeech(settings.data_dir / "tts")
    greeting = await tts.synthesize(voicemail.GREETING, "en-US")
    heard = settings.data_dir / "demo-phone-heard.wav"
    heard.unlink(missing_ok=True)
    step.ok(f"calling {DEMO_NUMBER} with the test phone: it listens, speaks, presses #")
    async with Phone(tts=tts, rtp_ports=(30000, 30999)) as phone:
        report = await phone.call(
            DEMO_NUMBER,
            CallScript(
                say=MESSAGE,
                # The greeting (the app's answer and speech take a moment), then the beep.
                speak_after=len(greeting) / 8000 + 2.5,
                dtmf="#",
                record_to=heard,
                linger=20,
            ),
            server=("127.0.0.1", sip_port),
            caller_id=CALLER,
        )
    if not report.answered:
        step.fail(f"the call was not answered: {report.status}")
        return False
    spoken = await asyncio.to_thread(_voiced_seconds, heard)
    step.ok(f"the prompt played: the phone heard {spoken:.1f} s of speech and the beep")

    calls = (await api.get("/v1/calls", params={"limit": 1})).json()["data"]
    call_id = calls[0]["id"]

    async def recording() -> dict[str, Any] | None:
        found = (await api.get("/v1/recordings", params={"call_id": call_id})).json()["data"]
        return found[0] if found and found[0]["status"] == "ready" else None

    stored = await _until(recording, 30)
    if stored is None:
        step.fail("no recording was stored")
        return False
    step.ok(
        f"recording {stored['id']} stored: {stored['duration_seconds']} s, {stored['format']}, "
        f"sha256 {stored['sha256'][:12]}…"
    )

    async def fetched() -> Path | None:
        return await asyncio.to_thread(_first, folder, f"voicemails/{call_id}/*.wav")

    copy = await _until(fetched, 30)
    if copy is None:
        step.fail("the app did not fetch RecordingUrl")
    else:
        step.ok(f"the app fetched RecordingUrl and stored it: {copy}")

    async def transcript() -> str | None:
        found = await api.get(f"/v1/recordings/{stored['id']}/transcription")
        body = found.json() if found.status_code == 200 else {}
        return body.get("text") if body.get("status") == "completed" else None

    text = await _until(transcript, 60)
    if text is None:
        step.fail("no transcript arrived")
    else:
        step.ok(f'transcript: "{text.strip()}"')

        async def noted() -> Path | None:
            return await asyncio.to_thread(_first, folder, f"voicemails/{call_id}/*.txt")

        saved = await _until(noted, 10)
        if saved is not None:
            step.ok(f"the app got the transcript callback: {saved}")

    async def priced() -> dict[str, Any] | None:
        call = (await api.get(f"/v1/calls/{call_id}")).json()
        return call if call.get("price_minor") is not None else None

    call = await _until(priced, 10)
    if call is not None:
        step.ok(
            f"call {call_id}: {call['status']}, {call['duration_seconds']} s answered, "
            f"cost {format_kes(call['price_minor'])} "
            f"(per second at the demo's {format_kes(DEMO_INBOUND_RATE)} a minute)"
        )

    wanted = {"call.completed", "call.recording.ready", "call.transcription.ready"}

    async def delivered() -> bool | None:
        return wanted <= set(events.kinds()) or None

    await _until(delivered, 30)
    valid = all(good for _, good in events.received)
    kinds = ", ".join(dict.fromkeys(events.kinds()))
    if events.received and valid:
        step.ok(f"events delivered, every signature valid: {kinds}")
    else:
        step.fail(f"events: {kinds or 'none'} (signatures valid: {valid})")
    return step.failed == 0
