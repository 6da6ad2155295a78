"""The live calls of this process, and the background tasks that serve them.

A call is in the registry from the moment it has a SIP leg here until its end is
recorded; the API's commands find it here, the heartbeat stamps it, shutdown ends it.
Every task a call needs is started through :meth:`CallRegistry.spawn`, so shutdown can
cancel what is left and a task's failure is logged, never lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Collection
from typing import Any

from sautikit.calls.recovery import dialog_column
from sautikit.db.models import Call
from sautikit.pbx import CallLeg, InboundLeg, OutboundLeg
from sautikit.sip.teardown import DialogSnapshot
from sautikit.voice.interpreter import Interpreter
from sautikit.voice.live import CallHost, LiveCall

__all__ = ["CallRegistry"]

log = logging.getLogger(__name__)

SHUTDOWN_FINISH_SECONDS = 4.5
"""After the grace, how long ending the live calls and writing what they leave may take
(on a loaded machine storing a recording and posting its callback takes seconds): the
process exits within the grace plus this plus the rest of its shutdown — the API closes
at once unless a request is in flight (then up to ``app.API_CLOSE_SECONDS``)."""


class CallRegistry:
    def __init__(self) -> None:
        self.live: dict[str, LiveCall] = {}
        self.interpreters: dict[str, Interpreter] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        #: Legs a call owns besides its own: a device's leg of its outbound call, the
        #: devices a call rings. Released with the call.
        self._held: dict[str, list[CallLeg]] = {}
        #: Calls removed while their end is still being written (row, bill, events).
        self._ending: set[asyncio.Future[None]] = set()

    def adopt(self, host: CallHost, leg: InboundLeg | OutboundLeg, call: Call) -> LiveCall:
        """The live call of ``call``'s row over ``leg``, registered here."""
        live = LiveCall(
            host,
            leg,
            call_id=call.id,
            workspace_id=call.workspace_id,
            from_=call.from_number,
            to=call.to_number,
            direction="inbound" if call.direction == "inbound" else "outbound",
            on_net=call.on_net,
        )
        self.live[call.id] = live
        return live

    def remove(self, call_id: str) -> None:
        """The call has ended: commands no longer find it; shutdown still waits until
        its end is written."""
        live = self.live.pop(call_id, None)
        self._held.pop(call_id, None)
        if live is not None:
            ending = asyncio.ensure_future(live.wait_ended())
            self._ending.add(ending)
            ending.add_done_callback(self._ending.discard)

    def hold(self, call_id: str, leg: CallLeg) -> None:
        """Record that the call ``call_id`` owns ``leg`` too (the reaper leaves it be)."""
        self._held.setdefault(call_id, []).append(leg)

    def owned_legs(self) -> list[CallLeg]:
        """Every leg a live call here owns: its own and those it holds."""
        legs = [live.leg for live in self.live.values()]
        for held in self._held.values():
            legs += held
        return legs

    def dialogs(self, live: LiveCall) -> dict[str, Any]:
        """The call's SIP legs as the next process needs them after a crash."""
        legs = [live.leg, *self._held.get(live.call_id, ())]
        return dialog_column([DialogSnapshot.of_call(leg.sip) for leg in legs if not leg.ended])

    def get(self, call_id: str) -> LiveCall | None:
        return self.live.get(call_id)

    def spawn(self, coroutine: Awaitable[Any], what: str) -> asyncio.Task[Any]:
        """Run ``coroutine`` as a task owned by the registry; its failure is logged."""
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)

        def finished(done: asyncio.Task[Any]) -> None:
            self._tasks.discard(done)
            if not done.cancelled() and done.exception() is not None:
                log.error("%s failed", what, exc_info=done.exception())

        task.add_done_callback(finished)
        return task

    async def drain(
        self,
        grace: float,
        *,
        hurry: asyncio.Event | None = None,
        keep_running: Collection[asyncio.Task[Any]] = (),
    ) -> None:
        """Let live calls run up to ``grace`` seconds (or until ``hurry`` is set), then end
        them with BYE; wait, up to :data:`SHUTDOWN_FINISH_SECONDS` more, until every ended
        call's record, bill, events and recordings are written (the interpreters finish
        their last callbacks); only then stop what is left. ``keep_running`` are tasks that
        never end by themselves (the heartbeat, the reaper), so they are not waited for."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        hurried = asyncio.ensure_future(hurry.wait()) if hurry is not None else None
        # Calls may still start during the grace (a live call's dial): wait for them too.
        while self.live and loop.time() < deadline and not (hurried and hurried.done()):
            endings = {asyncio.ensure_future(call.wait_ended()) for call in self.live.values()}
            waits: set[asyncio.Future[Any]] = set(endings)
            if hurried is not None:
                waits.add(hurried)
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
        work: list[asyncio.Future[Any]] = [task for task in self._tasks if task not in keep_running]
        work += self._ending
        if work:
            await asyncio.wait(work, timeout=max(0.1, finish_by - loop.time()))
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
