"""The recording lifecycle on the local store: spool → finalise → upload → row → event."""

from __future__ import annotations

import hashlib
import wave
from datetime import UTC, datetime, timedelta
from io import BytesIO
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import select
from tests.recordings.conftest import Rig
from tests.recordings.support import fake_call, write_spool

from sautikit.api import create_api
from sautikit.db.models import Event, Recording, Transcription, Workspace
from sautikit.voice.callbacks import AppRequestError
from sautikit.voice.control import RecordingInfo, RecordResult


async def _events(rig: Rig, kind: str = "call.recording.ready") -> list[Event]:
    async with rig.database.transaction() as session:
        return list((await session.scalars(select(Event).where(Event.kind == kind))).all())


async def _row(rig: Rig, recording_id: str) -> Recording:
    async with rig.database.transaction() as session:
        return await session.get_one(Recording, recording_id)


async def _download(rig: Rig, url: str) -> httpx.Response:
    """Fetch a local-store URL through Sautikit's own route, with no API key."""
    api = create_api(rig.settings, rig.database, rig.store)
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url="http://sautikit.test") as http:
        parts = urlsplit(url)
        return await http.get(f"{parts.path}?{parts.query}")


async def _record(rig: Rig, seconds: float = 3.0, **begin: Any) -> tuple[str, str, RecordingInfo]:
    call_id = await rig.new_call()
    recording_id, spool = await rig.pipeline.begin(call_id, rig.workspace_id, "record", **begin)
    write_spool(spool, seconds)
    result = RecordResult(spool, seconds, 1, "silence")
    info = await rig.pipeline.recording_finished(
        fake_call(call_id, rig.workspace_id),
        result,
        source="record",
        transcribe=bool(begin.get("transcribe", False)),
        transcribe_callback=None,
    )
    return call_id, recording_id, info


async def test_a_recording_becomes_a_stored_object_a_row_and_one_event(rig: Rig) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    call_id, recording_id, info = await _record(rig, 3.0, action_url=rig.app.url)

    row = await _row(rig, recording_id)
    stored = await rig.store.get_bytes(row.storage_key or "")
    assert row.status == "ready"
    assert (row.duration_seconds, row.channels, row.format) == (3, 1, "wav")
    assert row.storage_key == f"recordings/{rig.workspace_id}/{call_id}/{recording_id}.wav"
    assert row.size_bytes == len(stored) == 44 + 3 * 8000 * 2
    assert row.sha256 == hashlib.sha256(stored).hexdigest()
    assert not (rig.pipeline.spool_dir / f"{recording_id}.wav").exists()

    assert info.sid == recording_id and info.duration == 3 and info.channels == 1
    (event,) = await _events(rig)
    assert event.call_id == call_id and event.target_url == rig.app.url
    assert event.data["recording_id"] == recording_id
    assert event.data["sha256"] == row.sha256
    expires_at = datetime.fromisoformat(event.data["expires_at"])
    assert before + timedelta(minutes=15) <= expires_at <= datetime.now(UTC) + timedelta(minutes=15)

    download = await _download(rig, event.data["download_url"])
    assert download.status_code == 200
    assert download.content == stored
    assert download.headers["content-type"] == "audio/wav"
    assert info.url == event.data["download_url"]


async def test_mark_callback_sent_is_kept_once(rig: Rig) -> None:
    _, recording_id, _ = await _record(rig, 1.0, action_url=rig.app.url)

    await rig.pipeline.mark_callback_sent(recording_id)
    first = (await _row(rig, recording_id)).callback_sent_at
    await rig.pipeline.mark_callback_sent(recording_id)

    assert first is not None
    assert (await _row(rig, recording_id)).callback_sent_at == first


async def test_a_dial_recording_without_begin_is_stored_with_two_channels(rig: Rig) -> None:
    call_id = await rig.new_call()
    spool = rig.settings.data_dir / "elsewhere.wav"
    spool.parent.mkdir(parents=True, exist_ok=True)
    write_spool(spool, 2.0, channels=2)

    info = await rig.pipeline.recording_finished(
        fake_call(call_id, rig.workspace_id),
        RecordResult(spool, 2.0, 2, "hangup"),
        source="dial",
        transcribe=False,
        transcribe_callback=None,
    )

    row = await _row(rig, info.sid)
    assert (row.source, row.channels, row.status, row.action_url) == ("dial", 2, "ready", None)
    with wave.open(BytesIO(await rig.store.get_bytes(row.storage_key or ""))) as reader:
        assert (reader.getnchannels(), reader.getnframes()) == (2, 16000)


