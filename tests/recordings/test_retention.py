"""The retention sweep: recordings past their workspace's retention days are removed."""

from __future__ import annotations

from datetime import timedelta

from tests.recordings.conftest import Rig
from tests.recordings.support import fake_call, write_spool

from sautikit.db.models import Recording, Workspace
from sautikit.db.types import utcnow
from sautikit.recordings.retention import sweep_retention
from sautikit.voice.control import RecordResult


async def _recording(rig: Rig, workspace_id: str) -> Recording:
    call_id = await rig.new_call(workspace_id)
    _, spool = await rig.pipeline.begin(call_id, workspace_id, "dial", channels=2)
    write_spool(spool, 1.0, channels=2)
    info = await rig.pipeline.recording_finished(
        fake_call(call_id, workspace_id),
        RecordResult(spool, 1.0, 2, "hangup"),
        source="dial",
        transcribe=False,
        transcribe_callback=None,
    )
    async with rig.database.transaction() as session:
        return await session.get_one(Recording, info.sid)


async def _status(rig: Rig, recording_id: str) -> str:
    async with rig.database.transaction() as session:
        return (await session.get_one(Recording, recording_id)).status


async def test_each_workspace_keeps_recordings_for_its_own_retention_days(rig: Rig) -> None:
    short_lived = await rig.new_workspace()
    async with rig.database.transaction() as session:
        (await session.get_one(Workspace, short_lived)).retention_days = 7
    kept = await _recording(rig, rig.workspace_id)  # 30 days, the default
    gone = await _recording(rig, short_lived)

    assert await sweep_retention(rig.database, rig.stores, utcnow() + timedelta(days=6)) == 0
    assert await sweep_retention(rig.database, rig.stores, utcnow() + timedelta(days=8)) == 1

    assert await _status(rig, gone.id) == "expired"
    assert not await rig.store.exists(gone.storage_key or "")
    assert await _status(rig, kept.id) == "ready"
    assert await rig.store.exists(kept.storage_key or "")
    assert await sweep_retention(rig.database, rig.stores, utcnow() + timedelta(days=31)) == 1
    assert await _status(rig, kept.id) == "expired"
