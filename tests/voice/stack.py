"""The whole of Sautikit in one test: database, PBX, call manager, API — and the app.

:class:`Stack` wires the same parts ``sautikit serve`` does, on loopback and ephemeral
ports, around a workspace that holds ``NUMBER`` (whose ``voice_url`` is the test app's
``/voice``), a funded wallet, and a carrier trunk that trusts 127.0.0.1 and routes
``+254`` wherever the test points it (a SIPp callee, usually).
"""

from __future__ import annotations

import asyncio
import io
import os
import wave
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np
from sqlalchemy import delete, select
from tests.support import active_number
from tests.voice.voice_rig import AppServer

from sautikit import accounts
from sautikit.api import create_api
from sautikit.billing.ledger import top_up
from sautikit.calls.manager import CallManager
from sautikit.config import Settings
from sautikit.db import Database
from sautikit.db.models import Call, Event, Number, SipCredential, Trunk
from sautikit.media import TextToSpeech
from sautikit.net import outbound_client
from sautikit.pbx import Pbx
from sautikit.recordings.pipeline import RecordingPipeline, signed_app_clients
from sautikit.recordings.stores import WorkspaceStores
from sautikit.sip import TimerConfig, compute_ha1
from sautikit.storage import open_store
from sautikit.voice.commands import CommandBus, LocalBus

NUMBER = "+254700000001"
CALLEE = "+254720000001"

# A slice of RTP ports per test process (see tests/pbx/conftest.py for why).
_RTP = 49000 + (os.getpid() % 20) * 100


@dataclass
class Stack:
    settings: Settings
    database: Database
    pbx: Pbx
    manager: CallManager
    api: httpx.AsyncClient
    app: AppServer
    workspace_id: str
    headers: dict[str, str]

    @property
    def sip(self) -> tuple[str, int]:
        return "127.0.0.1", self.pbx.port

    async def route_trunk_to(self, port: int, *, trusted: tuple[str, ...] = ("127.0.0.1",)) -> None:
        """Send +254 calls to a callee on 127.0.0.1:``port``; INVITEs from ``trusted``
        addresses come from the carrier (anyone else must authenticate as a device)."""
        async with self.database.transaction() as session:
            await session.execute(delete(Trunk))
            session.add(
                Trunk(
                    name="local",
                    host="127.0.0.1",
                    port=port,
                    prefixes=["+254"],
                    inbound_addresses=list(trusted),
                )
            )
        await self.manager.reload_trunks()

    async def set_routing(self, **routing: Any) -> None:
        async with self.database.transaction() as session:
            number = await session.scalar(select(Number).where(Number.e164 == NUMBER))
            assert number is not None
            for name, value in routing.items():
                setattr(number, name, value)

    async def recording_audio(self, recording_id: str) -> tuple[int, list[np.ndarray]]:
        """A stored recording, fetched the way an app does: its signed download URL."""
        shown = await self.api.get(f"/v1/recordings/{recording_id}", headers=self.headers)
        assert shown.status_code == 200, shown.text
        url = urlsplit(shown.json()["download_url"])
        audio = await self.api.get(f"{url.path}?{url.query}")
        assert audio.status_code == 200, audio.text
        with wave.open(io.BytesIO(audio.content)) as recording:
            frames = np.frombuffer(recording.readframes(recording.getnframes()), "<i2")
            channels = recording.getnchannels()
            rate = recording.getframerate()
        return rate, [frames[channel::channels] for channel in range(channels)]

    async def add_number(self, e164: str, **routing: Any) -> None:
        """Another active number of the workspace (``routing``: its voice_url etc.)."""
        async with self.database.transaction() as session:
            session.add(active_number(e164, self.workspace_id, **routing))

    async def add_device(self, username: str, password: str, number: str = NUMBER) -> None:
        """A SIP credential on ``number``, as the credentials API makes it (HA1 only)."""
        async with self.database.transaction() as session:
            found = await session.scalar(select(Number).where(Number.e164 == number))
            assert found is not None
            number_id = found.id
            session.add(
                SipCredential(
                    workspace_id=self.workspace_id,
                    number_id=number_id,
                    username=username,
                    ha1_md5=compute_ha1(username, self.workspace_id, password, "MD5"),
                    ha1_sha256=compute_ha1(username, self.workspace_id, password, "SHA-256"),
                )
            )
        await self.manager.reload_trunks()

    async def calls(self) -> list[Call]:
        async with self.database.sessions() as session:
            return list((await session.scalars(select(Call).order_by(Call.id))).all())

    async def events(self, call_id: str) -> list[str]:
        async with self.database.sessions() as session:
            found = await session.scalars(
                select(Event.kind).where(Event.call_id == call_id).order_by(Event.id)
            )
            return list(found.all())

    async def wait_for_calls_to_end(self, count: int = 1, seconds: float = 20) -> list[Call]:
        """Wait until ``count`` calls exist and none is live any more."""
        for _ in range(int(seconds * 10)):
            calls = await self.calls()
            if len(calls) >= count and all(
                call.status not in ("queued", "ringing", "answered") for call in calls
            ):
                return calls
            await asyncio.sleep(0.1)
        raise AssertionError(f"calls still live: {[(c.id, c.status) for c in await self.calls()]}")


