"""Writing events into the durable outbox (SPEC §7).

Call ``record_event`` inside the transaction of the change the event reports: the event
exists exactly when the change does, and the delivery worker sends it later, at least once.

An event about a call names the call ``call_id`` in its data and carries the call's next
``sequence`` (1, 2, 3 …), taken by incrementing ``calls.event_sequence`` with an UPDATE: the
row lock it holds until commit makes concurrent writers for one call take turns, so the
numbers are unique, gapless and in commit order. The delivery worker sends one call's
events to each receiver in that order.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, insert, update
from sqlalchemy.ext.asyncio import AsyncSession

from sautikit.db.models import Call, Event
from sautikit.db.types import utcnow
from sautikit.events.kinds import EVENT_KINDS
from sautikit.ids import new_id

__all__ = ["record_call_event", "record_event"]

_NEXT_SEQUENCE = (
    update(Call)
    .where(Call.id == bindparam("sequence_of"))
    .values(event_sequence=Call.event_sequence + 1)
    .returning(Call.event_sequence)
)
_NEW_EVENT = insert(Event)


async def record_event(
    session: AsyncSession,
    *,
    workspace_id: str,
    kind: str,
    data: dict[str, Any],
    call_id: str | None = None,
    target_url: str | None = None,
) -> Event:
    """Add an event to the outbox in ``session``'s transaction; ``target_url`` is the
    call's or number's ``events_url``, delivered to in addition to matching subscriptions."""
    if kind not in EVENT_KINDS:
        raise ValueError(f"unknown event kind {kind!r}")
    # The change the event reports is written first (the call's row, for its sequence);
    # then both statements run on the session's connection, built once: every call
    # writes several events, and the ORM's path costs several times SQLite's work.
    await session.flush()
    connection = await session.connection()
    sequence: int | None = None
    if call_id is not None:
        sequence = (await connection.execute(_NEXT_SEQUENCE, {"sequence_of": call_id})).scalar()
        if sequence is None:
            raise LookupError(f"no call {call_id}")
        # One name for the call in every event (SPEC §7): call_data's "id" becomes call_id.
        named = {name: value for name, value in data.items() if name != "id" or value != call_id}
        data = {"call_id": call_id, **named, "sequence": sequence}
    values = {
        "id": new_id(),
        "workspace_id": workspace_id,
        "kind": kind,
        "data": data,
        "call_id": call_id,
        "target_url": target_url,
        "sequence": sequence,
        "occurred_at": utcnow(),
        "dispatched_at": None,
    }
    await connection.execute(_NEW_EVENT, values)
    return Event(**values)  # as written; not in the session (nothing more to flush)


async def record_call_event(
    session: AsyncSession, *, call_id: str, kind: str, data: dict[str, Any]
) -> Event:
    """An event about a call, sent to the call's ``events_url`` as well as subscriptions."""
    call = await session.get(Call, call_id)
    if call is None:
        raise LookupError(f"no call {call_id}")
    return await record_event(
        session,
        workspace_id=call.workspace_id,
        kind=kind,
        data=data,
        call_id=call.id,
        target_url=call.events_url,
    )
