"""Node leases: when a node dies, a survivor closes what it left live.

Every ``sautikit serve`` keeps a row in ``nodes`` and renews its ``lease_expires_at``
every third of ``node_lease_seconds``. Each round it also looks for nodes whose lease ran
out and that nobody recovered yet, and claims one with a conditional UPDATE (``recovered_at
IS NULL``), so exactly one survivor recovers each dead node. Recovering a node:

1. takes its live calls over in one UPDATE (``owner`` becomes ``<dead>~<survivor>``): the
   row lock makes that atomic against a second survivor and against the dead node coming
   back with its own id and closing its calls itself (calls.recovery at start);
2. closes them with the one implementation of crash recovery,
   :func:`sautikit.calls.recovery.recover_calls` (through
   :meth:`CallManager.recover_node`): ``network_error``, billed once for the seconds up to
   the last heartbeat, holds released, ``call.*`` events written, far ends sent BYE or
   CANCEL from the stored dialogs;
3. finishes the dead node's unfinished recordings: stored through the recording pipeline
   when their spool is readable from here (a shared volume), else marked ``failed`` with
   a ``failure_reason`` naming the node.

Undelivered events need nothing here: the outbox is in the database and every node's
delivery worker takes what is due, a dead node's leased attempts once their lease ends.

A node that finds its own lease already recovered (it was stalled longer than the lease)
logs an error, hangs up the calls it still runs (``on_fenced``: their rows were ended and
billed, their far ends sent BYE, by the survivor) and takes a new lease.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update

from sautikit.calls.status import LIVE_STATUSES
from sautikit.db import Database
from sautikit.db.models import Call, Node, Recording
from sautikit.db.types import rows_changed, utcnow
from sautikit.metrics import COUNTERS
from sautikit.recordings.pipeline import UNFINISHED_STATES, RecordingPipeline

__all__ = ["NodeLease", "recovery_owner"]

log = logging.getLogger(__name__)

RecoverCalls = Callable[[str], Awaitable[int]]
"""Closes the live calls whose ``owner`` is the given value; answers how many."""


def recovery_owner(dead: str, survivor: str) -> str:
    """The ``calls.owner`` of a dead node's calls once ``survivor`` took them over."""
    return f"{dead}~{survivor}"[:100]


