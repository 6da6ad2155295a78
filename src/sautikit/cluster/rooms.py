"""One conference room wherever its callers land: the room lives on one node, named in
PostgreSQL (``conference_rooms``); a caller reaching another node is relayed to it.

Why relay rather than redirect the INVITE, or have Kamailio route by room: a call joins
a room when its app says ``conference``, often minutes after its INVITE was answered (an
IVR, a PIN), and an API call's app may name the room only then; there is no INVITE left
to redirect, and a REFER would need every far end to support it. So the caller's media
stays where its call is, and a pair of relay channels (PCMU, 20 ms RTP over the nodes'
network, as call queues bridge callers held by other nodes) carries it to the room's node,
which mixes it as one more participant.

The room's node: the first caller's node claims the row (``INSERT … ON CONFLICT``); a
row naming a node whose lease ran out (cluster.lease) is taken over by the next caller,
so a dead node's room is made again where its callers come back. The row is removed when
the room ends.

The protocol, on the command bus (voice.commands), each message ``{"type":
"conference", "node": <to>, "kind": …}``:

- ``join`` (caller's node → room's node): the call, the room, the caller's relay address
  and its options; the room's node answers ``joined`` with its own relay address (or
  ``refused``: ``full``, or ``moved`` when the row names another node now);
- ``status`` (room's node → caller's node): each of the room's status events, passed to
  the participant's app as if the room were local; ``start`` tells the caller's node to
  stop the wait audio and bridge the caller to its relay;
- ``left`` (room's node → caller's node): the caller was removed, or the room ended;
- ``hangup`` (caller's node → room's node): the caller hung up or its app moved on.

What stays on the room's node: the whole-room recording, and the API's view of the room
(``/v1/conferences`` on another node shows the rooms it holds).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final, cast, get_args

from sqlalchemy import delete, select, text

from sautikit.db import Database
from sautikit.db.models import ConferenceRoom
from sautikit.db.types import utcnow
from sautikit.media import Bridge, ChannelClosed, ChannelInUse, MediaChannel, MediaEngine
from sautikit.voice.commands import CommandBus
from sautikit.voice.control import (
    ConferenceOptions,
    ConferenceResult,
    ConferenceStatus,
    RecordResult,
)
from sautikit.voice.live import LiveCall
from sautikit.voice.rooms import Ending, Room, Rooms

__all__ = ["MESSAGE_TYPE", "SharedRooms"]

log = logging.getLogger(__name__)

MESSAGE_TYPE: Final = "conference"

ANSWER_SECONDS: Final = 5.0
"""How long a caller's node waits for the room's node to answer ``join``."""

CLAIM_ATTEMPTS: Final = 3
"""Joins tried before the caller is put in a room of its own node (logged as an error)."""

_CLAIM = text(
    "INSERT INTO conference_rooms (workspace_id, name, node, created_at) "
    "VALUES (:workspace_id, :name, :node, :now) "
    "ON CONFLICT (workspace_id, name) DO UPDATE SET node = :node, created_at = :now "
    "WHERE conference_rooms.node = :node OR NOT EXISTS ("
    " SELECT 1 FROM nodes WHERE nodes.id = conference_rooms.node"
    " AND nodes.lease_expires_at > :now AND nodes.recovered_at IS NULL) "
    "RETURNING node"
)


@dataclass(eq=False)
class RemoteAttendee:
    """A caller held by another node, in a room of this one: its relay channel."""

    call_id: str
    workspace_id: str
    channel: MediaChannel
    gone: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_ended(self) -> None:
        await self.gone.wait()


@dataclass(eq=False)
class _Stay:
    """A caller of this node in a room of another: what the room's node said."""

    joined: asyncio.Future[dict[str, Any]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    left: asyncio.Future[Any] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    started: asyncio.Event = field(default_factory=asyncio.Event)
    on_status: Callable[[ConferenceStatus], None] | None = None


def _ending(value: object) -> Ending:
    return cast(Ending, value) if value in get_args(Ending) else "room_ended"


class SharedRooms:
    """The rooms of every node sharing a PostgreSQL; see the module's doc."""

    def __init__(
        self,
        rooms: Rooms,
        database: Database,
        bus: CommandBus,
        *,
        node: str,
        media: MediaEngine,
        media_address: str,
    ) -> None:
        self.rooms = rooms
        self.database = database
        self.bus = bus
        self.node = node
        self.media = media
        self.media_address = media_address
        self._stays: dict[str, _Stay] = {}
        self._hosted: dict[str, RemoteAttendee] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._relays: set[MediaChannel] = set()
        rooms.on_closed = self._room_closed

    def relay_channels(self) -> set[MediaChannel]:
        """The relays open now (held by no SIP leg: the reaper must leave them be)."""
        return set(self._relays)

    # --- where the room is ----------------------------------------------------------------

    async def claim(self, workspace_id: str, name: str) -> str:
        """The node holding the room: this one if nobody live holds it."""
        values = {"workspace_id": workspace_id, "name": name, "node": self.node, "now": utcnow()}

        async def job(session: Any) -> str:
            won = (await session.execute(_CLAIM, values)).scalar()
            if won is not None:
                return str(won)
            holder = await session.scalar(
                select(ConferenceRoom.node).where(
                    ConferenceRoom.workspace_id == workspace_id, ConferenceRoom.name == name
                )
            )
            return str(holder or self.node)

        return await self.database.write(job, what=f"conference {name} claimed")

    def _room_closed(self, room: Room) -> None:
        task = asyncio.ensure_future(self._forget_row(room.workspace_id, room.name))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _forget_row(self, workspace_id: str, name: str) -> None:
        if self.rooms.find(workspace_id, name) is not None:
            return  # a caller made it again here meanwhile: the row is still true

        async def job(session: Any) -> None:
            await session.execute(
                delete(ConferenceRoom).where(
                    ConferenceRoom.workspace_id == workspace_id,
                    ConferenceRoom.name == name,
                    ConferenceRoom.node == self.node,
                )
            )

        try:
            await self.database.write(job, what=f"conference {name} ended")
        except Exception as exc:  # a stale row is taken over by the next caller's node
            log.warning("conference %s: could not remove its row: %s", name, exc)

    # --- a caller of this node joins ------------------------------------------------------

    async def attend(
        self,
        call: LiveCall,
        name: str,
        options: ConferenceOptions,
        *,
        on_status: Callable[[ConferenceStatus], None],
        on_recording: Callable[[RecordResult], Awaitable[None]],
    ) -> ConferenceResult:
        """Join ``call`` to the room ``name`` wherever it lives; answers why it left."""
        for _attempt in range(CLAIM_ATTEMPTS):
            holder = await self.claim(call.workspace_id, name)
            if holder == self.node:
                break
            result = await self._attend_remote(holder, call, name, options, on_status)
            if result is not None:
                return result
        else:
            log.error(
                "conference %s: its node did not take call %s; the call joins a room here",
                name,
                call.call_id,
            )
        room = self.rooms.room(call.workspace_id, name)
        return await room.attend(call, options, on_status=on_status, on_recording=on_recording)

    async def _attend_remote(
        self,
        holder: str,
        call: LiveCall,
        name: str,
        options: ConferenceOptions,
        on_status: Callable[[ConferenceStatus], None],
    ) -> ConferenceResult | None:
        """The stay of ``call`` in the room on ``holder``; None when that node did not
        take it (gone, or the room moved): claim again."""
        relay = await self.media.open_channel()
        self._relays.add(relay)
        stay = self._stays[call.call_id] = _Stay(on_status=on_status)
        bridge: Bridge | None = None
        hold: asyncio.Future[Any] | None = None
        ended: asyncio.Future[Any] = asyncio.ensure_future(call.wait_ended())
        try:
            await self._send(
                holder,
                "join",
                call.call_id,
                workspace_id=call.workspace_id,
                room=name,
                relay=[self.media_address, relay.local_address[1]],
                muted=options.muted,
                beep=options.beep,
                start_on_enter=options.start_on_enter,
                end_on_exit=options.end_on_exit,
                max_participants=options.max_participants,
            )
            await asyncio.wait({stay.joined, ended}, timeout=ANSWER_SECONDS)
            if ended.done():
                return ConferenceResult("hangup")
            answer = stay.joined.result() if stay.joined.done() else {}
            if answer.get("refused") == "full":
                return ConferenceResult("full")
            address = answer.get("relay")
            if not address:
                log.warning(
                    "conference %s: node %s did not take call %s", name, holder, call.call_id
                )
                return None
            relay.configure(str(address[0]), int(address[1]))
            if answer.get("started"):
                stay.started.set()
            if not stay.started.is_set() and options.wait_audio is not None:
                hold = asyncio.ensure_future(call.channel.play(options.wait_audio, loop=1_000_000))
            started: asyncio.Future[Any] = asyncio.ensure_future(stay.started.wait())
            try:
                await asyncio.wait({started, stay.left, ended}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                started.cancel()
            if hold is not None:
                hold.cancel()
                call.channel.stop_playback()
            if stay.started.is_set() and not stay.left.done() and not ended.done():
                with contextlib.suppress(ChannelClosed, ChannelInUse):
                    bridge = Bridge(call.channel, relay)
                await asyncio.wait({stay.left, ended}, return_when=asyncio.FIRST_COMPLETED)
            return ConferenceResult(stay.left.result() if stay.left.done() else "hangup")
        finally:
            ended.cancel()
            if bridge is not None:
                bridge.close()
            self._relays.discard(relay)
            await relay.close()
            del self._stays[call.call_id]
            if stay.joined.done() and not stay.left.done():  # hung up, or its app moved on
                with contextlib.suppress(Exception):
                    await self._send(holder, "hangup", call.call_id)

    # --- messages -------------------------------------------------------------------------

    async def on_message(self, message: dict[str, Any]) -> None:
        """A message on the command bus: the conference ones for this node."""
        if message.get("type") != MESSAGE_TYPE or message.get("node") != self.node:
            return
        kind, call_id = message.get("kind"), str(message.get("call_id", ""))
        if kind == "join":
            await self._host(message)
            return
        if kind == "hangup":
            hosted = self._hosted.get(call_id)
            if hosted is not None:
                hosted.gone.set()
            return
        stay = self._stays.get(call_id)
        if stay is None:
            return
        if kind == "joined" and not stay.joined.done():
            stay.joined.set_result(message)
        elif kind == "left" and not stay.left.done():
            stay.left.set_result(_ending(message.get("reason")))
        elif kind == "status":
            event = str(message.get("event", ""))
            if event == "start":
                stay.started.set()
            if stay.on_status is not None:
                about = message.get("about")
                stay.on_status(ConferenceStatus(event, str(about) if about else None))

    async def _host(self, message: dict[str, Any]) -> None:
        """A caller of another node joins a room here, through a relay channel."""
        call_id, joiner = str(message.get("call_id", "")), str(message.get("from", ""))
        workspace_id, name = str(message.get("workspace_id", "")), str(message.get("room", ""))
        address = message.get("relay")
        if not (call_id and joiner and workspace_id and name and address):
            log.warning("ignoring a malformed conference join")
            return
        if await self.claim(workspace_id, name) != self.node:
            await self._send(joiner, "joined", call_id, refused="moved")
            return
        options = ConferenceOptions(
            muted=bool(message.get("muted")),
            beep=bool(message.get("beep", True)),
            start_on_enter=bool(message.get("start_on_enter", True)),
            end_on_exit=bool(message.get("end_on_exit")),
            max_participants=int(message.get("max_participants", 250)),
        )
        room = self.rooms.room(workspace_id, name)
        if len(room.participants) >= options.max_participants:
            await self._send(joiner, "joined", call_id, refused="full")
            return
        relay = await self.media.open_channel()
        self._relays.add(relay)
        relay.configure(str(address[0]), int(address[1]))
        attendee = self._hosted[call_id] = RemoteAttendee(call_id, workspace_id, relay)

        def forward(status: ConferenceStatus) -> None:
            self._spawn(
                self._send(joiner, "status", call_id, event=status.event, about=status.call_id)
            )

        async def nothing_to_store(_result: RecordResult) -> None:
            return None

        # The room again, with no await before attend puts the caller in it.
        room = self.rooms.room(workspace_id, name)
        staying = asyncio.ensure_future(
            room.attend(attendee, options, on_status=forward, on_recording=nothing_to_store)
        )
        try:
            await self._send(
                joiner,
                "joined",
                call_id,
                relay=[self.media_address, relay.local_address[1]],
                started=room.started,
            )
            result = await staying
        finally:
            if not staying.done():
                staying.cancel()
            self._hosted.pop(call_id, None)
            self._relays.discard(relay)
            await relay.close()
        if not attendee.gone.is_set():
            await self._send(joiner, "left", call_id, reason=result.reason)

    async def _send(self, node: str, kind: str, call_id: str, **fields: Any) -> None:
        message = {
            "type": MESSAGE_TYPE,
            "node": node,
            "from": self.node,
            "kind": kind,
            "call_id": call_id,
            **fields,
        }
        await self.database.write(
            lambda session: self.bus.publish(session, message),
            what=f"conference message to {node}",
        )

    def _spawn(self, work: Awaitable[None]) -> None:
        async def run() -> None:
            try:
                await work
            except Exception as exc:
                log.warning("a conference message was not sent: %s", exc)

        task = asyncio.ensure_future(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
