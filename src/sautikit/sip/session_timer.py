"""Session timers (RFC 4028): a call whose far end vanished ends instead of lasting for ever.

A call that lost its far end without a BYE (a phone's battery, a carrier's crashed SBC)
would otherwise stay up, and billed, until someone notices. RFC 4028 has one side, the
*refresher*, repeat a re-INVITE or UPDATE every half interval; the other side hangs up
with BYE when no refresh came by the end of the interval.

This module is the pure part plus the clock:

* :class:`SessionTimerConfig` — what we ask for (``Session-Expires``) and the shortest
  interval we accept (``Min-SE``; RFC 4028 §4 says at least 90 s, tests use less).
* :class:`SessionExpires` — the header value (§4): the interval and ``refresher=uac|uas``.
* :func:`request_headers` — what our INVITEs and refreshes carry (§7.1).
* :func:`too_small` — the 422 for a request whose interval is below our Min-SE (§8.1).
* :func:`negotiate_as_uas` — the ``Session-Expires`` our 2xx carries (§9): the request's
  interval and refresher if it named them; else we choose (the UAC refreshes when it said
  ``Supported: timer``, else we do, so dead calls are caught with phones that know
  nothing of timers too).
* :class:`SessionTimer` — the running timer: as refresher it calls ``refresh`` at half the
  interval (§7.2 / §9), otherwise it calls ``expire`` at the interval minus
  ``min(32, interval / 3)`` (§10). Each successful refresh either way restarts it.

:mod:`sautikit.sip.session` applies these to its calls.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import Literal

from sautikit.sip.message import Request, Response
from sautikit.sip.option_tags import supports

__all__ = [
    "SessionExpires",
    "SessionTimer",
    "SessionTimerConfig",
    "negotiate_as_uas",
    "request_headers",
    "too_small",
]

log = logging.getLogger(__name__)

Refresher = Literal["uac", "uas"]

#: RFC 4028 §4: no interval below this is ever required of anyone.
RFC_MIN_SE = 90


@dataclasses.dataclass(frozen=True)
class SessionTimerConfig:
    """``expires``: the interval we ask for; ``min_se``: the shortest we accept."""

    expires: int = 1800
    min_se: int = RFC_MIN_SE

    def __post_init__(self) -> None:
        if self.min_se < 1 or self.expires < self.min_se:
            raise ValueError("session timers need 1 <= min_se <= expires")


@dataclasses.dataclass(frozen=True)
class SessionExpires:
    """``Session-Expires: 1800;refresher=uac`` (RFC 4028 §4; compact form ``x``)."""

    seconds: int
    refresher: Refresher | None = None

    @classmethod
    def parse(cls, value: str) -> SessionExpires:
        """Raises ``ValueError`` for a value that is not ``delta-seconds *(;param)``."""
        head, *params = (part.strip() for part in value.split(";"))
        if not head.isdigit():
            raise ValueError(f"bad Session-Expires {value!r}")
        refresher: Refresher | None = None
        for param in params:
            name, _, found = param.partition("=")
            if name.strip().lower() == "refresher":
                role = found.strip().lower()
                if role == "uac":
                    refresher = "uac"
                elif role == "uas":
                    refresher = "uas"
        return cls(int(head), refresher)

    @classmethod
    def of(cls, message: Request | Response) -> SessionExpires | None:
        """The message's Session-Expires, or None when it has none (or an unreadable one)."""
        value = message.headers.get("Session-Expires")  # compact "x" is read as this
        if value is None:
            return None
        try:
            return cls.parse(value)
        except ValueError:
            return None

    def __str__(self) -> str:
        return f"{self.seconds};refresher={self.refresher}" if self.refresher else str(self.seconds)


def min_se_of(message: Request | Response) -> int:
    """The message's Min-SE, or 0 without a readable one."""
    value = (message.headers.get("Min-SE") or "").split(";", 1)[0].strip()
    return int(value) if value.isdigit() else 0


def request_headers(
    config: SessionTimerConfig, expires: int | None = None
) -> list[tuple[str, str]]:
    """Session-Expires and Min-SE for an INVITE of ours (§7.1); the refresher is left to the
    UAS, which knows whether both sides support timers."""
    seconds = max(expires or config.expires, config.min_se)
    return [("Session-Expires", str(seconds)), ("Min-SE", str(config.min_se))]


