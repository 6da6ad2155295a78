"""``/v1/recordings`` and ``GET /v1/calls/{id}/recording`` on both database engines."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from urllib.parse import urlsplit

import httpx
import pytest
from tests.recordings.support import fake_call, write_spool
from tests.support import KeyFactory

from sautikit.config import Settings
from sautikit.db import Database
from sautikit.db.models import Call
from sautikit.db.types import utcnow
from sautikit.recordings.pipeline import RecordingPipeline, signed_app_clients
from sautikit.recordings.retention import sweep_retention
from sautikit.recordings.stores import WorkspaceStores
from sautikit.recordings.transcription import Transcript, Word
from sautikit.recordings.worker import TranscriptionWorker
from sautikit.storage import open_store
from sautikit.voice.control import RecordResult


@pytest.fixture
async def stores(settings: Settings) -> AsyncIterator[WorkspaceStores]:
    # The same directory the API's own store (tests/conftest.py) serves from.
    store = open_store(settings)
    yield WorkspaceStores(settings, store)
    await store.close()


@pytest.fixture
async def pipeline(
    database: Database, settings: Settings, stores: WorkspaceStores
) -> AsyncIterator[RecordingPipeline]:
    async with httpx.AsyncClient() as http:
        yield RecordingPipeline(database, settings, stores, signed_app_clients(database, http))


async def _call(database: Database, workspace_id: str) -> str:
    async with database.transaction() as session:
        call = Call(
            workspace_id=workspace_id,
            direction="inbound",
            from_number="+254700000001",
            to_number="+254722000001",
            status="completed",
        )
        session.add(call)
        await session.flush()
        return call.id


async def _recording(
    pipeline: RecordingPipeline, call_id: str, workspace_id: str, *, transcribe: bool = False
) -> str:
    _, spool = await pipeline.begin(call_id, workspace_id, "record", transcribe=transcribe)
    write_spool(spool, 1.0)
    info = await pipeline.recording_finished(
        fake_call(call_id, workspace_id),
        RecordResult(spool, 1.0, 1, "silence"),
        source="record",
        transcribe=transcribe,
        transcribe_callback=None,
    )
    return info.sid


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


async def test_call_recording_redirects_to_a_url_that_needs_no_key(
    client: httpx.AsyncClient, make_key: KeyFactory, database: Database, pipeline: RecordingPipeline
) -> None:
    workspace_id, headers = await make_key(["recordings.read"])
    call_id = await _call(database, workspace_id)
    await _recording(pipeline, call_id, workspace_id)
    latest = await _recording(pipeline, call_id, workspace_id)

    answer = await client.get(f"/v1/calls/{call_id}/recording", headers=headers)

    assert answer.status_code == 302
    location = answer.headers["location"]
    assert latest in location
    download = await client.get(_path(location))  # no Authorization header
    assert download.status_code == 200 and download.content[:4] == b"RIFF"
    meta = (await client.get(f"/v1/recordings/{latest}", headers=headers)).json()
    assert meta["size_bytes"] == len(download.content)


async def test_call_recording_errors(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    database: Database,
    pipeline: RecordingPipeline,
    stores: WorkspaceStores,
) -> None:
    workspace_id, headers = await make_key(["recordings.read"])
    other_id, _ = await make_key(["recordings.read"])
    bare = await _call(database, workspace_id)
    theirs = await _call(database, other_id)
    await _recording(pipeline, theirs, other_id)
    expiring = await _call(database, workspace_id)
    await _recording(pipeline, expiring, workspace_id)

    missing = await client.get(f"/v1/calls/{bare}/recording", headers=headers)
    foreign = await client.get(f"/v1/calls/{theirs}/recording", headers=headers)
    await sweep_retention(database, stores, utcnow() + timedelta(days=31))
    expired = await client.get(f"/v1/calls/{expiring}/recording", headers=headers)

    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "calls.recording_not_found"
    assert foreign.status_code == 404 and foreign.json()["error"]["code"] == "calls.not_found"
    assert expired.status_code == 410
    assert expired.json()["error"]["code"] == "calls.recording_expired"
    assert expired.json()["error"]["request_id"] == expired.headers["x-request-id"]


async def test_listing_pages_filters_and_stays_in_the_workspace(
    client: httpx.AsyncClient, make_key: KeyFactory, database: Database, pipeline: RecordingPipeline
) -> None:
    workspace_id, headers = await make_key(["recordings.read"])
    other_id, _ = await make_key()
    first_call = await _call(database, workspace_id)
    second_call = await _call(database, workspace_id)
    oldest = await _recording(pipeline, first_call, workspace_id)
    newest = await _recording(pipeline, second_call, workspace_id)
    await _recording(pipeline, await _call(database, other_id), other_id)

    page = (await client.get("/v1/recordings?limit=1", headers=headers)).json()
    rest = (
        await client.get(f"/v1/recordings?limit=1&cursor={page['next_cursor']}", headers=headers)
    ).json()
    by_call = (await client.get(f"/v1/recordings?call_id={first_call}", headers=headers)).json()
    empty = (await client.get("/v1/recordings?status=deleted", headers=headers)).json()
    bad = await client.get("/v1/recordings?status=lost", headers=headers)

    assert [item["id"] for item in page["data"]] == [newest]
    assert [item["id"] for item in rest["data"]] == [oldest] and rest["next_cursor"] is None
    assert [item["id"] for item in by_call["data"]] == [oldest]
    assert empty["data"] == []
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "validation.invalid_field"


async def test_one_recording_has_the_spec_fields_and_a_fresh_url(
    client: httpx.AsyncClient, make_key: KeyFactory, database: Database, pipeline: RecordingPipeline
) -> None:
    workspace_id, headers = await make_key(["recordings.read"])
    _, other_headers = await make_key(["recordings.read"])
    call_id = await _call(database, workspace_id)
    recording_id = await _recording(pipeline, call_id, workspace_id)

    body = (await client.get(f"/v1/recordings/{recording_id}", headers=headers)).json()
    foreign = await client.get(f"/v1/recordings/{recording_id}", headers=other_headers)

    assert {
        key: body[key]
        for key in ("id", "call_id", "source", "status", "duration_seconds", "channels", "format")
    } == {
        "id": recording_id,
        "call_id": call_id,
        "source": "record",
        "status": "ready",
        "duration_seconds": 1,
        "channels": 1,
        "format": "wav",
    }
    assert len(body["sha256"]) == 64 and body["size_bytes"] == 44 + 16000
    assert body["storage_key"].endswith(f"{recording_id}.wav") and body["created_at"]
    download = await client.get(_path(body["download_url"]))
    assert download.status_code == 200 and len(download.content) == body["size_bytes"]
    assert foreign.status_code == 404
    assert foreign.json()["error"]["code"] == "recordings.not_found"


async def test_delete_removes_the_object_and_needs_the_write_scope(
    client: httpx.AsyncClient, make_key: KeyFactory, database: Database, pipeline: RecordingPipeline
) -> None:
    workspace_id, headers = await make_key(["recordings.read", "recordings.write"])
    _, reader = await make_key(["recordings.read"], workspace_id=workspace_id)
    call_id = await _call(database, workspace_id)
    recording_id = await _recording(pipeline, call_id, workspace_id)
    url = (await client.get(f"/v1/recordings/{recording_id}", headers=headers)).json()[
        "download_url"
    ]

    denied = await client.delete(f"/v1/recordings/{recording_id}", headers=reader)
    deleted = await client.delete(f"/v1/recordings/{recording_id}", headers=headers)
    again = await client.delete(f"/v1/recordings/{recording_id}", headers=headers)

    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "api_key.scope_denied"
    assert deleted.status_code == 200 and deleted.json()["status"] == "deleted"
    assert deleted.json()["download_url"] is None
    assert again.status_code == 200
    assert (await client.get(_path(url))).status_code == 404
    gone = await client.get(f"/v1/calls/{call_id}/recording", headers=headers)
    assert gone.json()["error"]["code"] == "calls.recording_not_found"


async def test_transcription_is_served_once_asked_for(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    database: Database,
    settings: Settings,
    pipeline: RecordingPipeline,
    stores: WorkspaceStores,
) -> None:
    workspace_id, headers = await make_key(["recordings.read"])
    call_id = await _call(database, workspace_id)
    plain = await _recording(pipeline, call_id, workspace_id)
    asked = await _recording(pipeline, call_id, workspace_id, transcribe=True)

    class Engine:
        name = "fixed"

        def load(self) -> None:
            pass

        def transcribe(self, samples: object, *, sample_rate: int = 8000) -> Transcript:
            return Transcript("hello there", "en", 1.0, self.name, (Word("hello", 0.1, 0.4, 0.9),))

    queued = (await client.get(f"/v1/recordings/{asked}/transcription", headers=headers)).json()
    free = settings.model_copy(update={"default_transcription_rate_minor": 0})
    worker = TranscriptionWorker(database, free, stores, engine=Engine())
    await worker.run_pending()
    done = (await client.get(f"/v1/recordings/{asked}/transcription", headers=headers)).json()
    none = await client.get(f"/v1/recordings/{plain}/transcription", headers=headers)

    assert queued["status"] == "queued" and queued["text"] is None
    assert (done["status"], done["text"], done["engine"]) == ("completed", "hello there", "fixed")
    assert none.status_code == 404
    assert none.json()["error"]["code"] == "recordings.transcription_not_found"
    by_id = await client.get(f"/v1/transcripts/{done['id']}", headers=headers)
    assert by_id.status_code == 200 and by_id.json() == done
    assert done["language"] == "en"
    assert done["channels"] == [
        {
            "channel": 0,
            "speaker": None,
            "text": "hello there",
            "words": [{"word": "hello", "start": 0.1, "end": 0.4, "confidence": 0.9}],
        }
    ]
    missing = await client.get("/v1/transcripts/nope", headers=headers)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "transcripts.not_found"
    _, stranger = await make_key(["recordings.read"])
    hidden = await client.get(f"/v1/transcripts/{done['id']}", headers=stranger)
    assert hidden.status_code == 404
