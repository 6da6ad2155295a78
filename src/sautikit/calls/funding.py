"""How long a live call may last: its ``max_duration`` and what its hold pays for."""

from __future__ import annotations

import asyncio
import logging

from sautikit.voice.control import HangupCause
from sautikit.voice.live import LiveCall

__all__ = ["enforce_limits"]

log = logging.getLogger(__name__)


async def enforce_limits(live: LiveCall, max_duration: int | None, allowed: int | None) -> None:
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
