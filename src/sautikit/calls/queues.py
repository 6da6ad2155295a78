"""Call queues: callers wait (``enqueue``) until an agent's call takes them (``dequeue``,
or ``dial`` to a queue), longest-waiting first.

The database is the queue (``queues`` and ``queue_members``), so its order holds however
many processes share it:

* **Joining** locks the queue's row (``SELECT … FOR UPDATE``) while it counts the waiting
  members against ``max_size`` and inserts the new one, so joins of one queue take turns
  and each gets the next ``seq``: FIFO is the database's order, not a process's clock.
* **Taking** claims the waiting member with the lowest ``seq`` (``FOR UPDATE SKIP
  LOCKED``, then ``status = 'bridging'``), so two agents never take the same caller and
  neither waits on the other's claim, whichever processes hold them: a caller held by
  another process is bridged through relay channels (:class:`Queues`).
* A member whose call is no longer live (a crash) is never taken: the claim looks at
  the call's row, and marks such a member ``left`` with ``hangup``; the recovery of a
  node (its restart, or another's claim of its lease) marks its members ``left`` with
  ``error`` (:meth:`Queues.recover_node`).

Each member's process keeps a :class:`Member` (the interpreter's
:class:`~sautikit.voice.control.QueueTicket`): the agent's claim hands it an offer, the
caller's side stops its hold audio and bridges; the bridge lasts until one side hangs up,
and each side goes on with its app. ``queue.joined`` and ``queue.left`` (with the
``result``) are written with the member's row changes. Removal through the API
(``DELETE /v1/queues/{name}/members/{call_id}``) marks the row ``left`` with ``removed``
in the request and tells the holding process on the command bus; a member also reads
its own row every two seconds, so a missed message only delays it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from sautikit.calls.status import LIVE_STATUSES
from sautikit.db import Database
from sautikit.db.models import Call, Queue, QueueMember
from sautikit.db.types import utcnow
from sautikit.events.outbox import record_call_event
from sautikit.media import Bridge, ChannelClosed, ChannelInUse, MediaChannel, MediaEngine
from sautikit.voice.commands import CommandBus
from sautikit.voice.control import DequeueResult, QueueResult, QueueStanding, QueueStay
from sautikit.voice.live import LiveCall

__all__ = [
    "DEFAULT_MAX_SIZE",
    "Member",
    "Queues",
    "describe_member",
    "describe_queue",
    "find_queue",
    "mark_removed",
    "queue_standing",
    "waiting_members",
]

log = logging.getLogger(__name__)

DEFAULT_MAX_SIZE: Final = 100
"""Callers a queue holds at most unless an ``enqueue``'s ``maxSize`` says otherwise."""

ROW_CHECK_SECONDS: Final = 2.0
"""How often a waiting member reads its own row (a removal made elsewhere)."""

AGENT_POLL_SECONDS: Final = 1.0
"""How often an agent waiting on an empty queue looks again for callers joined elsewhere."""

RELAY_ANSWER_SECONDS: Final = 5.0
"""How long an agent waits for a member's process to answer an offer (then: the next)."""


def _stamp(moment: Any) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


# --- rows -------------------------------------------------------------------------------


async def find_queue(session: AsyncSession, workspace_id: str, name: str) -> Queue | None:
    found: Queue | None = await session.scalar(
        select(Queue).where(Queue.workspace_id == workspace_id, Queue.name == name)
    )
    return found


def _live_waiting(queue_id: str) -> Any:
    return (
        select(QueueMember)
        .join(Call, Call.id == QueueMember.call_id)
        .where(
            QueueMember.queue_id == queue_id,
            QueueMember.status == "waiting",
            Call.status.in_([str(status) for status in LIVE_STATUSES]),
        )
    )


async def waiting_members(session: AsyncSession, queue_id: str) -> list[QueueMember]:
    """The queue's waiting members, first to be taken first."""
    found = await session.scalars(_live_waiting(queue_id).order_by(QueueMember.seq))
    return list(found.all())


async def _average_wait(session: AsyncSession, queue_id: str) -> int:
    since = utcnow() - timedelta(hours=1)
    average = await session.scalar(
        select(func.avg(QueueMember.wait_seconds)).where(
            QueueMember.queue_id == queue_id,
            QueueMember.result == "bridged",
            QueueMember.left_at >= since,
        )
    )
    return round(average or 0)


