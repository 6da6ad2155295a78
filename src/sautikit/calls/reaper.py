"""The reaper: finds what no call owns any more and ends it.

Every resource of a call has one owner — the call's :class:`~sautikit.voice.live.LiveCall`
and the task running it — and each is released on every exit path. The reaper is the
net under that rule, for the paths nobody thought of (a handler that died between two
awaits, a database write that failed under overload). Every :data:`REAP_SECONDS` it
checks, in this process:

* **media channels** that no SIP leg holds (the leg ended, or never came to be): closed,
  which gives their RTP ports back to the pool. A channel is only closed when it was
  already unheld at the previous sweep, so one opened an instant ago is never taken;
* **SIP legs** that no live call owns, older than ``unowned_leg_seconds``: hung up
  (BYE, CANCEL or a final 480, as the leg's state asks), which closes their channel;
* **call rows** this process owns that say ``queued``, ``ringing`` or ``answered`` but
  have no live call here, older than ``unowned_leg_seconds``: ended with
  ``network_error`` (billed up to their last heartbeat, hold released, event written).

What it ends it logs, and counts in :class:`Reaped` (exported in ``/metrics``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select

from sautikit.calls.records import end_call
from sautikit.calls.status import LIVE_STATUSES
from sautikit.config import Settings
from sautikit.db import Database
from sautikit.db.models import Call
from sautikit.db.types import utcnow
from sautikit.media import MediaChannel
from sautikit.pbx import CallLeg, Pbx

__all__ = ["REAP_SECONDS", "Reaped", "Reaper"]

log = logging.getLogger(__name__)

REAP_SECONDS = 5.0
"""How often the reaper sweeps: an orphaned channel lives at most two sweeps."""


@dataclass
class Reaped:
    """What the reaper has ended since the process started."""

    channels: int = 0
    legs: int = 0
    rows: int = 0


class Reaper:
    """Sweeps ``pbx`` and the ``calls`` rows of ``node``; ``owned_legs`` answers the legs
    live calls hold and ``live_call_ids`` the ids of the calls this process runs."""

    def __init__(
        self,
        pbx: Pbx,
        database: Database,
        settings: Settings,
        *,
        node: str,
        owned_legs: Callable[[], Collection[CallLeg]],
        live_call_ids: Callable[[], Collection[str]],
        unowned_leg_seconds: float,
    ) -> None:
        self.pbx = pbx
        self.database = database
        self.settings = settings
        self.node = node
        self._owned_legs = owned_legs
        self._live_call_ids = live_call_ids
        self.unowned_leg_seconds = unowned_leg_seconds
        self.reaped = Reaped()
        self._unheld: set[MediaChannel] = set()
        self.relays: list[Callable[[], Iterable[MediaChannel]]] = []
        """Channels held by no leg but in use: relays to other nodes (cluster.rooms)."""
        self._hanging_up: dict[CallLeg, asyncio.Task[None]] = {}

    async def run(self) -> None:
        """Sweep every :data:`REAP_SECONDS` until cancelled."""
        while True:
            await asyncio.sleep(REAP_SECONDS)
            try:
                await self.sweep()
            except Exception:
                log.exception("the reaper's sweep failed")

    async def sweep(self) -> Reaped:
        """One pass over channels, legs and rows; answers the running totals."""
        legs = self.pbx.legs
        relayed = {channel for relays in self.relays for channel in relays()}
        await self._close_unheld_channels({leg.channel for leg in legs} | relayed)
        await self._hang_up_unowned_legs(legs)
        await self._end_unowned_rows()
        return self.reaped

    async def _close_unheld_channels(self, held: set[MediaChannel]) -> None:
        unheld = {channel for channel in self.pbx.media.channels if channel not in held}
        for channel in unheld & self._unheld:
            log.warning("reaper: closing media channel %s that no call holds", channel)
            with contextlib.suppress(Exception):
                await channel.close()
            self.reaped.channels += 1
        self._unheld = unheld - self._unheld

    async def _hang_up_unowned_legs(self, legs: dict[CallLeg, float]) -> None:
        owned = set(self._owned_legs())
        cutoff = time.monotonic() - self.unowned_leg_seconds
        for leg, since in legs.items():
            if leg in owned or leg in self._hanging_up or since > cutoff or leg.ended:
                continue
            log.warning("reaper: hanging up SIP call %s that no call owns", leg.call_id)
            self.reaped.legs += 1
            self._hanging_up[leg] = asyncio.ensure_future(self._hang_up(leg))

    async def _hang_up(self, leg: CallLeg) -> None:
        try:
            with contextlib.suppress(Exception):
                await leg.hangup()
        finally:
            # However the far end answered, our side is done: free the media now.
            leg.channel.close_now()
            self._hanging_up.pop(leg, None)

    async def _end_unowned_rows(self) -> None:
        cutoff = utcnow() - timedelta(seconds=self.unowned_leg_seconds)
        live = set(self._live_call_ids())
        async with self.database.sessions() as session:
            candidates = (
                await session.scalars(
                    select(Call.id).where(
                        Call.status.in_(LIVE_STATUSES),
                        Call.owner == self.node,
                        Call.created_at < cutoff,
                    )
                )
            ).all()
        orphans = [call_id for call_id in candidates if call_id not in live]
        if not orphans:
            return
        async with self.database.transaction() as session:
            for call_id in orphans:
                call = await session.get(Call, call_id)
                if call is None or call_id in self._live_call_ids():
                    continue
                if await end_call(
                    session,
                    call,
                    "network_error",
                    settings=self.settings,
                    ended_at=call.last_seen_at or call.answered_at or None,
                ):
                    log.warning("reaper: ended call %s, which no live call held", call_id)
                    self.reaped.rows += 1