async def test_mp3_when_the_workspace_asks(rig: Rig) -> None:
    async with rig.database.transaction() as session:
        (await session.get_one(Workspace, rig.workspace_id)).recording_format = "mp3"

    _call_id, recording_id, info = await _record(rig, 2.0)

    row = await _row(rig, recording_id)
    stored = await rig.store.get_bytes(row.storage_key or "")
    assert row.format == "mp3" and (row.storage_key or "").endswith(f"{recording_id}.mp3")
    assert row.sha256 == hashlib.sha256(stored).hexdigest()
    download = await _download(rig, info.url)
    assert download.headers["content-type"] == "audio/mpeg"
    assert download.content == stored


async def test_trim_silence_keeps_only_the_speech(rig: Rig) -> None:
    call_id = await rig.new_call()
    recording_id, spool = await rig.pipeline.begin(call_id, rig.workspace_id, "record", trim=True)
    write_spool(spool, 2.0, lead_silence=2.0, tail_silence=4.0)

    info = await rig.pipeline.recording_finished(
        fake_call(call_id, rig.workspace_id),
        RecordResult(spool, 8.0, 1, "silence"),
        source="record",
        transcribe=False,
        transcribe_callback=None,
    )

    assert info.duration == 2
    assert (await _row(rig, recording_id)).duration_seconds == 2


async def test_an_empty_recording_stores_nothing(rig: Rig) -> None:
    call_id = await rig.new_call()
    recording_id, spool = await rig.pipeline.begin(call_id, rig.workspace_id, "record")
    write_spool(spool, 0.0)

    await rig.pipeline.discard(RecordResult(spool, 0.0, 1, "silence", empty=True))

    row = await _row(rig, recording_id)
    assert (row.status, row.storage_key) == ("empty", None)
    assert not spool.exists()
    assert await _events(rig) == []


async def test_transcribe_queues_a_job_with_the_ready_row(rig: Rig) -> None:
    woken: list[bool] = []
    rig.pipeline.on_transcription_queued = lambda: woken.append(True)

    _, recording_id, _ = await _record(rig, 1.0, transcribe=True)

    async with rig.database.transaction() as session:
        job = await session.scalar(
            select(Transcription).where(Transcription.recording_id == recording_id)
        )
    assert job is not None and job.status == "queued"
    assert woken == [True]


async def test_a_spool_that_is_not_audio_fails_and_is_kept(rig: Rig) -> None:
    call_id = await rig.new_call()
    recording_id, spool = await rig.pipeline.begin(call_id, rig.workspace_id, "record")
    spool.write_bytes(b"not a wav at all")

    info = await rig.pipeline.recording_finished(
        fake_call(call_id, rig.workspace_id),
        RecordResult(spool, 1.0, 1, "silence"),
        source="record",
        transcribe=False,
        transcribe_callback=None,
    )

    assert info.url == ""
    assert (await _row(rig, recording_id)).status == "failed"
    assert spool.exists()


async def test_storing_twice_writes_one_event_and_one_object(rig: Rig) -> None:
    _, recording_id, _ = await _record(rig, 1.0)

    again = await rig.pipeline.store(recording_id)

    assert again.status == "ready" and not again.event_written
    assert again.info.url.startswith("http")
    assert len(await _events(rig)) == 1


async def test_begin_refuses_other_channel_counts(rig: Rig) -> None:
    with pytest.raises(ValueError, match="mono or two-channel"):
        await rig.pipeline.begin("x", rig.workspace_id, "record", channels=3)


async def test_the_interpreters_client_marks_a_delivered_record_callback(rig: Rig) -> None:
    _, recording_id, info = await _record(rig, 1.0, action_url=rig.app.url)
    client = await rig.pipeline.app_client(rig.workspace_id, rig.http)
    fields = {"CallId": "c", "RecordingSid": recording_id, "RecordingUrl": info.url}

    unreachable = await client.notify("http://127.0.0.1:9/hook", fields)
    unmarked = (await _row(rig, recording_id)).callback_sent_at
    with pytest.raises(AppRequestError, match="not JSON"):  # the app got it, answered junk
        await client.fetch_actions(rig.app.url, "POST", fields)

    assert not unreachable and unmarked is None
    assert (await _row(rig, recording_id)).callback_sent_at is not None
