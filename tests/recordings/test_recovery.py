"""Crash safety: a real Sautikit process is SIGKILLed while recording and while uploading;
recovery then stores each recording once, writes one event and posts one callback."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from tests.recordings.conftest import Rig

from sautikit.db.models import Event, Recording
from sautikit.recordings.recovery import recover_recordings

CHILD = Path(__file__).with_name("crash_child.py")


async def _search_path(rig: Rig) -> str:
    if rig.database.is_sqlite:
        return ""
    async with rig.database.engine.connect() as connection:
        return str((await connection.execute(text("SHOW search_path"))).scalar())


async def _kill_when(rig: Rig, mode: str, call_id: str) -> str:
    """Run the child until it prints its cue, SIGKILL it, answer the recording id."""
    command = [
        sys.executable,
        str(CHILD),
        mode,
        rig.database.url.render_as_string(hide_password=False),
        await _search_path(rig),
        str(rig.settings.data_dir),
        rig.workspace_id,
        call_id,
        rig.app.url,
    ]
    env = os.environ | {"PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    child = await asyncio.create_subprocess_exec(
        *command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    try:
        assert child.stdout is not None and child.stderr is not None
        async with asyncio.timeout(60):
            cue = (await child.stdout.readline()).decode().split()
        expected = "recording" if mode == "recording" else "uploaded"
        if not cue or cue[0] != expected:
            child.kill()
            pytest.fail(f"the child failed: {(await child.stderr.read()).decode()[-2000:]}")
    finally:
        if child.returncode is None:
            child.send_signal(signal.SIGKILL)
        await child.wait()
    assert child.returncode == -signal.SIGKILL
    return cue[1]


async def _row(rig: Rig, recording_id: str) -> Recording:
    async with rig.database.transaction() as session:
        return await session.get_one(Recording, recording_id)


async def _event_count(rig: Rig) -> int:
    async with rig.database.transaction() as session:
        return int(
            await session.scalar(select(func.count()).where(Event.kind == "call.recording.ready"))
            or 0
        )


def _objects(rig: Rig, call_id: str) -> list[Path]:
    folder = rig.settings.data_dir / "objects" / "recordings" / rig.workspace_id / call_id
    return sorted(folder.iterdir()) if folder.exists() else []


@pytest.mark.parametrize("mode", ["recording", "uploading"])
async def test_sigkill_loses_nothing_and_duplicates_nothing(rig: Rig, mode: str) -> None:
    call_id = await rig.new_call()
    recording_id = await _kill_when(rig, mode, call_id)
    before = await _row(rig, recording_id)
    assert before.status == mode
    assert await _event_count(rig) == 0

    report = await recover_recordings(rig.pipeline)
    again = await recover_recordings(rig.pipeline)

    row = await _row(rig, recording_id)
    assert report.stored == [recording_id] and report.callbacks_sent == [recording_id]
    assert again.stored == [] and again.callbacks_sent == []
    assert row.status == "ready" and row.callback_sent_at is not None
    assert row.duration_seconds is not None and row.duration_seconds >= 2
    stored = _objects(rig, call_id)
    assert [path.name for path in stored] == [f"{recording_id}.wav"]
    assert stored[0].stat().st_size == row.size_bytes
    assert await _event_count(rig) == 1
    assert not await asyncio.to_thread(Path(row.spool_path or "").exists)

    (callback,) = [request for request in rig.app.received if request.method == "POST"]
    assert callback.headers["content-type"] == "application/x-www-form-urlencoded"
    fields = callback.fields
    assert fields["RecordingSid"] == recording_id
    assert fields["CallId"] == call_id
    assert fields["RecordingDuration"] == str(row.duration_seconds)
    assert fields["RecordingChannels"] == "1"
    assert fields["RecordingUrl"].startswith("http")
    assert "x-sautikit-signature" in callback.headers


async def test_a_row_whose_spool_never_reached_the_disk_is_marked_failed(rig: Rig) -> None:
    call_id = await rig.new_call()
    recording_id, _ = await rig.pipeline.begin(call_id, rig.workspace_id, "record")

    report = await recover_recordings(rig.pipeline)

    assert report.failed == [recording_id]
    assert (await _row(rig, recording_id)).status == "failed"
