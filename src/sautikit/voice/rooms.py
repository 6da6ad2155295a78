"""Conference rooms (the ``conference`` verb, SPEC §3): who is in, when the room starts and
ends, what the participants' apps are told, and the whole-room recording.

A room lives in the process that holds its media; rooms are named per workspace. With
several nodes, :attr:`Rooms.across_nodes` (cluster.rooms) finds the node holding a room
and relays a caller of another node to it, as a :class:`Attendee` of its own. The
media mixing itself is :class:`~sautikit.media.Conference`; this module keeps the rules:
participants wait (hearing the ``waitUrl`` audio) until one with ``startOnEnter`` arrives,
one with ``endOnExit`` ends the room for all, ``maxParticipants`` turns late comers away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from sautikit.db.types import utcnow
from sautikit.media import Conference, MediaChannel, MediaEngine, RecordingHandle
from sautikit.voice.control import (
    ConferenceOptions,
    ConferenceResult,
    ConferenceStatus,
    Int16Array,
    RecordResult,
)
from sautikit.voice.live import LiveCall

__all__ = ["Attendee", "Participant", "Room", "Rooms", "RoomsAcrossNodes"]

log = logging.getLogger(__name__)

Ending = Literal["left", "room_ended", "removed", "full", "hangup"]


class Attendee(Protocol):
    """What a room needs of a participant: a call here, or the relay of one elsewhere."""

    @property
    def call_id(self) -> str: ...

    @property
    def workspace_id(self) -> str: ...

    @property
    def channel(self) -> MediaChannel: ...

    async def wait_ended(self) -> None: ...


class RoomsAcrossNodes(Protocol):
    """Joins a call to a room wherever it lives (cluster.rooms.SharedRooms)."""

    async def attend(
        self,
        call: LiveCall,
        name: str,
        options: ConferenceOptions,
        *,
        on_status: Callable[[ConferenceStatus], None],
        on_recording: Callable[[RecordResult], Awaitable[None]],
    ) -> ConferenceResult: ...


@dataclass(eq=False)
class Participant:
    call: Attendee
    muted: bool
    start_on_enter: bool
    end_on_exit: bool
    wait_audio: Int16Array | None
    on_status: Callable[[ConferenceStatus], None]
    done: asyncio.Future[Ending] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    waiting: asyncio.Task[object] | None = None


class Room:
    def __init__(
        self,
        workspace_id: str,
        name: str,
        engine: MediaEngine,
        begin_recording: Callable[[Room, LiveCall], Awaitable[Path]],
        on_closed: Callable[[Room], None],
    ) -> None:
        self.workspace_id = workspace_id
        self.name = name
        self.created_at: datetime = utcnow()
        self.started = False
        self.participants: dict[str, Participant] = {}
        self._media = Conference(name, engine, beep=False)
        self._begin_recording = begin_recording
        self._on_closed = on_closed
        self._recording: RecordingHandle | None = None
        self._recording_path: Path | None = None
        self._recording_done: Callable[[RecordResult], Awaitable[None]] | None = None
        self._wants_recording = False
        self._recording_begun = False

    # --- joining --------------------------------------------------------------------------

    async def attend(
        self,
        call: Attendee,
        options: ConferenceOptions,
        *,
        on_status: Callable[[ConferenceStatus], None],
        on_recording: Callable[[RecordResult], Awaitable[None]],
    ) -> ConferenceResult:
        """Join ``call`` and stay until it leaves the room; answers why it left. The
        whole-room recording is opened for a call of this node (attributed to it)."""
        if len(self.participants) >= options.max_participants:
            return ConferenceResult("full")
        member = Participant(
            call,
            options.muted,
            options.start_on_enter,
            options.end_on_exit,
            options.wait_audio,
            on_status,
        )
        self.participants[call.call_id] = member
        if options.record and not self._wants_recording:
            self._wants_recording = True
            self._recording_done = on_recording
        self._media.beep = options.beep
        if self.started:
            self._media.join(call.channel, options.muted)
        elif options.start_on_enter:
            self._start()
        else:
            member.waiting = asyncio.ensure_future(self._hold(member))
        self._emit(ConferenceStatus("join", call.call_id))
        if (
            isinstance(call, LiveCall)
            and self.started
            and self._wants_recording
            and not self._recording_begun
        ):
            self._recording_begun = True  # before the await, so a joiner cannot start another
            await self._start_recording(call)
        ended: asyncio.Future[Any] = asyncio.ensure_future(call.wait_ended())
        try:
            await asyncio.wait([member.done, ended], return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
        reason: Ending = member.done.result() if member.done.done() else "hangup"
        await self._leave(member, options.beep)
        return ConferenceResult(reason)

    async def _hold(self, member: Participant) -> None:
        """Until the room starts: the wait audio on a loop, or silence."""
        if member.wait_audio is not None:
            await member.call.channel.play(member.wait_audio, loop=1_000_000)

    def _start(self) -> None:
        self.started = True
        self._emit(ConferenceStatus("start"))
        for member in self.participants.values():
            if member.waiting is not None:
                member.waiting.cancel()
                member.call.channel.stop_playback()
                member.waiting = None
            if not member.call.channel.closed:
                self._media.join(member.call.channel, member.muted)

    # --- leaving --------------------------------------------------------------------------

    async def _leave(self, member: Participant, beep: bool) -> None:
        self.participants.pop(member.call.call_id, None)
        if member.waiting is not None:
            member.waiting.cancel()
            member.call.channel.stop_playback()
        self._media.beep = beep
        self._media.leave(member.call.channel)
        self._emit(ConferenceStatus("leave", member.call.call_id), also=member)
        if member.end_on_exit and self.started:
            for other in self.participants.values():
                if not other.done.done():
                    other.done.set_result("room_ended")
        if not self.participants:
            await self._close(member)

    def remove(self, call_id: str) -> bool:
        member = self.participants.get(call_id)
        if member is None or member.done.done():
            return False
        member.done.set_result("removed")
        return True

    def mute(self, call_id: str, muted: bool) -> bool:
        member = self.participants.get(call_id)
        if member is None:
            return False
        member.muted = muted
        if member.call.channel in self._media:
            self._media.mute(member.call.channel, muted)
        self._emit(ConferenceStatus("mute" if muted else "unmute", call_id))
        return True

    async def _close(self, last: Participant) -> None:
        self._on_closed(self)
        self._emit(ConferenceStatus("end"), also=last)
        recording, path, done = self._recording, self._recording_path, self._recording_done
        self._media.close()
        if recording is not None and path is not None and done is not None:
            seconds = recording.stop()
            with contextlib.suppress(OSError):
                await recording.finished()
                await done(RecordResult(path, seconds, 1, "stopped"))

    # --- helpers --------------------------------------------------------------------------

    async def _start_recording(self, call: LiveCall) -> None:
        self._recording_path = await self._begin_recording(self, call)
        self._recording = self._media.start_recording(self._recording_path)

    def _emit(self, status: ConferenceStatus, also: Participant | None = None) -> None:
        listeners = list(self.participants.values()) + ([also] if also else [])
        for member in listeners:
            try:
                member.on_status(status)
            except Exception:
                log.exception("conference %s: a status listener failed", self.name)

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name,
            "status": "in-progress" if self.started else "waiting",
            "created_at": self.created_at.isoformat().replace("+00:00", "Z"),
            "participants": [
                {"call_id": call_id, "muted": member.muted}
                for call_id, member in self.participants.items()
            ],
        }


class Rooms:
    """The live rooms of this process, by workspace and name."""

    def __init__(
        self, engine: MediaEngine, begin_recording: Callable[[Room, LiveCall], Awaitable[Path]]
    ) -> None:
        """``begin_recording`` opens a whole-room recording, attributed to ``call``."""
        self._engine = engine
        self._begin_recording = begin_recording
        self._rooms: dict[tuple[str, str], Room] = {}
        self.across_nodes: RoomsAcrossNodes | None = None
        """Set where several nodes share a database: rooms are found on any of them."""
        self.on_closed: Callable[[Room], None] | None = None

    async def attend(
        self,
        call: LiveCall,
        name: str,
        options: ConferenceOptions,
        *,
        on_status: Callable[[ConferenceStatus], None],
        on_recording: Callable[[RecordResult], Awaitable[None]],
    ) -> ConferenceResult:
        """Join ``call`` to the room ``name`` of its workspace, here or on its node."""
        if self.across_nodes is not None:
            return await self.across_nodes.attend(
                call, name, options, on_status=on_status, on_recording=on_recording
            )
        room = self.room(call.workspace_id, name)
        return await room.attend(call, options, on_status=on_status, on_recording=on_recording)

    def room(self, workspace_id: str, name: str) -> Room:
        key = (workspace_id, name)
        room = self._rooms.get(key)
        if room is None:
            room = Room(workspace_id, name, self._engine, self._begin_recording, self._forget)
            self._rooms[key] = room
        return room

    def find(self, workspace_id: str, name: str) -> Room | None:
        return self._rooms.get((workspace_id, name))

    def of_workspace(self, workspace_id: str) -> list[Room]:
        return [room for (owner, _), room in self._rooms.items() if owner == workspace_id]

    def _forget(self, room: Room) -> None:
        if self._rooms.get((room.workspace_id, room.name)) is room:
            del self._rooms[room.workspace_id, room.name]
        if self.on_closed is not None:
            self.on_closed(room)
