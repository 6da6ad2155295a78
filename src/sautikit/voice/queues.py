"""What a caller waiting in a queue hears, and what the apps of a queue are told.

The queue itself (its members in the database, FIFO across processes, the bridge with an
agent) is :mod:`sautikit.calls.queues`; the interpreter runs the ``enqueue`` and
``dequeue`` verbs over :class:`~sautikit.voice.control.CallControl` with what is here:

* :func:`hold_music`: what a caller hears with no ``waitUrl`` — a soft four-note figure
  and a pause, made here (nothing is downloaded), played on a loop.
* :func:`announcement`: the sentence that tells the caller their place and expected wait
  (``announcePosition``, ``announceWaitTime``), spoken every ``announceEvery`` seconds
  between stretches of hold music.
* :func:`standing_fields` / :func:`stay_fields` / :func:`dequeue_fields`: the request
  fields, named as Twilio names them (``QueuePosition``, ``QueueTime``, ``QueueResult`` …).
"""

from __future__ import annotations

import functools
from typing import Final

import numpy as np

from sautikit.media.player import silence, tone
from sautikit.voice.control import DequeueResult, Int16Array, QueueStanding, QueueStay

__all__ = [
    "WAIT_VERBS",
    "announcement",
    "dequeue_fields",
    "hold_music",
    "standing_fields",
    "stay_fields",
]

WAIT_VERBS: Final = ("say", "play", "pause", "redirect", "leave", "hangup")
"""The verbs a ``waitUrl`` document may use (as Twilio's wait URL); others are skipped
with an application error."""

_NOTES: Final = (392.0, 493.88, 587.33, 493.88)  # G4 B4 D5 B4


@functools.cache
def hold_music() -> Int16Array:
    """Four soft notes and a rest: about four seconds, meant to loop."""
    parts: list[Int16Array] = []
    for note in _NOTES:
        parts += [tone(note, 0.45, 0.12), silence(0.05)]
    parts.append(silence(2.0))
    music = np.concatenate(parts)
    music.setflags(write=False)
    return music


def _minutes(seconds: int) -> str:
    minutes = max(1, round(seconds / 60))
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


def announcement(standing: QueueStanding, *, position: bool, wait_time: bool) -> str | None:
    """The English sentence for the caller's place in the queue, or None for nothing."""
    parts = []
    if position:
        if standing.position == 1:
            parts.append("You are next in the queue.")
        else:
            parts.append(f"You are number {standing.position} in the queue.")
    if wait_time and standing.average_wait_seconds > 0:
        expected = standing.average_wait_seconds * standing.position
        parts.append(f"The expected wait is about {_minutes(expected)}.")
    return " ".join(parts) or None


def standing_fields(standing: QueueStanding) -> dict[str, str | int]:
    """What a ``waitUrl`` request carries besides the call's fields."""
    return {
        "QueueSid": standing.queue_id,
        "QueuePosition": standing.position,
        "QueueTime": standing.wait_seconds,
        "AvgQueueTime": standing.average_wait_seconds,
        "CurrentQueueSize": standing.size,
        "MaxQueueSize": standing.max_size,
    }


def stay_fields(queue_id: str, stay: QueueStay) -> dict[str, str | int]:
    """What an ``enqueue``'s ``action`` request carries: how the caller left the queue."""
    return {
        "QueueSid": queue_id,
        "QueueResult": stay.result,
        "QueueTime": stay.wait_seconds,
        "DequeuingCallId": stay.agent_call_id or "",
        "QueueCallDuration": stay.duration,
    }


def dequeue_fields(result: DequeueResult, *, as_dial: bool) -> dict[str, str | int]:
    """What a ``dequeue``'s (or a ``dial`` to a queue's) ``action`` request carries."""
    fields: dict[str, str | int] = {
        "DequeueResult": result.result,
        "DequeuedCallId": result.member_call_id or "",
        "QueueTime": result.wait_seconds,
        "QueueCallDuration": result.duration,
    }
    if as_dial:
        fields |= {
            "DialCallStatus": "completed" if result.result == "bridged" else "no_answer",
            "DialCallId": result.member_call_id or "",
            "DialCallDuration": result.duration,
        }
    return fields