class NodeLease:
    """This node's lease, renewed by :meth:`run`, and the recovery of dead nodes."""

    def __init__(
        self,
        database: Database,
        *,
        node: str,
        lease_seconds: float,
        recover_calls: RecoverCalls | None,
        recordings: RecordingPipeline | None = None,
        sip_address: str | None = None,
        on_fenced: Callable[[], Awaitable[None]] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.database = database
        self.node = node
        self.lease = timedelta(seconds=lease_seconds)
        self.recover_calls = recover_calls
        self.recordings = recordings
        self.sip_address = sip_address
        self.on_fenced = on_fenced
        self._clock = clock

    @property
    def renew_every(self) -> float:
        return self.lease.total_seconds() / 3

    async def register(self) -> None:
        """Take (or take back) this node's row with a fresh lease."""
        now = self._clock()
        async with self.database.transaction() as session:
            row = await session.get(Node, self.node, with_for_update=True)
            if row is None:
                row = Node(id=self.node, started_at=now)
                session.add(row)
            row.started_at = now
            row.renewed_at = now
            row.lease_expires_at = now + self.lease
            row.sip_address = self.sip_address
            row.recovered_by = None
            row.recovered_at = None

    async def renew(self) -> bool:
        """Extend the lease; False (and a new lease) if another node had recovered us."""
        now = self._clock()
        async with self.database.transaction() as session:
            renewed = await session.execute(
                update(Node)
                .where(Node.id == self.node, Node.recovered_at.is_(None))
                .values(renewed_at=now, lease_expires_at=now + self.lease)
            )
        if rows_changed(renewed) == 1:
            return True
        log.error(
            "node %s: its lease ran out and another node closed its calls; ending the calls "
            "still running here and taking a new lease",
            self.node,
        )
        if self.on_fenced is not None:
            await self.on_fenced()
        await self.register()
        return False

    async def release(self) -> None:
        """On a clean stop: end the lease now, so nobody waits for it to run out."""
        now = self._clock()
        try:
            async with self.database.transaction() as session:
                await session.execute(
                    update(Node)
                    .where(Node.id == self.node, Node.recovered_at.is_(None))
                    .values(renewed_at=now, lease_expires_at=now)
                )
        except Exception as exc:  # the lease runs out by itself
            log.warning("node %s: could not end its lease: %s", self.node, exc)

    async def recover_dead(self) -> list[str]:
        """Recover every node whose lease ran out and that no one recovered; answers the
        ids this node recovered. A node without calls of its own (no ``recover_calls``:
        an api or worker node) recovers nobody: it could not send the far ends BYE."""
        if self.recover_calls is None:
            return []
        now = self._clock()
        async with self.database.sessions() as session:
            expired = (
                await session.scalars(
                    select(Node.id).where(
                        Node.lease_expires_at < now,
                        Node.recovered_at.is_(None),
                        Node.id != self.node,
                    )
                )
            ).all()
        recovered = []
        for dead in expired:
            async with self.database.transaction() as session:
                claimed = await session.execute(
                    update(Node)
                    .where(
                        Node.id == dead, Node.lease_expires_at < now, Node.recovered_at.is_(None)
                    )
                    .values(recovered_by=self.node, recovered_at=now)
                )
            if rows_changed(claimed) == 1:
                await self.recover(dead)
                recovered.append(dead)
        return recovered

    async def recover(self, dead: str) -> int:
        """Close ``dead``'s live calls and finish its recordings; answers calls closed."""
        assert self.recover_calls is not None  # recover_dead claims nothing without it
        owner = recovery_owner(dead, self.node)
        async with self.database.transaction() as session:
            await session.execute(
                update(Call)
                .where(Call.owner == dead, Call.status.in_(LIVE_STATUSES))
                .values(owner=owner)
            )
        closed = await self.recover_calls(owner)
        failed, stored = await self._finish_recordings(dead, owner)
        COUNTERS.nodes_recovered += 1
        COUNTERS.calls_recovered += closed
        log.warning(
            "node %s's lease ran out: closed %d of its calls; %d recordings stored, %d failed",
            dead,
            closed,
            stored,
            failed,
            extra={"dead_node": dead},
        )
        return closed

    async def _finish_recordings(self, dead: str, owner: str) -> tuple[int, int]:
        async with self.database.sessions() as session:
            unfinished = (
                await session.execute(
                    select(Recording.id, Recording.spool_path)
                    .join(Call, Call.id == Recording.call_id)
                    .where(Call.owner.in_((dead, owner)), Recording.status.in_(UNFINISHED_STATES))
                )
            ).all()
        failed = stored = 0
        for recording_id, spool_path in unfinished:
            spool = Path(spool_path) if spool_path else None
            readable = spool is not None and await asyncio.to_thread(spool.is_file)
            if readable and self.recordings is not None:
                result = await self.recordings.store(recording_id)
                stored += result.status == "ready"
                continue
            reason = (
                f"node {dead} stopped while recording and its spool {spool_path or ''} is "
                f"not readable from node {self.node}"
            )
            async with self.database.transaction() as session:
                marked = await session.execute(
                    update(Recording)
                    .where(Recording.id == recording_id, Recording.status.in_(UNFINISHED_STATES))
                    .values(status="failed", failure_reason=reason[:500])
                )
            failed += rows_changed(marked)
        return failed, stored

    async def run(self) -> None:
        """Renew and look for dead nodes every third of the lease, until cancelled."""
        while True:
            await asyncio.sleep(self.renew_every)
            try:
                await self.renew()
                await self.recover_dead()
            except Exception:  # the database is away: try again next round
                log.exception("node lease round failed")
