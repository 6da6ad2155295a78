"""A call's status (SPEC §4) and the one table of the changes it may make.

``queued`` → ``ringing`` → ``answered`` → ``completed``, or from before the answer to one
of ``busy``, ``no_answer``, ``failed``, ``canceled``. The values are
:class:`~sautikit.voice.control.CallStatus` (defined beside the other SPEC §4 vocabulary
there, so the interpreter and ``LiveCall`` use it without importing ``calls``; it is
re-exported here). Only ``completed`` calls were
answered and billed. The table is the state machine; :func:`advance` is the only writer of
``Call.status`` after a row is created, and a change the table does not list raises
:class:`IllegalTransition` — a bug in Sautikit, never something a caller can cause.
"""

from __future__ import annotations

from sautikit.db.models import Call
from sautikit.voice.control import CallStatus

__all__ = [
    "ENDED_STATUSES",
    "LIVE_STATUSES",
    "TRANSITIONS",
    "CallStatus",
    "IllegalTransition",
    "advance",
    "can_advance",
    "status_for_unanswered",
]


_UNANSWERED_ENDS = frozenset(
    {CallStatus.BUSY, CallStatus.NO_ANSWER, CallStatus.FAILED, CallStatus.CANCELED}
)

TRANSITIONS: dict[CallStatus, frozenset[CallStatus]] = {
    CallStatus.QUEUED: frozenset({CallStatus.RINGING, CallStatus.ANSWERED}) | _UNANSWERED_ENDS,
    CallStatus.RINGING: frozenset({CallStatus.ANSWERED}) | _UNANSWERED_ENDS,
    CallStatus.ANSWERED: frozenset({CallStatus.COMPLETED}),
    CallStatus.COMPLETED: frozenset(),
    CallStatus.BUSY: frozenset(),
    CallStatus.NO_ANSWER: frozenset(),
    CallStatus.FAILED: frozenset(),
    CallStatus.CANCELED: frozenset(),
}
"""Every status a call may move to from each status; terminal statuses move nowhere."""

LIVE_STATUSES: tuple[CallStatus, ...] = (
    CallStatus.QUEUED,
    CallStatus.RINGING,
    CallStatus.ANSWERED,
)
"""Calls that hold a line (they count against ``max_concurrent_calls``)."""

ENDED_STATUSES: tuple[CallStatus, ...] = tuple(s for s in CallStatus if not TRANSITIONS[s])

# SPEC §4: a call that never answered ends in one of these, by its hangup cause.
_UNANSWERED_STATUS = {
    "busy": CallStatus.BUSY,
    "no_answer": CallStatus.NO_ANSWER,
    "caller_hangup": CallStatus.CANCELED,
    "rejected": CallStatus.FAILED,
}


class IllegalTransition(RuntimeError):
    """A status change the table does not allow was attempted."""


def status_for_unanswered(cause: str) -> CallStatus:
    """The status an unanswered call ends in, by its hangup cause."""
    return _UNANSWERED_STATUS.get(cause, CallStatus.FAILED)


def can_advance(current: str, new: CallStatus) -> bool:
    """Whether a call in ``current`` may move to ``new``."""
    return new in TRANSITIONS[CallStatus(current)]


def advance(call: Call, new: CallStatus) -> None:
    """Move ``call`` to ``new``; raises :class:`IllegalTransition` if the table forbids it."""
    if not can_advance(call.status, new):
        raise IllegalTransition(f"call {call.id}: {call.status} → {new} is not a legal change")
    call.status = new