def too_small(request: Request, config: SessionTimerConfig) -> Response | None:
    """The 422 Session Interval Too Small for a request asking for less than our Min-SE
    (§8.1), else None."""
    asked = SessionExpires.of(request)
    if asked is None or asked.seconds >= config.min_se:
        return None
    response = request.create_response(422)
    response.headers.add("Min-SE", str(config.min_se))
    return response


def negotiate_as_uas(request: Request, config: SessionTimerConfig) -> SessionExpires:
    """The Session-Expires our 2xx to ``request`` carries (§9)."""
    asked = SessionExpires.of(request)
    uac_supports = supports(request, "timer")
    if asked is not None:
        seconds = max(asked.seconds, config.min_se, min_se_of(request))
        refresher = asked.refresher or ("uac" if uac_supports else "uas")
    else:
        seconds = max(config.expires, min_se_of(request))
        refresher = "uac" if uac_supports else "uas"
    if not uac_supports:
        refresher = "uas"  # a UAC that knows no timers will never refresh
    return SessionExpires(seconds, refresher)


def add_to_response(response: Response, request: Request, expires: SessionExpires) -> None:
    """Put the negotiated timer on our 2xx; ``Require: timer`` when the UAC refreshes."""
    response.headers.set("Session-Expires", str(expires))
    if supports(request, "timer"):
        response.headers.add("Require", "timer")


def expiry_delay(seconds: float) -> float:
    """§10: the refreshed side gives up this long after the last refresh."""
    return seconds - min(32.0, seconds / 3)


class SessionTimer:
    """The running timer of one call; see the module docstring.

    ``refresh`` sends one refresh and returns the interval the far end agreed with which
    side refreshes next (``(seconds, we_refresh)``), or None when it failed (a later
    attempt follows while the session has not expired). ``expire`` ends the call.
    """

    def __init__(
        self,
        refresh: Callable[[], Awaitable[tuple[int, bool] | None]],
        expire: Callable[[], None],
    ) -> None:
        self._refresh = refresh
        self._expire = expire
        self._loop = asyncio.get_running_loop()
        self._handle: asyncio.TimerHandle | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self.seconds: int | None = None
        self.we_refresh = False
        self.refreshes_sent = 0
        self.stopped = False

    @property
    def running(self) -> bool:
        return self.seconds is not None and not self.stopped

    def restart(self, seconds: int, we_refresh: bool) -> None:
        """A session refresh happened (or the session began) with this interval."""
        if self.stopped:
            return
        self._cancel_handles()
        self.seconds, self.we_refresh = seconds, we_refresh
        # The session expires at the interval whoever refreshes; as refresher we try at
        # half of it (and again if a refresh fails), else we give up a little early.
        if we_refresh:
            self._handle = self._loop.call_later(seconds / 2, self._start_refresh)
            self._deadline = self._loop.call_later(expiry_delay(seconds), self._on_expired)
        else:
            self._deadline = self._loop.call_later(expiry_delay(seconds), self._on_expired)

    def stop(self) -> None:
        self.stopped = True
        self._cancel_handles()
        if self._task is not None and not self._task.done():
            self._task.cancel()

    def _cancel_handles(self) -> None:
        for handle in (self._handle, self._deadline):
            if handle is not None:
                handle.cancel()
        self._handle = self._deadline = None

    def _start_refresh(self) -> None:
        self._handle = None
        if self.stopped or (self._task is not None and not self._task.done()):
            return
        self._task = self._loop.create_task(self._run_refresh())

    async def _run_refresh(self) -> None:
        self.refreshes_sent += 1
        try:
            agreed = await self._refresh()
        except Exception:
            log.exception("session refresh failed")
            agreed = None
        if self.stopped:
            return
        if agreed is not None:
            self.restart(*agreed)
        elif self.seconds is not None:
            # Try again before the deadline; a few seconds apart, at most four more times.
            retry = max(1.0, expiry_delay(self.seconds) / 8)
            self._handle = self._loop.call_later(retry, self._start_refresh)

    def _on_expired(self) -> None:
        self._deadline = None
        if not self.stopped:
            self.stop()
            self._expire()
