"""The call status machine (SPEC §4): the table allows exactly the documented changes."""

from __future__ import annotations

import pytest

from sautikit.calls.status import (
    ENDED_STATUSES,
    LIVE_STATUSES,
    TRANSITIONS,
    CallStatus,
    IllegalTransition,
    advance,
    status_for_unanswered,
)
from sautikit.db.models import Call


def _call(status: CallStatus) -> Call:
    return Call(id="c1", status=status)


def test_the_happy_path_is_queued_ringing_answered_completed() -> None:
    call = _call(CallStatus.QUEUED)
    for step in (CallStatus.RINGING, CallStatus.ANSWERED, CallStatus.COMPLETED):
        advance(call, step)
        assert call.status == step


@pytest.mark.parametrize(
    ("start", "illegal"),
    [
        (CallStatus.COMPLETED, CallStatus.ANSWERED),  # an ended call never comes back
        (CallStatus.ANSWERED, CallStatus.RINGING),
        (CallStatus.ANSWERED, CallStatus.NO_ANSWER),  # an answered call only completes
        (CallStatus.QUEUED, CallStatus.COMPLETED),  # completed means it was answered
        (CallStatus.FAILED, CallStatus.COMPLETED),
        (CallStatus.CANCELED, CallStatus.RINGING),
    ],
)
def test_an_illegal_change_raises_and_leaves_the_status(
    start: CallStatus, illegal: CallStatus
) -> None:
    call = _call(start)
    with pytest.raises(IllegalTransition, match=f"{start} → {illegal}"):
        advance(call, illegal)
    assert call.status == start


def test_only_answered_calls_complete_and_ended_statuses_are_terminal() -> None:
    assert {s for s, nexts in TRANSITIONS.items() if CallStatus.COMPLETED in nexts} == {
        CallStatus.ANSWERED
    }
    assert set(LIVE_STATUSES) | set(ENDED_STATUSES) == set(CallStatus)
    assert all(not TRANSITIONS[s] for s in ENDED_STATUSES)


@pytest.mark.parametrize(
    ("cause", "status"),
    [
        ("busy", CallStatus.BUSY),
        ("no_answer", CallStatus.NO_ANSWER),
        ("caller_hangup", CallStatus.CANCELED),
        ("rejected", CallStatus.FAILED),
        ("network_error", CallStatus.FAILED),
    ],
)
def test_an_unanswered_call_ends_in_the_status_of_its_cause(cause: str, status: CallStatus) -> None:
    assert status_for_unanswered(cause) == status
    assert status in TRANSITIONS[CallStatus.RINGING]


def test_every_status_source_speaks_the_one_enum() -> None:
    """The interpreter's LiveCall (voice) and the rows (calls) share one CallStatus, and
    what a live call reports as it goes (ringing, answered, then completed or failed) is
    a path the table allows."""
    from sautikit.voice import control  # imported here: the test is about the re-export

    assert control.CallStatus is CallStatus
    assert CallStatus.ANSWERED in TRANSITIONS[CallStatus.RINGING]
    assert CallStatus.COMPLETED in TRANSITIONS[CallStatus.ANSWERED]
    assert CallStatus.FAILED in TRANSITIONS[CallStatus.RINGING]
