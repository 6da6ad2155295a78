"""The call manager: every call this process holds, from INVITE or API request to hangup.

It builds the parts of :mod:`sautikit.calls` and joins them to the layers around them
without letting those know of each other: the PBX hands it SIP legs (:mod:`.inbound`,
:mod:`.devices`), the database keeps each call's row (:mod:`.records`), admission
authorises and funds every new call (:mod:`.admission`), the interpreter runs the app's
actions through :class:`LiveCall` (:mod:`.application`), and the recording pipeline takes
what was recorded. It is the :class:`~sautikit.voice.live.CallHost` of every live call.
Commands for a call (the API's redirect, hangup and recording control) arrive through a
:class:`~sautikit.voice.commands.CommandBus` so they reach the process that holds the call,
wherever the request landed.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from sautikit.calls.admission import Admission
from sautikit.calls.application import AppRunner
from sautikit.calls.clients import client_tokens
from sautikit.calls.devices import Devices
from sautikit.calls.funding import Funding
from sautikit.calls.inbound import Inbound
from sautikit.calls.limits import CallRateGuard
from sautikit.calls.placement import Dialler, Placement
from sautikit.calls.queues import Queues
from sautikit.calls.reaper import Reaped, Reaper
from sautikit.calls.records import CallRecords
from sautikit.calls.recovery import expire_queued_calls, recover_calls
from sautikit.calls.registry import CallRegistry
from sautikit.calls.routing import Trunks
from sautikit.calls.status import CallStatus
from sautikit.config import Settings
from sautikit.db import Database
from sautikit.db.models import Call, Trunk
from sautikit.db.types import utcnow
from sautikit.pbx import Pbx
from sautikit.pbx.trunk_health import Health, TrunkHealth
from sautikit.recordings.pipeline import RecordingPipeline
from sautikit.sip import CallEnd
from sautikit.sip.teardown import Teardown
from sautikit.voice.control import (
    ConferenceOptions,
    ConferenceResult,
    ConferenceStatus,
    DequeueResult,
    DialTarget,
    QueueTicket,
    RecordingIntent,
    RecordingSource,
    RecordResult,
)
from sautikit.voice.live import LiveCall
from sautikit.voice.prompts import PromptCache
from sautikit.voice.rooms import Rooms

__all__ = ["CallManager"]

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 2.0
"""How often live calls are stamped as still up: after a crash, their answered duration
is known to within this."""


class CallManager:
    def __init__(
        self,
        settings: Settings,
        database: Database,
        pbx: Pbx,
        *,
        recordings: RecordingPipeline,
        http: httpx.AsyncClient,
        node: str | None = None,
        app_timeout: float = 10.0,
    ) -> None:
        self.settings = settings
        self.database = database
        self.pbx = pbx
        self.recordings = recordings
        self.node = node or socket.gethostname()
        self.accepting = True
        self.registry = CallRegistry()
        self.records = CallRecords(database, settings)
        self.admission = Admission(settings)
        self.trunks = Trunks(settings.signing_key())
        if settings.trunk_ping_seconds > 0:
            self.trunks.health = TrunkHealth(
                lambda: pbx.started_agent,
                self.trunks.resolver,
                interval=settings.trunk_ping_seconds,
                timeout=min(5.0, settings.trunk_ping_seconds),
                on_change=self._trunk_health_changed,
            )
        self.rooms = Rooms(
            pbx.media,
            lambda room, call: self.begin_recording(call, "conference", channels=1),
        )
        self.prompts = PromptCache(http)
        self.queues = Queues(
            database, node=self.node, media=pbx.media, media_address=pbx.media_address
        )
        self.funding = Funding(database, settings)
        self.runner = AppRunner(
            self.registry,
            recordings,
            http,
            self.prompts,
            self.funding,
            self.records,
            app_timeout=app_timeout,
            allow_private_http=settings.allow_private_http,
        )
        dialler = Dialler(pbx, self.trunks)
        self.placement = Placement(
            self,
            database,
            self.admission,
            self.records,
            self.registry,
            dialler,
            self.runner,
            self.funding,
            recordings,
            node=self.node,
            accepting=lambda: self.accepting,
        )
        self.devices = Devices(
            self,
            database,
            pbx,
            self.trunks,
            self.admission,
            self.records,
            self.registry,
            dialler,
            self.placement,
            self.funding,
            node=self.node,
            client_tokens=client_tokens(settings),
        )
        self.inbound = Inbound(
            self,
            database,
            self.admission,
            self.registry,
            self.devices,
            self.runner,
            node=self.node,
            accepting=lambda: self.accepting,
        )
        self._spool = settings.data_dir / "spool"
        self._heartbeat_task: asyncio.Task[Any] | None = None
        self._reaper_task: asyncio.Task[Any] | None = None
        self._health_task: asyncio.Task[Any] | None = None
        self._teardown: Teardown | None = None
        self.reaper = Reaper(
            pbx,
            database,
            settings,
            node=self.node,
            owned_legs=self.registry.owned_legs,
            live_call_ids=lambda: list(self.registry.live),
            unowned_leg_seconds=settings.unowned_call_seconds,
        )
        pbx.on_inbound = self.inbound.on_inbound
        self.devices.install()

    @property
    def rate_guard(self) -> CallRateGuard:
        return self.admission.rate_guard

    @property
    def live(self) -> dict[str, LiveCall]:
        return self.registry.live

    # --- life -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the trunks, end what a crash left live (rows and far ends), place or
        expire the queued calls, then run the background loops (heartbeat, reaper)."""
        self._spool.mkdir(parents=True, exist_ok=True)
        await self.reload_trunks()
        await self.recover()
        await self._maintain()
        self._heartbeat_task = self.registry.spawn(self._heartbeat(), "heartbeat")
        self._reaper_task = self.registry.spawn(self.reaper.run(), "reaper")
        if self.trunks.health is not None:
            self._health_task = self.registry.spawn(
                self.trunks.health.run(self.trunks.addresses), "trunk OPTIONS pings"
            )

    @property
    def reaped(self) -> Reaped:
        return self.reaper.reaped

    async def reload_trunks(self) -> None:
        """Re-read the trunks and the device logins (changed by the CLI or the API)."""
        async with self.database.sessions() as session:
            await self.trunks.reload(session)
            await self.devices.directory.reload(session)
        await self.devices.reload_registrations()

    async def _transfer(self, call_id: str, live: LiveCall, to: str) -> None:
        """The API's blind transfer: a callee bridged to a caller hands the caller on (as
        a phone's REFER does); a call running its app dials ``to`` instead."""
        target = DialTarget("number", to) if to.startswith("+") else DialTarget("sip", to)
        status = await live.request_transfer(target)
        if status != 481:
            log.info("call %s: transferred to %s: %d", call_id, to, status)
            return
        interpreter = self.registry.interpreters.get(call_id)
        if interpreter is not None:
            interpreter.transfer_now(target)

    async def _trunk_health_changed(self, name: str, health: Health) -> None:
        """Store what the pings found, for ``sautikit trunks list`` and the console."""

        async def store(session: AsyncSession) -> None:
            await session.execute(
                update(Trunk)
                .where(Trunk.name == name)
                .values(health=health, health_changed_at=utcnow())
            )

        await self.database.write(store, what=f"trunk {name} is {health}")

    def trusts(self, host: str) -> bool:
        """Whether INVITEs from ``host`` come from a carrier trunk (no digest needed)."""
        return self.trunks.trusts(host)

    async def recover(self) -> None:
        """SPEC: calls a crash left live are closed with ``network_error``; each of their
        SIP legs is ended at the far end from its stored dialog (calls.recovery)."""
        await self.recover_node(self.node)

    async def recover_node(self, owner: str) -> int:
        """Close the calls ``owner`` left live (this node at start; a dead node's, claimed
        by cluster.lease) and end their legs from here; answers how many were closed."""
        if self._teardown is None:
            self._teardown = Teardown(self.pbx.agent, credentials_for=self.trunks.credentials_for)
        recovery = await recover_calls(
            self.database, self.settings, node=owner, teardown=self._teardown
        )
        for pending in recovery.pending:  # far ends still to answer: shutdown waits
            self.registry.spawn(pending, "teardown of a stored dialog")
        await self.queues.recover_node(owner)
        return recovery.closed

    async def shutdown(self, grace: float, *, hurry: asyncio.Event | None = None) -> None:
        """Drain: refuse new calls (503), let live ones run up to ``grace`` seconds (or
        until ``hurry`` is set), then end them and write what they leave
        (:meth:`CallRegistry.drain`)."""
        self.accepting = False
        loops = [
            task
            for task in (self._heartbeat_task, self._reaper_task, self._health_task)
            if task is not None
        ]
        await self.registry.drain(grace, hurry=hurry, keep_running=loops)

    async def _heartbeat(self) -> None:
        beats = 0
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            beats += 1
            if beats % 5 == 0:
                await self._maintain()
            if not self.registry.live:
                continue
            live = list(self.registry.live)

            async def stamp(session: AsyncSession, live: list[str] = live) -> None:
                await session.execute(
                    update(Call).where(Call.id.in_(live)).values(last_seen_at=utcnow())
                )

            self.database.write_later(stamp, what="heartbeat of live calls")

    async def _maintain(self) -> None:
        """Pick up trunk changes made by other processes, and queued calls whose
        notification was missed (e.g. sent while no PBX was listening): placed at once
        while young, failed with ``call.queue_expired`` once too old to ring."""
        try:
            await self.reload_trunks()
            _, fresh = await expire_queued_calls(self.database, self.settings, self.node)
            for call_id in fresh:
                self.registry.spawn(self.placement.place(call_id), f"call {call_id}")
        except Exception:
            log.exception("call maintenance failed")

    # --- CallHost -------------------------------------------------------------------------

    async def call_answered(self, call: LiveCall) -> None:
        async with call.journal:
            await self.records.answered(
                call.call_id, self.registry.dialogs(call), at=call.answered_at
            )

    async def call_ended(self, call: LiveCall, end: CallEnd) -> None:
        self.registry.remove(call.call_id)
        async with call.journal:
            await self.records.ended(
                call.call_id,
                call.cause or "normal_clearing",
                quality=call.channel.quality().as_record(),
                at=call.ended_at,
                error=call.error,
            )

    async def record_call_error(self, call: LiveCall, code: str, message: str) -> None:
        await self.records.error(call.call_id, code, message)

    async def place_child(
        self, parent: LiveCall, target: DialTarget, caller_id: str | None, ring_timeout: float
    ) -> LiveCall:
        return await self.placement.place_child(parent, target, caller_id, ring_timeout)

    async def begin_recording(
        self,
        call: LiveCall,
        source: RecordingSource,
        *,
        channels: int,
        trim: bool = False,
        intent: RecordingIntent = RecordingIntent(),
    ) -> Path:
        _, path = await self.recordings.begin(
            call.call_id,
            call.workspace_id,
            source,
            action_url=intent.action_url,
            action_method=intent.action_method,
            transcribe=intent.transcribe,
            transcribe_callback=intent.transcribe_callback,
            channels=channels,
            trim=trim,
        )
        return path

    async def join_conference(
        self,
        call: LiveCall,
        name: str,
        options: ConferenceOptions,
        *,
        on_status: Callable[[ConferenceStatus], None],
        on_recording: Callable[[RecordResult], Awaitable[None]],
    ) -> ConferenceResult:
        return await self.rooms.attend(
            call, name, options, on_status=on_status, on_recording=on_recording
        )

    async def join_queue(
        self, call: LiveCall, name: str, *, max_size: int | None
    ) -> QueueTicket | None:
        return await self.queues.join(call, name, max_size=max_size)

    async def take_from_queue(
        self,
        agent: LiveCall,
        name: str,
        *,
        timeout: float,  # noqa: ASYNC109 - how long to wait for a caller
    ) -> DequeueResult:
        return await self.queues.take(agent, name, timeout=timeout)

    # --- commands from the API ------------------------------------------------------------

    async def handle(self, message: dict[str, Any]) -> None:
        """A message from the command bus: dial a new call, or change a live one."""
        call_id = message.get("call_id")
        if not isinstance(call_id, str):
            return
        if message.get("type") == "place":
            await self.placement.place(call_id)
        elif message.get("type") == "command":
            await self.execute(call_id, message)

    async def execute(self, call_id: str, command: dict[str, Any]) -> None:
        """Carry out a live-call command if this process holds the call."""
        live = self.registry.get(call_id)
        if live is None:
            return
        if command.get("status") == CallStatus.COMPLETED:
            await live.hangup("normal_clearing")
        elif "action_url" in command:
            interpreter = self.registry.interpreters.get(call_id)
            if interpreter is not None:
                interpreter.redirect_now(command["action_url"], command.get("method", "POST"))
        elif "queue" in command:
            await self.queues.on_command(call_id, command)
        elif isinstance(command.get("transfer"), str):
            self.registry.spawn(self._transfer(call_id, live, command["transfer"]), "transfer")
        elif "recording" in command:
            live.control_recording(command["recording"])
        elif isinstance(command.get("stream"), dict):
            interpreter = self.registry.interpreters.get(call_id)
            if interpreter is not None:
                interpreter.stop_streams(command["stream"].get("name"))
