"""Reliable provisional responses (RFC 3262, ``100rel``) and their PRACKs, both roles.

Carriers send early media (a 183 with SDP: ringback, "the number you dialled…") as a
reliable provisional response and wait for a PRACK; without one they retransmit it and
finally give up on the call. The two halves:

* :class:`ReliableProvisionals` — UAS (§3): when the INVITE said ``Supported: 100rel``
  (or ``Require``), a provisional we send reliably gets ``Require: 100rel`` and an
  ``RSeq`` (counting up from a random start), and is re-sent at T1, doubling, until the
  PRACK whose ``RAck`` names it; 64·T1 without one and the INVITE is given up (the owner
  hears it and answers 5xx). One is outstanding at a time: a later one waits for the
  PRACK of the one before (§3), so its order is kept.
* :class:`PrackState` — UAC (§4): each new reliable provisional (``Require: 100rel`` with
  an ``RSeq`` one above the last) is answered with a PRACK whose ``RAck`` names it;
  retransmissions and out-of-order ones are not (§4).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from sautikit.sip.message import Request, Response
from sautikit.sip.option_tags import requires, supports
from sautikit.sip.transaction import TimerConfig

__all__ = ["PrackState", "RAck", "ReliableProvisionals", "rseq_of"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RAck:
    """``RAck: 776656 1 INVITE`` (§7.2): the RSeq, CSeq number and method acknowledged."""

    rseq: int
    cseq: int
    method: str

    @classmethod
    def parse(cls, value: str) -> RAck:
        parts = value.split()
        if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
            raise ValueError(f"bad RAck {value!r}")
        return cls(int(parts[0]), int(parts[1]), parts[2].upper())

    def __str__(self) -> str:
        return f"{self.rseq} {self.cseq} {self.method}"


def rseq_of(response: Response) -> int | None:
    """The RSeq of a reliable provisional response, else None (not reliable, or unreadable)."""
    if not response.is_provisional or response.status == 100 or "100rel" not in requires(response):
        return None
    value = (response.headers.get("RSeq") or "").strip()
    return int(value) if value.isdigit() else None


class ReliableProvisionals:
    """The UAS half; see the module docstring. ``send`` hands a response to the INVITE's
    server transaction; ``on_timeout`` hears that no PRACK came within 64·T1."""

    def __init__(
        self,
        invite: Request,
        send: Callable[[Response], object],
        timers: TimerConfig,
        on_timeout: Callable[[], None],
    ) -> None:
        self.enabled = supports(invite, "100rel")
        #: The caller requires it: every provisional but 100 must be reliable (§3).
        self.required = "100rel" in requires(invite)
        self._invite = invite
        self._send = send
        self._timers = timers
        self._on_timeout = on_timeout
        self._loop = asyncio.get_running_loop()
        self._next_rseq = 1 + secrets.randbelow(2**31 - 1)
        self._outstanding: Response | None = None
        self._waiting: deque[Response] = deque()
        self._interval = timers.t1
        self._resend: asyncio.TimerHandle | None = None
        self._give_up: asyncio.TimerHandle | None = None
        self.pracks = 0

    @property
    def pending(self) -> bool:
        """A reliable provisional is still unacknowledged (or waiting to go out)."""
        return self._outstanding is not None or bool(self._waiting)

    def send(self, response: Response) -> None:
        """Send ``response`` (a 101-199) reliably; queued behind an unacknowledged one."""
        response.headers.add("Require", "100rel")
        response.headers.set("RSeq", str(self._next_rseq))
        self._next_rseq += 1
        if self._outstanding is not None:
            self._waiting.append(response)
            return
        self._transmit(response)

    def _transmit(self, response: Response) -> None:
        self._outstanding = response
        self._interval = self._timers.t1
        self._send(response)
        self._resend = self._loop.call_later(self._interval, self._retransmit)
        self._give_up = self._loop.call_later(self._timers.transaction_timeout, self._expired)

    def _retransmit(self) -> None:
        response = self._outstanding
        if response is None:
            return
        self._send(response)
        self._interval = min(2 * self._interval, self._timers.t2)
        self._resend = self._loop.call_later(self._interval, self._retransmit)

    def _expired(self) -> None:
        if self._outstanding is not None:
            log.info("call %s: no PRACK for a reliable provisional", self._invite.call_id)
            self.stop()
            self._on_timeout()

    def on_prack(self, prack: Request) -> bool:
        """A PRACK arrived: True (answer 200) when its RAck names our outstanding response
        (§3), False for 481."""
        try:
            rack = RAck.parse(prack.headers.get("RAck") or "")
        except ValueError:
            return False
        response = self._outstanding
        if response is None or rack.method != "INVITE" or rack.cseq != self._invite.cseq.number:
            return False
        if str(rack.rseq) != response.headers.get("RSeq"):
            return False
        self.pracks += 1
        self._cancel_timers()
        self._outstanding = None
        if self._waiting:
            self._transmit(self._waiting.popleft())
        return True

    def _cancel_timers(self) -> None:
        for handle in (self._resend, self._give_up):
            if handle is not None:
                handle.cancel()
        self._resend = self._give_up = None

    def stop(self) -> None:
        """The INVITE got its final answer (or the call ended): stop re-sending."""
        self._cancel_timers()
        self._outstanding = None
        self._waiting.clear()


class PrackState:
    """The UAC half: which reliable provisional answers get a PRACK (§4)."""

    def __init__(self) -> None:
        self._last_rseq: int | None = None

    def rack_for(self, response: Response, invite: Request) -> RAck | None:
        """The RAck to PRACK ``response`` with, or None (not reliable, a retransmission,
        or out of order: §4 drops those)."""
        rseq = rseq_of(response)
        if rseq is None:
            return None
        if self._last_rseq is not None and rseq != self._last_rseq + 1:
            return None
        self._last_rseq = rseq
        return RAck(rseq, invite.cseq.number, "INVITE")

    def forget(self) -> None:
        """A new INVITE (after a challenge) starts a new RSeq space."""
        self._last_rseq = None