async def queue_standing(session: AsyncSession, queue: Queue, seq: int | None) -> QueueStanding:
    """Where the member ``seq`` stands (position 0 when not waiting), and the queue's size."""
    waiting = await waiting_members(session, queue.id)
    position, waited = 0, 0
    for index, member in enumerate(waiting, start=1):
        if member.seq == seq:
            position = index
            waited = _seconds_since(member)
    return QueueStanding(
        queue_id=queue.id,
        position=position,
        size=len(waiting),
        max_size=queue.max_size,
        wait_seconds=waited,
        average_wait_seconds=await _average_wait(session, queue.id),
    )


def _seconds_since(member: QueueMember) -> int:
    return max(0, int((utcnow() - member.joined_at).total_seconds()))


async def describe_queue(session: AsyncSession, queue: Queue) -> dict[str, Any]:
    """A queue as the API shows it."""
    standing = await queue_standing(session, queue, None)
    return {
        "id": queue.id,
        "name": queue.name,
        "size": standing.size,
        "max_size": queue.max_size,
        "average_wait_seconds": standing.average_wait_seconds,
        "created_at": _stamp(queue.created_at),
    }


def describe_member(member: QueueMember, position: int) -> dict[str, Any]:
    """A waiting member as the API shows it."""
    return {
        "call_id": member.call_id,
        "position": position,
        "wait_seconds": _seconds_since(member),
        "joined_at": _stamp(member.joined_at),
    }


async def _left_event(session: AsyncSession, queue: Queue, member: QueueMember) -> None:
    await record_call_event(
        session,
        call_id=member.call_id,
        kind="queue.left",
        data={
            "queue": queue.name,
            "queue_id": queue.id,
            "result": member.result,
            "wait_seconds": member.wait_seconds,
            "agent_call_id": member.agent_call_id,
        },
    )


async def _leave_row(
    session: AsyncSession, seq: int, result: QueueResult, agent_call_id: str | None = None
) -> QueueMember | None:
    """Mark the member left with ``result`` (and its event); None if it had left already."""
    member = await session.get(QueueMember, seq)
    if member is None or member.status == "left":
        return None
    member.status = "left"
    member.result = result
    member.agent_call_id = agent_call_id
    member.left_at = utcnow()
    member.wait_seconds = _seconds_since(member)
    queue = await session.get(Queue, member.queue_id)
    assert queue is not None
    await session.flush()
    await _left_event(session, queue, member)
    return member


async def mark_removed(session: AsyncSession, queue: Queue, call_id: str) -> QueueMember | None:
    """The API's removal: the call's waiting member leaves with ``removed`` (its holding
    process is told on the command bus); None when the call is not waiting there."""
    member = await session.scalar(
        _live_waiting(queue.id).where(QueueMember.call_id == call_id).with_for_update()
    )
    if member is None:
        return None
    return await _leave_row(session, member.seq, "removed")


# --- the live side ----------------------------------------------------------------------


