"""Writing events into the durable outbox (SPEC §7).

Call ``record_event`` inside the transaction of the change the event reports: the event
exists exactly when the change does, and the delivery worker sends it later, at least once.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from sautikit.db.models import Call, Event
from sautikit.events.kinds import EVENT_KINDS

__all__ = ["record_call_event", "record_event"]


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
    event = Event(
        workspace_id=workspace_id, kind=kind, data=data, call_id=call_id, target_url=target_url
    )
    session.add(event)
    await session.flush()
    return event


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
