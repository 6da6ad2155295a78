"""The retention sweep: recordings older than their workspace's retention days go (SPEC §5).

Each ``ready`` recording created more than ``Workspace.retention_days`` days before ``now``
is removed from its store and marked ``expired``; the API then answers
``calls.recording_expired`` (410) for it. The row stays, so the call's history still shows
that a recording existed. The object is deleted before the row changes: a crash between
the two leaves a ``ready`` row whose object is gone, which the next sweep marks expired
(deleting a missing object is not an error).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import select, update

from sautikit.db import Database
from sautikit.db.models import Recording, Workspace
from sautikit.db.types import rows_changed
from sautikit.recordings.stores import WorkspaceStores
from sautikit.storage import StorageError

__all__ = ["sweep_retention"]

log = logging.getLogger(__name__)

_BATCH: Final = 200


async def sweep_retention(database: Database, stores: WorkspaceStores, now: datetime) -> int:
    """Expire every recording past its workspace's retention; answer how many expired.

    A recording whose object cannot be deleted (the store is down) stays ``ready`` and is
    tried again by the next sweep.
    """
    async with database.transaction() as session:
        workspaces = (await session.scalars(select(Workspace).order_by(Workspace.id))).all()
    expired = 0
    for workspace in workspaces:
        cutoff = now - timedelta(days=workspace.retention_days)
        after_id = ""
        while True:
            async with database.transaction() as session:
                batch = (
                    await session.scalars(
                        select(Recording)
                        .where(
                            Recording.workspace_id == workspace.id,
                            Recording.status == "ready",
                            Recording.created_at < cutoff,
                            Recording.id > after_id,
                        )
                        .order_by(Recording.id)
                        .limit(_BATCH)
                    )
                ).all()
            if not batch:
                break
            after_id = batch[-1].id
            for recording in batch:
                if await _expire(database, stores, workspace, recording, now):
                    expired += 1
    return expired


async def _expire(
    database: Database,
    stores: WorkspaceStores,
    workspace: Workspace,
    recording: Recording,
    now: datetime,
) -> bool:
    try:
        if recording.storage_key is not None:
            await stores.for_workspace(workspace).delete(recording.storage_key)
    except StorageError as exc:
        log.warning("recording %s could not be removed for retention: %s", recording.id, exc)
        return False
    async with database.transaction() as session:
        changed = await session.execute(
            update(Recording)
            .where(Recording.id == recording.id, Recording.status == "ready")
            .values(status="expired", deleted_at=now)
        )
    return rows_changed(changed) > 0