@dataclass(eq=False)
class _Offer:
    """An agent's claim of a member, handed to the member's side to bridge: ``channel`` is
    the agent's leg (same process) or a relay channel to the agent's process."""

    agent_call_id: str
    channel: MediaChannel
    agent_gone: asyncio.Event
    """Set when the agent's side is over: its leg ended, or its dequeue was cancelled."""
    done: asyncio.Future[QueueStay | None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    """The member's stay once the bridge ends, or None if the member was gone."""


def _watch_leg(call: LiveCall, gone: asyncio.Event) -> asyncio.Future[None]:
    async def watch() -> None:
        await call.wait_ended()
        gone.set()

    return asyncio.ensure_future(watch())


class Member:
    """A caller waiting in a queue in this process (a ``QueueTicket``)."""

    def __init__(self, queues: Queues, call: LiveCall, queue: Queue, seq: int) -> None:
        self._queues = queues
        self.call = call
        self.queue_id = queue.id
        self.queue_name = queue.name
        self.seq = seq
        self._joined = time.monotonic()
        loop = asyncio.get_running_loop()
        self.offer: asyncio.Future[_Offer | QueueResult] = loop.create_future()
        self.stay: QueueStay | None = None

    async def standing(self) -> QueueStanding:
        async with self._queues.database.sessions() as session:
            queue = await session.get(Queue, self.queue_id)
            assert queue is not None
            return await queue_standing(session, queue, self.seq)

    async def wait_for_agent(self) -> bool:
        ended: asyncio.Future[Any] = asyncio.ensure_future(self.call.wait_ended())
        watch: asyncio.Future[Any] = asyncio.ensure_future(self._watch_row())
        offered: asyncio.Future[Any] = self.offer
        try:
            await asyncio.wait({offered, ended, watch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
            watch.cancel()
        return self.offer.done() and isinstance(self.offer.result(), _Offer) and not self.call.ended

    async def _watch_row(self) -> None:
        """Until the row says otherwise: a removal made through another process."""
        while True:
            await asyncio.sleep(ROW_CHECK_SECONDS)
            async with self._queues.database.sessions() as session:
                member = await session.get(QueueMember, self.seq)
                if member is not None and member.status == "left":
                    if not self.offer.done():
                        self.offer.set_result(member.result or "removed")  # type: ignore[arg-type]
                    return

    async def talk(self) -> QueueStay:
        offer = self.offer.result()
        assert isinstance(offer, _Offer)
        wait = self._waited()
        await self._queues.database.write(
            lambda session: _leave_row(session, self.seq, "bridged", offer.agent_call_id),
            what=f"queue member {self.call.call_id} bridged",
        )
        self._queues.forget(self)
        self.call.channel.stop_playback()
        offer.channel.stop_playback()
        started = time.monotonic()
        bridge: Bridge | None = None
        with contextlib.suppress(ChannelClosed, ChannelInUse):
            bridge = Bridge(self.call.channel, offer.channel)
        watchers = [
            asyncio.ensure_future(self.call.wait_ended()),
            asyncio.ensure_future(offer.agent_gone.wait()),
        ]
        try:
            if bridge is not None:
                await asyncio.wait(watchers, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for watcher in watchers:
                watcher.cancel()
            if bridge is not None:
                bridge.close()
        duration = math.ceil(time.monotonic() - started) if bridge is not None else 0
        self.stay = QueueStay("bridged", wait, offer.agent_call_id, duration)
        if not offer.done.done():
            offer.done.set_result(self.stay)
        return self.stay

    async def leave(self, result: QueueResult) -> QueueStay:
        if self.stay is not None:
            return self.stay
        self._queues.forget(self)
        offered = self.offer.result() if self.offer.done() else None
        if isinstance(offered, _Offer):
            if not offered.done.done():
                offered.done.set_result(None)  # the agent goes on to the next caller
        elif isinstance(offered, str):
            result = offered  # removed through the API: the row says so already
        elif not self.offer.done():
            self.offer.cancel()
        left = await self._queues.database.write(
            lambda session: _leave_row(session, self.seq, result),
            what=f"queue member {self.call.call_id} left",
        )
        wait = left.wait_seconds if left is not None and left.wait_seconds is not None else None
        self.stay = QueueStay(result, self._waited() if wait is None else wait)
        return self.stay

    def waited(self) -> int:
        return self._waited()

    def _waited(self) -> int:
        return int(time.monotonic() - self._joined)


@dataclass(eq=False)
class _RemoteTake:
    """An agent here bridging a member held by another process, through relay channels."""

    relay: MediaChannel
    answer: asyncio.Future[dict[str, Any]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    ended: asyncio.Future[dict[str, Any]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class Queues:
    """The queue members this process holds, and its agents' claims.

    A member held by another process is bridged through a pair of relay channels, one in
    each process, sending RTP to each other (PCMU, 20 ms): the agent's process opens its
    relay and sends ``offer`` (with its relay's address) on the command bus to the
    member's call; the member's process opens its own, answers ``answer`` with that
    address (or no address when the member has gone) and bridges the member to its relay,
    as the agent's process bridges the agent to its own. Either side's end travels back
    (``ended`` to the agent's call, ``agent_gone`` to the member's), and each relay is
    closed with its bridge. Without a bus (:attr:`bus` None) only local members are taken.
    """

    def __init__(
        self,
        database: Database,
        *,
        node: str,
        media: MediaEngine | None = None,
        media_address: str = "127.0.0.1",
    ) -> None:
        self.database = database
        self.node = node
        self.media = media
        self.media_address = media_address
        self.bus: CommandBus | None = None
        self._members: dict[str, Member] = {}
        self._arrival = asyncio.Event()
        self._takes: dict[str, _RemoteTake] = {}
        """This process's agents bridging a remote member, by agent call id."""
        self._relayed: dict[str, asyncio.Event] = {}
        """This process's members bridged to a remote agent: their agent_gone, by call id."""
        self.relay_packets = 0
        """RTP packets the relays of this process received, in all (a figure for diagnosis)."""

    @property
    def _remote(self) -> bool:
        return self.bus is not None and self.media is not None

    def forget(self, member: Member) -> None:
        if self._members.get(member.call.call_id) is member:
            del self._members[member.call.call_id]

    async def join(self, call: LiveCall, name: str, *, max_size: int | None) -> Member | None:
        """Put ``call`` at the back of the queue; None when the queue is full."""

        async def job(session: AsyncSession) -> tuple[Queue, int] | None:
            queue = await session.scalar(
                select(Queue)
                .where(Queue.workspace_id == call.workspace_id, Queue.name == name)
                .with_for_update()
            )
            if queue is None:
                queue = Queue(
                    workspace_id=call.workspace_id,
                    name=name,
                    max_size=max_size or DEFAULT_MAX_SIZE,
                )
                session.add(queue)
                await session.flush()
            elif max_size is not None:
                queue.max_size = max_size
            size = len(await waiting_members(session, queue.id))
            if size >= queue.max_size:
                return None
            member = QueueMember(
                queue_id=queue.id,
                workspace_id=call.workspace_id,
                call_id=call.call_id,
                node=self.node,
                status="waiting",
            )
            session.add(member)
            await session.flush()
            await record_call_event(
                session,
                call_id=call.call_id,
                kind="queue.joined",
                data={
                    "queue": queue.name,
                    "queue_id": queue.id,
                    "position": size + 1,
                    "max_size": queue.max_size,
                },
            )
            return queue, member.seq

        try:
            joined = await self.database.write(job, what=f"call {call.call_id} joins {name}")
        except IntegrityError:  # another process made the queue at the same moment
            joined = await self.database.write(job, what=f"call {call.call_id} joins {name}")
        if joined is None:
            return None
        queue, seq = joined
        member = Member(self, call, queue, seq)
        self._members[call.call_id] = member
        self._arrival.set()
        self._arrival = asyncio.Event()
        return member

    async def take(self, agent: LiveCall, name: str, *, timeout: float) -> DequeueResult:  # noqa: ASYNC109
        """Bridge ``agent`` with the longest-waiting caller, waiting up to ``timeout``
        seconds for one; returns when the bridge ends."""
        deadline = time.monotonic() + timeout
        while not agent.ended:
            claimed = await self.database.write(
                lambda session: self._claim(session, agent.workspace_id, name, agent.call_id),
                what=f"agent {agent.call_id} takes from {name}",
            )
            if claimed is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return DequeueResult("queue-empty")
                await self._await_arrival(agent, min(remaining, AGENT_POLL_SECONDS))
                continue
            call_id, node = claimed
            if node == self.node:
                stay = await self._take_local(agent, call_id)
            else:
                stay = await self._take_remote(agent, call_id)
            if stay is not None:
                return DequeueResult("bridged", call_id, stay.wait_seconds, stay.duration)
        return DequeueResult("hangup")

    async def _take_local(self, agent: LiveCall, call_id: str) -> QueueStay | None:
        member = self._members.get(call_id)
        if member is None or member.offer.done():
            return None  # it left as it was claimed; its leave wrote the row
        gone = asyncio.Event()
        watching = _watch_leg(agent, gone)
        offer = _Offer(agent.call_id, agent.channel, gone)
        member.offer.set_result(offer)
        try:
            return await asyncio.shield(offer.done)
        finally:  # also a cancelled dequeue (a live redirect of the agent) ends the bridge
            gone.set()
            watching.cancel()

    async def _take_remote(self, agent: LiveCall, call_id: str) -> QueueStay | None:
        assert self.media is not None
        relay = await self.media.open_channel()
        take = self._takes[agent.call_id] = _RemoteTake(relay)
        bridge: Bridge | None = None
        try:
            await self._send(
                call_id,
                queue="offer",
                agent_call_id=agent.call_id,
                relay=[self.media_address, relay.local_address[1]],
            )
            answering: asyncio.Future[Any] = take.answer
            await asyncio.wait({answering}, timeout=RELAY_ANSWER_SECONDS)
            answer = take.answer.result() if take.answer.done() else {}
            address = answer.get("relay")
            if not address:
                return None  # gone meanwhile, or its process did not answer
            relay.configure(str(address[0]), int(address[1]))
            with contextlib.suppress(ChannelClosed, ChannelInUse):
                bridge = Bridge(agent.channel, relay)
            started = time.monotonic()
            ended: asyncio.Future[Any] = asyncio.ensure_future(agent.wait_ended())
            try:
                await asyncio.wait({ended, take.ended}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                ended.cancel()
            if take.ended.done() and take.ended.result().get("stay") is None:
                return None  # the member went as it was offered
            return QueueStay(
                "bridged",
                int(answer.get("wait_seconds", 0)),
                agent.call_id,
                math.ceil(time.monotonic() - started),
            )
        finally:
            if bridge is not None:
                bridge.close()
            self.relay_packets += relay.quality().packets
            await relay.close()
            del self._takes[agent.call_id]
            if not take.ended.done():
                with contextlib.suppress(Exception):
                    await self._send(call_id, queue="agent_gone")

    async def on_command(self, call_id: str, command: dict[str, Any]) -> None:
        """A queue message for ``call_id``, a call this process holds."""
        kind = command.get("queue")
        if kind == "removed":
            self.remove(call_id)
        elif kind == "offer":
            await self._offered_remotely(call_id, command)
        elif kind in ("answer", "ended"):
            take = self._takes.get(call_id)
            waiting = None if take is None else (take.answer if kind == "answer" else take.ended)
            if waiting is not None and not waiting.done():
                waiting.set_result(command)
        elif kind == "agent_gone":
            gone = self._relayed.get(call_id)
            if gone is not None:
                gone.set()

    async def _offered_remotely(self, call_id: str, command: dict[str, Any]) -> None:
        agent_call_id = str(command.get("agent_call_id", ""))
        member = self._members.get(call_id)
        address = command.get("relay")
        if member is None or member.offer.done() or self.media is None or not address:
            await self._send(agent_call_id, queue="answer", relay=None)
            return
        relay = await self.media.open_channel()
        relay.configure(str(address[0]), int(address[1]))
        gone = self._relayed[call_id] = asyncio.Event()
        offer = _Offer(agent_call_id, relay, gone)
        member.offer.set_result(offer)
        await self._send(
            agent_call_id,
            queue="answer",
            relay=[self.media_address, relay.local_address[1]],
            wait_seconds=member.waited(),
        )
        stay = await asyncio.shield(offer.done)
        self._relayed.pop(call_id, None)
        self.relay_packets += relay.quality().packets
        await relay.close()
        await self._send(
            agent_call_id,
            queue="ended",
            stay=None if stay is None else {"duration": stay.duration},
        )

    async def _send(self, call_id: str, **fields: Any) -> None:
        bus = self.bus
        assert bus is not None
        message = {"type": "command", "call_id": call_id, **fields}
        await self.database.write(
            lambda session: bus.publish(session, message), what=f"queue message to {call_id}"
        )

    async def _await_arrival(self, agent: LiveCall, seconds: float) -> None:
        arrival = asyncio.ensure_future(self._arrival.wait())
        ended = asyncio.ensure_future(agent.wait_ended())
        try:
            await asyncio.wait({arrival, ended}, timeout=seconds)
        finally:
            arrival.cancel()
            ended.cancel()

    async def _claim(
        self, session: AsyncSession, workspace_id: str, name: str, agent_call_id: str
    ) -> tuple[str, str] | None:
        """Claim the longest-waiting member (of any process when members elsewhere can be
        bridged, else of this one); answers its call id and node."""
        queue = await find_queue(session, workspace_id, name)
        if queue is None:
            return None
        while True:
            query = select(QueueMember).where(
                QueueMember.queue_id == queue.id, QueueMember.status == "waiting"
            )
            if not self._remote:
                query = query.where(QueueMember.node == self.node)
            member = await session.scalar(
                query.order_by(QueueMember.seq).limit(1).with_for_update(skip_locked=True)
            )
            if member is None:
                return None
            call = await session.get(Call, member.call_id)
            if call is None or call.status not in LIVE_STATUSES:
                await _leave_row(session, member.seq, "hangup")  # a crash left it waiting
                continue
            if member.node == self.node:
                local = self._members.get(member.call_id)
                if local is None or local.offer.done():
                    await _leave_row(session, member.seq, "hangup")
                    continue
            member.status = "bridging"
            member.agent_call_id = agent_call_id
            return member.call_id, member.node

    async def recover_node(self, owner: str) -> int:
        """The members ``owner`` held when it died (this node after a crash, or a dead
        node's) leave with ``error``, each with its ``queue.left``; answers how many."""

        async def job(session: AsyncSession) -> int:
            stranded = await session.scalars(
                select(QueueMember.seq).where(
                    QueueMember.node == owner, QueueMember.status.in_(("waiting", "bridging"))
                )
            )
            left = 0
            for seq in stranded.all():
                if seq not in {member.seq for member in self._members.values()}:
                    left += await _leave_row(session, seq, "error") is not None
            return left

        return await self.database.write(job, what=f"queue members of {owner} recovered")

    def remove(self, call_id: str) -> bool:
        """The API removed ``call_id`` from its queue (its row says so already)."""
        member = self._members.get(call_id)
        if member is None or member.offer.done():
            return False
        member.offer.set_result("removed")
        return True
