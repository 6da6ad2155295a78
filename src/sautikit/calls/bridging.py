"""Two legs joined until one of them hangs up."""

from __future__ import annotations

import asyncio

from sautikit.media import Bridge, ChannelClosed
from sautikit.pbx import CallLeg
from sautikit.voice.live import LiveCall

__all__ = ["bridge_until_one_hangs_up"]


async def bridge_until_one_hangs_up(
    live: LiveCall, other: CallLeg, *, caller_side: CallLeg
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
