"""How long a live call may last: its ``max_duration``, and its prepaid quota renewed
slice by slice (:mod:`sautikit.billing.quota`) while it is answered.

One task per live call (:meth:`Funding.keep_funded`) owns the call's quota: it waits for
the answer, asks for the next slice :data:`RENEW_LEAD_SECONDS` before the granted seconds
run out, and when the wallet cannot pay a second more it writes ``call.funds_low`` (the
seconds left in ``data``), keeps asking every :data:`RETRY_SECONDS` (a top-up still funds
the call), and at the end of what was granted hangs up with ``insufficient_funds``. The
task ends with the call, however the call ends; the hold itself is released by the call's
settlement (:func:`sautikit.calls.records.end_call`) on every exit path.
"""

from __future__ import annotations

import asyncio
import logging

from sautikit.billing.quota import Quota, renew_quota
from sautikit.calls.records import record_funds_low
from sautikit.config import Settings
from sautikit.db import Database
from sautikit.voice.live import LiveCall

__all__ = ["RENEW_LEAD_SECONDS", "RETRY_SECONDS", "Funding"]

log = logging.getLogger(__name__)

RENEW_LEAD_SECONDS = 15.0
"""How long before its granted seconds run out a call asks for the next slice: room for a
slow database, and for one retry."""

RETRY_SECONDS = 2.0
"""After a refused renewal, how often to ask again until the granted seconds run out."""

CUT_MARGIN_SECONDS = 0.25
"""A started second is billed whole: hang up just inside the last paid second."""


class Funding:
    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.settings = settings

    async def keep_funded(
        self, live: LiveCall, quota: Quota, *, max_duration: int | None = None
    ) -> None:
        """Hold ``live`` to its ``max_duration`` and its quota until it ends."""
        ended = asyncio.ensure_future(live.wait_ended())
        answered = asyncio.ensure_future(live.answered_event.wait())
        try:
            await asyncio.wait({ended, answered}, return_when=asyncio.FIRST_COMPLETED)
            if not ended.done():
                await self._while_answered(live, quota, max_duration, ended)
        finally:
            ended.cancel()
            answered.cancel()

    async def _while_answered(
        self,
        live: LiveCall,
        quota: Quota,
        max_duration: int | None,
        ended: asyncio.Future[None],
    ) -> None:
        warned = False
        while not ended.done():
            granted = quota.seconds
            if max_duration and (granted is None or max_duration <= granted):
                if await _ends_before(ended, live, max_duration - CUT_MARGIN_SECONDS):
                    return
                log.info("call %s: max_duration after %d s", live.call_id, max_duration)
                await live.hangup("max_duration")
                return
            if granted is None:  # free and unlimited
                await ended
                return
            lead = min(RENEW_LEAD_SECONDS, granted / 2) if not warned else 0.0
            wake = granted - lead if not warned else live.answered_seconds + RETRY_SECONDS
            cut = granted - CUT_MARGIN_SECONDS
            if await _ends_before(ended, live, min(wake, cut)):
                return
            if live.answered_seconds >= cut:
                log.info("call %s: insufficient_funds after %d s", live.call_id, granted)
                await live.hangup("insufficient_funds")
                return
            renewed = await self._renew(live, quota)
            if renewed is None:
                return  # the call ended meanwhile
            if renewed.seconds is None or renewed.seconds > granted:
                quota, warned = renewed, False
                continue
            if not warned:
                warned = True
                await self._funds_low(live, granted)

    async def _renew(self, live: LiveCall, quota: Quota) -> Quota | None:
        try:
            async with self.database.transaction() as session:
                return await renew_quota(
                    session,
                    live.workspace_id,
                    live.call_id,
                    quota.rate_per_minute_minor,
                    slice_seconds=self.settings.call_quota_seconds,
                )
        except Exception:
            # A failed renewal grants nothing: the call keeps what it has and asks again.
            log.exception("call %s: renewing its quota failed", live.call_id)
            return quota

    async def _funds_low(self, live: LiveCall, granted: int) -> None:
        left = max(0, int(granted - live.answered_seconds))
        try:
            async with self.database.transaction() as session:
                await record_funds_low(session, live.call_id, seconds_left=left)
        except Exception:
            log.exception("call %s: writing call.funds_low failed", live.call_id)


async def _ends_before(ended: asyncio.Future[None], live: LiveCall, at_seconds: float) -> bool:
    """Wait until the call has been answered ``at_seconds``; answers True if it ended first."""
    delay = at_seconds - live.answered_seconds
    if delay > 0:
        await asyncio.wait({ended}, timeout=delay)
    return ended.done()
