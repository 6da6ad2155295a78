"""Two legs joined until one of them hangs up, through any blind transfers the device's
side asks for."""

from __future__ import annotations

import asyncio
import contextlib

from sautikit.media import Bridge, ChannelClosed
from sautikit.pbx import CallLeg
from sautikit.sip import SipUri
from sautikit.voice.live import TRANSFEROR_GRACE_SECONDS, LiveCall, transfer_target

__all__ = ["TransferInbox", "bridge_until_one_hangs_up"]

_Asked = tuple[SipUri, "asyncio.Future[int]"]


class TransferInbox:
    """Where a device's REFERs wait for its bridge. Installed on the device's legs before
    they are answered: a phone may transfer the moment its call is up, before the bridge
    exists (a REFER nobody takes is answered 603)."""

    def __init__(self) -> None:
        self.asked: asyncio.Queue[_Asked] = asyncio.Queue()
        self._legs: list[CallLeg] = []

    def accept(self, leg: CallLeg) -> None:
        leg.sip.on_refer = self._on_refer
        self._legs.append(leg)

    async def _on_refer(self, uri: SipUri) -> int:
        status: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.asked.put_nowait((uri, status))
        return await asyncio.shield(status)

    def close(self) -> None:
        """No more transfers: those still waiting fail with 487."""
        for leg in self._legs:
            leg.sip.on_refer = None
        while not self.asked.empty():
            self.asked.get_nowait()[1].set_result(487)


async def bridge_until_one_hangs_up(
    live: LiveCall,
    other: CallLeg,
    *,
    caller_side: CallLeg,
    transfers: TransferInbox | None = None,
) -> None:
    """Bridge the billed call's leg with ``other`` (a registered device's leg) until either
    side hangs up, then hang up the other side, recording who ended it.

    The device may blind-transfer ``live``'s party (REFER, RFC 3515) whether it placed the
    call or took it: the party hears ringback while the target rings (a child leg of
    ``live``'s call, billed like a ``dial``), then talks to the target; the device is told
    the outcome in its NOTIFY and is let go (our BYE if it has not hung up in a few
    seconds). A target that does not answer leaves the party with the device.
    ``transfers``: the inbox installed on the device's legs while they rang."""
    inbox = transfers or TransferInbox()
    inbox.accept(other)
    asked = inbox.asked
    partner: CallLeg = other
    target: LiveCall | None = None  # the party's new callee, once a transfer worked
    let_go: list[asyncio.Future[None]] = []
    try:
        while True:
            try:
                bridge: Bridge | None = Bridge(live.leg.channel, partner.channel)
            except ChannelClosed:  # one side hung up as it answered
                bridge = None
            ends = [
                asyncio.ensure_future(live.leg.wait_ended()),
                asyncio.ensure_future(partner.wait_ended()),
            ]
            request = asyncio.ensure_future(asked.get())
            done, _ = await asyncio.wait([*ends, request], return_when=asyncio.FIRST_COMPLETED)
            if bridge is not None:
                bridge.close()
            for waiting in [*ends, request]:
                waiting.cancel()
            if request in done:
                uri, status = request.result()
                if live.ended:
                    status.set_result(487)
                else:
                    answered, code = await live.ring_transfer_target(transfer_target(uri))
                    status.set_result(code)
                    if answered is not None:
                        if target is None:
                            let_go.append(asyncio.ensure_future(_let_go(other)))
                        else:
                            await target.hangup("normal_clearing")
                        target, partner = answered, answered.leg
                if not (partner.ended or live.ended):
                    continue
            gone_first = live.leg.ended or not partner.ended
            break
        if gone_first:
            if target is not None:
                await target.hangup("normal_clearing")
            elif not partner.ended:
                await partner.hangup()
        else:
            # Whoever took the device's place after a transfer stands on its side.
            await live.hangup("caller_hangup" if other is caller_side else "callee_hangup")
    finally:
        inbox.close()
        for grace in let_go:
            grace.cancel()
        if target is not None and not other.ended:
            with contextlib.suppress(Exception):
                await other.hangup()  # the transferor's grace ended with the call
        if target is not None and not target.ended:
            await target.hangup("normal_clearing")


async def _let_go(transferor: CallLeg) -> None:
    """A device that transferred its party hangs up once told it worked; if it does not in
    a few seconds, it gets our BYE."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(transferor.wait_ended(), TRANSFEROR_GRACE_SECONDS)
    if not transferor.ended:
        with contextlib.suppress(Exception):
            await transferor.hangup()
