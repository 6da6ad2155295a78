"""The call manager: every call this process holds, from INVITE or API request to hangup.

It joins the layers without letting them know of each other: the PBX hands it SIP legs,
the database keeps each call's record (``voice.lifecycle``), billing authorises and prices
(``billing``), the interpreter runs the app's actions through :class:`LiveCall`, and the
recording pipeline takes what was recorded. Commands for a call (the API's redirect,
hangup and recording control) arrive through a :class:`~sautikit.voice.commands.CommandBus`
so they reach the process that holds the call, wherever the request landed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select, update

from sautikit.billing.authorisation import (
    CallLimitExceeded,
    CallRateGuard,
    DestinationError,
    authorise_destination,
    play_url_allowed,
)
from sautikit.billing.ledger import InsufficientFunds, reserve_for_call, settle_ended_calls
from sautikit.billing.numbers import active_number
from sautikit.billing.rating import rate_for
from sautikit.billing.sip_credentials import DeviceDirectory, DeviceLogin
from sautikit.config import Settings
from sautikit.db import Database
from sautikit.db.models import Call, Trunk, Workspace
from sautikit.db.types import utcnow
from sautikit.ids import new_id
from sautikit.media import Bridge, ChannelClosed
from sautikit.pbx import CallLeg, InboundLeg, OutboundLeg, Pbx
from sautikit.recordings.pipeline import RecordingPipeline
from sautikit.sip import CallEnd, CallFailed, Request
from sautikit.sip.transport import Peer
from sautikit.voice import lifecycle
from sautikit.voice.control import (
    ConferenceOptions,
    ConferenceResult,
    ConferenceStatus,
    DialTarget,
    HangupCause,
    RecordingIntent,
    RecordingSource,
    RecordResult,
)
from sautikit.voice.interpreter import Interpreter
from sautikit.voice.live import DialRefused, LiveCall
from sautikit.voice.prompts import PromptCache
from sautikit.voice.rooms import Rooms
from sautikit.voice.routing import NoRoute, route_destination, trunk_trusts
from sautikit.voice.stream import StreamOpener

__all__ = ["CallManager", "normalise_number"]

log = logging.getLogger(__name__)

SHUTDOWN_FINISH_SECONDS = 4.0
"""After the grace, how long ending the live calls and writing what they leave may take:
the process exits within the grace plus this plus the rest of its shutdown (< 5 s)."""

HEARTBEAT_SECONDS = 2.0
"""How often live calls are stamped as still up: after a crash, their answered duration
is known to within this."""


def normalise_number(user: str) -> str:
    """A carrier's or phone's idea of a number, in E.164: ``254700…`` → ``+254700…``."""
    digits = user.strip()
    if digits.startswith("+"):
        return digits
    if digits.isdigit() and digits.startswith("254"):
        return "+" + digits
    if digits.isdigit() and digits.startswith("0") and len(digits) == 10:
        return "+254" + digits[1:]  # a Kenyan national number
    return digits


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
        self.http = http
        self.node = node or socket.gethostname()
        self.app_timeout = app_timeout
        self.live: dict[str, LiveCall] = {}
        self.interpreters: dict[str, Interpreter] = {}
        self.rooms = Rooms(
            pbx.media,
            lambda room, call: self.begin_recording(call, "conference", channels=1),
        )
        self.prompts = PromptCache(http)
        self.rate_guard = CallRateGuard()
        self.accepting = True
        self._trunks: list[Trunk] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._heartbeat_task: asyncio.Task[Any] | None = None
        self._spool = settings.data_dir / "spool"
        self.devices = DeviceDirectory()
        pbx.on_inbound = self.on_inbound
        # Carriers are trusted by address; anyone else (a device) must answer a digest
        # challenge with its SIP credential, in the realm of its workspace (SPEC §6).
        pbx.user_agent_options.update(
            authenticate_invite=self._needs_digest,
            lookup_ha1=self.devices.lookup_ha1,
            realm_for=self._realm_for,
        )

    # --- life -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the trunks, close what a crash left live, then run the background loops."""
        self._spool.mkdir(parents=True, exist_ok=True)
        await self.reload_trunks()
        await self.recover()
        self._heartbeat_task = self._spawn(self._heartbeat(), "heartbeat")

    async def reload_trunks(self) -> None:
        """Re-read the trunks and the device logins (changed by the CLI or the API)."""
        async with self.database.sessions() as session:
            self._trunks = list((await session.scalars(select(Trunk))).all())
            await self.devices.reload(session)

    def _needs_digest(self, _request: Request, source: Peer) -> bool:
        return not self.trusts(source.host)

    def _realm_for(self, request: Request) -> str:
        user = (request.to if request.method == "REGISTER" else request.from_).uri.user or ""
        return self.devices.realm_for(user) or "sautikit"

    def trusts(self, host: str) -> bool:
        """Whether INVITEs from ``host`` come from a carrier trunk (no digest needed)."""
        return trunk_trusts(self._trunks, host)

    async def recover(self) -> None:
        """SPEC: calls a crash left live are closed with ``network_error`` and the answered
        duration they really had, up to their last heartbeat."""
        async with self.database.transaction() as session:
            stale = (
                await session.scalars(
                    select(Call).where(
                        Call.status.in_(lifecycle.LIVE_STATUSES), Call.owner == self.node
                    )
                )
            ).all()
            for call in stale:
                await lifecycle.end_call(
                    session,
                    call,
                    "network_error",
                    settings=self.settings,
                    ended_at=call.last_seen_at or call.answered_at or call.created_at,
                )
            # A call ended but not priced (a crash between its hangup and its debit in
            # an earlier version, or a failed settlement) is priced now, exactly once.
            settled = await settle_ended_calls(session, settings=self.settings)
        if stale:
            log.warning("closed %d calls left live by a previous run", len(stale))
        if settled:
            log.warning("settled %d ended calls that had no price", settled)

    async def shutdown(self, grace: float, *, hurry: asyncio.Event | None = None) -> None:
        """Drain: refuse new calls (503), let live ones run up to ``grace`` seconds (or
        until ``hurry`` is set), then end them with BYE; wait, up to
        :data:`SHUTDOWN_FINISH_SECONDS` more, until every ended call's record, bill, events
        and recordings are written (the interpreters finish their last callbacks); only
        then stop what is left."""
        self.accepting = False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        hurried = asyncio.ensure_future(hurry.wait()) if hurry is not None else None
        # Calls may still start during the grace (a live call's dial): wait for them too.
        while self.live and loop.time() < deadline and not (hurried and hurried.done()):
            endings = {asyncio.ensure_future(call.wait_ended()) for call in self.live.values()}
            waits = endings | ({hurried} if hurried is not None else set())
            await asyncio.wait(
                waits, timeout=deadline - loop.time(), return_when=asyncio.FIRST_COMPLETED
            )
            for ending in endings:
                ending.cancel()
        if hurried is not None:
            hurried.cancel()
        finish_by = loop.time() + SHUTDOWN_FINISH_SECONDS
        live = list(self.live.values())
        if live:
            log.info("shutdown: ending %d live calls", len(live))
            await asyncio.wait(
                [asyncio.ensure_future(call.hangup("normal_clearing")) for call in live],
                timeout=max(0.1, finish_by - loop.time()),
            )
            await asyncio.wait(
                [asyncio.ensure_future(call.wait_ended()) for call in live],
                timeout=max(0.1, finish_by - loop.time()),
            )
        # The interpreters of ended calls post their last callbacks and store their
        # recordings; the heartbeat and other loops never end by themselves.
        work = [task for task in self._tasks if task is not self._heartbeat_task]
        if work:
            await asyncio.wait(work, timeout=max(0.1, finish_by - loop.time()))
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, coroutine: Awaitable[Any], what: str) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)

        def finished(done: asyncio.Task[Any]) -> None:
            self._tasks.discard(done)
            if not done.cancelled() and done.exception() is not None:
                log.error("%s failed", what, exc_info=done.exception())

        task.add_done_callback(finished)
        return task

    async def _heartbeat(self) -> None:
        beats = 0
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            beats += 1
            if beats % 5 == 0:
                await self._maintain()
            if not self.live:
                continue
            try:
                async with self.database.transaction() as session:
                    await session.execute(
                        update(Call)
                        .where(Call.id.in_(list(self.live)))
                        .values(last_seen_at=utcnow())
                    )
            except Exception:
                log.exception("heartbeat of live calls failed")

    async def _maintain(self) -> None:
        """Pick up trunk changes made by other processes, and queued calls whose
        notification was missed (e.g. sent while no PBX was listening)."""
        try:
            await self.reload_trunks()
            async with self.database.sessions() as session:
                queued = (
                    await session.scalars(
                        select(Call.id).where(Call.status == "queued", Call.owner.is_(None))
                    )
                ).all()
            for call_id in queued:
                self._spawn(self.place(call_id), f"call {call_id}")
        except Exception:
            log.exception("call maintenance failed")

    # --- inbound --------------------------------------------------------------------------

    async def on_inbound(self, leg: InboundLeg) -> None:
        if not self.accepting:
            leg.reject(503, "Service Unavailable")
            return
        called = normalise_number(leg.called)
        device: DeviceLogin | None = None
        if leg.sip.authenticated_user is not None:
            device = self.devices.login(leg.sip.authenticated_user)
            if device is None:
                leg.reject(403, "Forbidden")
                return
        async with self.database.sessions() as session:
            ours = await active_number(session, called) is not None
        if not ours and device is not None:  # a device calling out (SPEC §6)
            await self._device_call(leg, device, called)
            return
        try:
            admitted = await self._admit_inbound(leg, called, device)
        except InsufficientFunds:  # the transaction rolled back: no call was recorded
            leg.reject(402, "Payment Required")
            return
        if admitted is not None:
            live, call, workspace, allowed, ringing_devices = admitted
            leg.ring()
            if ringing_devices:
                self._spawn(self._ring_devices(live, ringing_devices), f"call {call.id}")
            else:
                self._spawn(self._run_app(live, call, workspace, allowed), f"call {call.id}")

    async def _admit_inbound(
        self, leg: InboundLeg, called: str, device: DeviceLogin | None
    ) -> tuple[LiveCall, Call, Workspace, int, list[tuple[str, Peer | None]]] | None:
        """Record the inbound call (and hold its cost), or reject it; raises
        InsufficientFunds, rolling everything back, when the wallet cannot pay."""
        async with self.database.transaction() as session:
            number = await active_number(session, called)
            if number is None or number.workspace_id is None:
                leg.reject(404, "Not Found")
                return None
            ringing_devices = [] if number.voice_url else self._device_bindings(number.id)
            if not number.voice_url and not ringing_devices:
                leg.reject(480, "Temporarily Unavailable")
                return None
            workspace = await session.get(Workspace, number.workspace_id)
            assert workspace is not None
            caller = device.number if device is not None else normalise_number(leg.caller)
            call = Call(
                id=new_id(),
                workspace_id=workspace.id,
                direction="inbound",
                from_number=caller,
                to_number=called,
                number_id=number.id,
                action_url=number.voice_url,
                method=number.voice_method,
                events_url=number.events_url,
                fallback_url=number.fallback_url,
                owner=self.node,
                sip_call_id=leg.call_id,
            )
            allowed = await self._reserve(session, workspace, call)
            await lifecycle.record_started(session, call)
            await lifecycle.mark_ringing(session, call)
        return self._adopt(leg, call), call, workspace, allowed, ringing_devices

    def _device_bindings(self, number_id: str) -> list[tuple[str, Peer | None]]:
        """Registered contacts of the number's devices: (contact URI, NAT source)."""
        found = []
        for login in self.devices.for_number(number_id):
            for binding in self.pbx.agent.lookup(f"sip:{login.username}@{self.pbx.sip_host}"):
                source = binding.source
                peer = (
                    None if source is None else Peer(source.transport, source.host, source.port)  # type: ignore[arg-type]
                )
                found.append((binding.contact, peer))
        return found

    async def _ring_devices(self, live: LiveCall, bindings: list[tuple[str, Peer | None]]) -> None:
        """A number with no ``voice_url`` rings its registered devices; the first to answer
        is bridged to the caller."""
        legs = []
        for contact, source in bindings:
            with contextlib.suppress(OSError, ValueError):
                legs.append(
                    await self.pbx.dial(
                        contact,
                        from_uri=f"sip:{live.from_}@{self.pbx.sip_host}",
                        destination=source,
                        ring_timeout=30,
                    )
                )
        answered: OutboundLeg | None = None
        waits = {asyncio.ensure_future(leg.wait_answer()): leg for leg in legs}
        pending = set(waits)
        gone = asyncio.ensure_future(live.leg.wait_ended())
        while pending and answered is None and not gone.done():
            done, pending = await asyncio.wait(pending | {gone}, return_when="FIRST_COMPLETED")
            pending.discard(gone)
            answered = next((waits[f] for f in done if f is not gone and not f.exception()), None)
        gone.cancel()
        for leg in legs:
            if leg is not answered and not leg.ended:
                with contextlib.suppress(Exception):
                    await leg.cancel()
        if answered is None:
            await live.hangup("no_answer")
            return
        await live.answer()
        await self._bridge_until_one_hangs_up(live, answered, caller_side=live.leg)

    async def _device_call(self, leg: InboundLeg, device: DeviceLogin, destination: str) -> None:
        """A registered device dials out as its number: authorised, held and billed like
        an API call, then bridged."""
        async with self.database.transaction() as session:
            workspace = await session.get(Workspace, device.workspace_id)
            assert workspace is not None
            try:
                target = authorise_destination(
                    workspace, destination, allow_private_hosts=self.settings.allow_private_http
                )
                await self.rate_guard.admit(session, workspace)
            except (DestinationError, CallLimitExceeded) as refused:
                log.info("device %s may not call %s: %s", device.username, destination, refused)
                leg.reject(403, "Forbidden")
                return
            call = Call(
                id=new_id(),
                workspace_id=workspace.id,
                direction="outbound",
                from_number=device.number,
                to_number=target.address,
                number_id=device.number_id,
                owner=self.node,
                sip_call_id=leg.call_id,
            )
            try:
                allowed = await self._reserve(session, workspace, call)
            except InsufficientFunds:
                await session.rollback()  # nothing of this call is kept
                leg.reject(402, "Payment Required")
                return
            await lifecycle.record_started(session, call)
        try:
            out = await self._dial(target.address, device.number, 60)
        except (NoRoute, OSError, ValueError):
            leg.reject(503, "Service Unavailable")
            await self._end_unplaced(call.id, "network_error")
            return
        live = self._adopt(out, call)

        def ringing() -> None:
            with contextlib.suppress(Exception):
                leg.ring()
            self._spawn(self.call_ringing(live), "ringing")

        out.on_ringing = ringing
        try:
            await out.wait_answer()
        except CallFailed as failed:
            leg.reject(failed.status if 400 <= failed.status < 700 else 480)
            return
        try:
            await leg.answer()
        except Exception:
            await live.hangup("caller_hangup")
            return
        await live.mark_answered()
        limits = self._spawn(self._enforce_limits(live, None, allowed), f"limits of {call.id}")
        await self._bridge_until_one_hangs_up(live, leg, caller_side=leg)
        limits.cancel()

    async def _bridge_until_one_hangs_up(
        self, live: LiveCall, other: CallLeg, *, caller_side: CallLeg
    ) -> None:
        """Bridge the billed call's leg with ``other`` until either side hangs up, then
        hang up the other side, recording who ended it."""
        try:
            bridge: Bridge | None = Bridge(live.leg.channel, other.channel)
        except ChannelClosed:  # one side hung up as it answered
            bridge = None
        ends = {
            asyncio.ensure_future(live.leg.wait_ended()): live.leg,
            asyncio.ensure_future(other.wait_ended()): other,
        }
        done, _ = await asyncio.wait(ends, return_when=asyncio.FIRST_COMPLETED)
        if bridge is not None:
            bridge.close()
        first = ends[next(iter(done))]
        for waiting in ends:
            waiting.cancel()
        if first is live.leg:
            if not other.ended:
                await other.hangup()
        else:
            await live.hangup("caller_hangup" if first is caller_side else "callee_hangup")

    async def _reserve(self, session: Any, workspace: Workspace, call: Call) -> int | None:
        """Hold what the call may cost; answers the seconds the balance allows."""
        rate = await rate_for(
            session, workspace.id, call.direction, call.to_number, settings=self.settings
        )
        session.add(call)
        await session.flush()
        return await reserve_for_call(
            session,
            workspace.id,
            call.id,
            rate.rate_per_minute_minor,
            min_seconds=self.settings.min_call_funding_seconds,
        )

    def _adopt(self, leg: InboundLeg | OutboundLeg, call: Call) -> LiveCall:
        live = LiveCall(
            self,
            leg,
            call_id=call.id,
            workspace_id=call.workspace_id,
            from_=call.from_number,
            to=call.to_number,
            direction="inbound" if call.direction == "inbound" else "outbound",
        )
        self.live[call.id] = live
        return live

    async def _run_app(
        self,
        live: LiveCall,
        call: Call,
        workspace: Workspace,
        allowed_seconds: int | None,
    ) -> None:
        def play_allowed(host: str) -> bool:
            return any(
                play_url_allowed(workspace, f"{scheme}://{host}/") for scheme in ("https", "http")
            )

        # The pipeline's client marks a record callback as delivered, so crash recovery
        # posts only the ones that never reached the app.
        app = await self.recordings.app_client(
            workspace.id, self.http, request_timeout=self.app_timeout
        )
        interpreter = Interpreter(
            live,
            app,
            recordings=self.recordings,
            prompts=self.prompts,
            play_allowed=play_allowed,
            fallback_url=call.fallback_url,
            streams=StreamOpener(allow_private=self.settings.allow_private_http),
        )
        self.interpreters[live.call_id] = interpreter
        limit = self._spawn(
            self._enforce_limits(live, call.max_duration_seconds, allowed_seconds),
            f"limits of {call.id}",
        )
        try:
            assert call.action_url is not None
            await interpreter.run(call.action_url, call.method)
        except Exception:
            log.exception("call %s: the interpreter failed", call.id)
            await live.hangup("application_error")
        finally:
            limit.cancel()
            self.interpreters.pop(live.call_id, None)

    async def _enforce_limits(
        self, live: LiveCall, max_duration: int | None, allowed: int | None
    ) -> None:
        """End the call at ``max_duration`` or when the balance has paid all it can; the
        timer ends with the call, however the call ends."""
        ended = asyncio.ensure_future(live.wait_ended())
        answered = asyncio.ensure_future(live.answered_event.wait())
        try:
            await asyncio.wait({ended, answered}, return_when=asyncio.FIRST_COMPLETED)
            limits: list[tuple[int, HangupCause]] = []
            if max_duration:
                limits.append((max_duration, "max_duration"))
            if allowed is not None:
                limits.append((allowed, "insufficient_funds"))
            if ended.done() or not limits:
                return
            seconds, cause = min(limits)
            # A started second is billed whole: hang up just inside the last paid second.
            await asyncio.wait({ended}, timeout=max(0.0, seconds - 0.25))
            if ended.done():
                return
            log.info("call %s: %s after %d s", live.call_id, cause, seconds)
            await live.hangup(cause)
        finally:
            ended.cancel()
            answered.cancel()

    # --- outbound -------------------------------------------------------------------------

    async def place(self, call_id: str) -> None:
        """Dial a queued API call, if this process wins it (a draining one leaves it to
        the others)."""
        if not self.accepting:
            return
        async with self.database.transaction() as session:
            claimed = await session.execute(
                update(Call)
                .where(Call.id == call_id, Call.status == "queued", Call.owner.is_(None))
                .values(owner=self.node)
            )
            if claimed.rowcount != 1:
                return
            call = await session.get(Call, call_id)
            assert call is not None
            workspace = await session.get(Workspace, call.workspace_id)
            assert workspace is not None
            allowed = await self._reserve(session, workspace, call)
        try:
            leg = await self._dial(call.to_number, call.from_number, call.ring_timeout_seconds)
        except (NoRoute, OSError, ValueError) as error:
            log.info("call %s: cannot be placed: %s", call.id, error)
            await self._end_unplaced(call.id, "network_error")
            return
        live = self._adopt(leg, call)
        leg.on_ringing = lambda: self._spawn(self.call_ringing(live), "ringing")
        try:
            await leg.wait_answer()
        except Exception:
            return  # LiveCall's watcher records how it ended
        await live.mark_answered()
        await self._run_app(live, call, workspace, allowed)

    async def _dial(self, to: str, caller_id: str, ring_timeout: float) -> OutboundLeg:
        kind = "e164" if to.startswith("+") else "sip"
        route = route_destination(self._trunks, kind, to, secret_key=self.settings.signing_key())
        return await self.pbx.dial(
            route.target,
            from_uri=f"sip:{caller_id}@{self.pbx.sip_host}",
            destination=route.destination,
            credentials=route.credentials,
            ring_timeout=ring_timeout,
        )

    async def _end_unplaced(self, call_id: str, cause: str) -> None:
        async with self.database.transaction() as session:
            call = await session.get(Call, call_id)
            if call is not None:
                await lifecycle.end_call(session, call, cause, settings=self.settings)

    async def call_ringing(self, call: LiveCall) -> None:
        async with call.journal, self.database.transaction() as session:
            record = await session.get(Call, call.call_id)
            if record is not None:
                await lifecycle.mark_ringing(session, record)

    # --- CallHost -------------------------------------------------------------------------

    async def call_answered(self, call: LiveCall) -> None:
        async with call.journal, self.database.transaction() as session:
            record = await session.get(Call, call.call_id)
            if record is not None:
                await lifecycle.mark_answered(session, record)

    async def call_ended(self, call: LiveCall, end: CallEnd) -> None:
        self.live.pop(call.call_id, None)
        cause = call.cause or "normal_clearing"
        async with call.journal, self.database.transaction() as session:
            record = await session.get(Call, call.call_id)
            if record is not None:
                await lifecycle.end_call(session, record, cause, settings=self.settings)

    async def record_call_error(self, call: LiveCall, code: str, message: str) -> None:
        async with self.database.transaction() as session:
            record = await session.get(Call, call.call_id)
            if record is not None:
                record.error = {"code": code, "message": message}

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

    async def place_child(
        self, parent: LiveCall, target: DialTarget, caller_id: str | None, ring_timeout: float
    ) -> LiveCall:
        async with self.database.transaction() as session:
            workspace = await session.get(Workspace, parent.workspace_id)
            assert workspace is not None
            try:
                destination = authorise_destination(
                    workspace,
                    target.address,
                    allow_private_hosts=self.settings.allow_private_http,
                )
            except DestinationError as refused:
                raise DialRefused(str(refused)) from None
            caller = await self._caller_id(session, parent, caller_id)
            try:
                await self.rate_guard.admit(session, workspace)
            except CallLimitExceeded as refused:
                raise DialRefused(str(refused)) from None
            parent_record = await session.get(Call, parent.call_id)
            child = Call(
                id=new_id(),
                workspace_id=workspace.id,
                direction="outbound",
                from_number=caller,
                to_number=destination.address,
                parent_call_id=parent.call_id,
                events_url=parent_record.events_url if parent_record else None,
                ring_timeout_seconds=int(ring_timeout),
                owner=self.node,
            )
            try:
                allowed = await self._reserve(session, workspace, child)
            except InsufficientFunds as short:
                raise DialRefused(str(short)) from None
            await lifecycle.record_started(session, child)
        try:
            leg = await self._dial(destination.address, caller, ring_timeout)
        except (NoRoute, OSError, ValueError) as error:
            await self._end_unplaced(child.id, "network_error")
            raise DialRefused(str(error)) from None
        live = self._adopt(leg, child)
        leg.on_ringing = lambda: self._spawn(self.call_ringing(live), "ringing")
        self._spawn(self._enforce_limits(live, None, allowed), f"limits of {child.id}")
        return live

    async def _caller_id(self, session: Any, parent: LiveCall, asked: str | None) -> str:
        """SPEC §3: a workspace number, or the From or To of the call being bridged."""
        if asked is None:
            return parent.from_
        wanted = normalise_number(asked)
        if wanted in (parent.from_, parent.to):
            return wanted
        if await active_number(session, wanted, workspace_id=parent.workspace_id) is not None:
            return wanted
        raise DialRefused(f"caller id {asked} is not a number of this workspace")

    async def join_conference(
        self,
        call: LiveCall,
        name: str,
        options: ConferenceOptions,
        *,
        on_status: Callable[[ConferenceStatus], None],
        on_recording: Callable[[RecordResult], Awaitable[None]],
    ) -> ConferenceResult:
        room = self.rooms.room(call.workspace_id, name)
        return await room.attend(call, options, on_status=on_status, on_recording=on_recording)

    # --- commands from the API ------------------------------------------------------------

    async def handle(self, message: dict[str, Any]) -> None:
        """A message from the command bus: dial a new call, or change a live one."""
        call_id = message.get("call_id")
        if not isinstance(call_id, str):
            return
        if message.get("type") == "place":
            await self.place(call_id)
        elif message.get("type") == "command":
            await self.execute(call_id, message)

    async def execute(self, call_id: str, command: dict[str, Any]) -> None:
        """Carry out a live-call command if this process holds the call."""
        live = self.live.get(call_id)
        if live is None:
            return
        if command.get("status") == "completed":
            await live.hangup("normal_clearing")
        elif "action_url" in command:
            interpreter = self.interpreters.get(call_id)
            if interpreter is not None:
                interpreter.redirect_now(command["action_url"], command.get("method", "POST"))
        elif "recording" in command:
            live.control_recording(command["recording"])
        elif isinstance(command.get("stream"), dict):
            interpreter = self.interpreters.get(call_id)
            if interpreter is not None:
                interpreter.stop_streams(command["stream"].get("name"))