@asynccontextmanager
async def open_stack(
    database: Database,
    app: AppServer,
    tmp_path: Path,
    *,
    credit_minor: int = 100_000,
    node: str = "test-node",
    join: Stack | None = None,
    bus: CommandBus | None = None,
    rtp_ports: tuple[int, int] | None = None,
    **settings_overrides: Any,
) -> AsyncIterator[Stack]:
    """``join``: a second process (``node``) of the same deployment, sharing that stack's
    database, workspace and number; ``bus`` (default in-process) carries its commands."""
    settings = Settings(
        data_dir=tmp_path / node / "var" if join is not None else tmp_path / "var",
        secret_key="test-secret",
        allow_private_http=True,
        node_id=node,
        shutdown_grace_seconds=1,
        # Trunks here are SIPp callees, which take an OPTIONS ping for a failed call.
        **{"trunk_ping_seconds": 0, **settings_overrides},
    )
    if join is not None:
        workspace_id, headers = join.workspace_id, join.headers
    else:
        async with database.transaction() as session:
            workspace = await accounts.create_workspace(session, "Acme")
            key = await accounts.create_api_key(session, workspace.id, sorted(accounts.SCOPES))
            session.add(active_number(NUMBER, workspace.id, voice_url=app.url("/voice")))
            if credit_minor:
                await top_up(session, workspace.id, credit_minor, idempotency_key="seed")
        workspace_id, headers = workspace.id, {"Authorization": f"Bearer {key.secret}"}
    http = outbound_client(allow_private=True, timeout=3)
    pbx = Pbx(
        sip_host=settings.sip_host,
        sip_port=0,
        sip_advertised_host=settings.sip_advertised_host or None,
        media_host=settings.media_host or None,
        media_advertised_address=settings.media_advertised_address or None,
        rtp_ports=rtp_ports or (_RTP, _RTP + 99),
        tts=TextToSpeech(tmp_path / "tts"),
        timers=TimerConfig(t1=0.1),
        # As `sautikit serve` does: the interop tests run the operator's default.
        digest_algorithms=settings.sip_digest_algorithm_list,
        session_timers=settings.session_timers,
    )
    store = open_store(settings)
    stores = WorkspaceStores(settings, store)
    recordings = RecordingPipeline(database, settings, stores, signed_app_clients(database, http))
    manager = CallManager(
        settings,
        database,
        pbx,
        recordings=recordings,
        http=http,
        node=node,
        app_timeout=2,
    )
    await pbx.start()
    # As an operator's SAUTIKIT_SIP_PORT would: the settings name the port the PBX got
    # (credential answers tell phones where to register from them).
    settings = settings.model_copy(update={"sip_port": pbx.port})
    await manager.start()
    bus = bus or LocalBus()
    bus.subscribe(manager.handle)
    manager.queues.bus = bus
    await bus.start()
    api = create_api(settings, database, store, bus=bus, calls=manager)
    transport = httpx.ASGITransport(app=api, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://sautikit.test") as client:
        stack = Stack(
            settings,
            database,
            pbx,
            manager,
            client,
            app,
            workspace_id,
            headers,
        )
        await stack.route_trunk_to(5999)
        try:
            yield stack
        finally:
            await manager.shutdown(0)
            await pbx.close()
            await bus.close()
            await http.aclose()
