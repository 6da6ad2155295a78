"""The recording lifecycle against a real S3 server (SeaweedFS on loopback): the operator's
bucket, a workspace's own bucket with encrypted credentials, and the seed's flow."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import select
from tests.recordings.conftest import Rig
from tests.recordings.support import fake_call, write_spool
from tests.storage.conftest import S3Server

from sautikit.crypto import encrypt_secret
from sautikit.db.models import Event, Recording, Workspace
from sautikit.recordings.pipeline import RecordingPipeline, signed_app_clients
from sautikit.recordings.stores import WorkspaceStores
from sautikit.storage import open_store
from sautikit.voice.control import RecordingInfo, RecordResult


@pytest.fixture
def prefix() -> str:
    return f"r{secrets.token_hex(6)}"


@pytest.fixture
async def s3_pipeline(
    rig: Rig, s3_server: S3Server, prefix: str
) -> AsyncIterator[RecordingPipeline]:
    """The rig's pipeline, but with the operator's store on SeaweedFS."""
    operator = open_store(s3_server.url(prefix))
    stores = WorkspaceStores(rig.settings, operator)
    yield RecordingPipeline(
        rig.database, rig.settings, stores, signed_app_clients(rig.database, rig.http)
    )
    await stores.close()
    await operator.close()


async def _record(rig: Rig, pipeline: RecordingPipeline, seconds: float) -> RecordingInfo:
    call_id = await rig.new_call()
    _, spool = await pipeline.begin(call_id, rig.workspace_id, "record", action_url=rig.app.url)
    write_spool(spool, seconds)
    return await pipeline.recording_finished(
        fake_call(call_id, rig.workspace_id),
        RecordResult(spool, seconds, 1, "silence"),
        source="record",
        transcribe=False,
        transcribe_callback=None,
    )


async def _row(rig: Rig, recording_id: str) -> Recording:
    async with rig.database.transaction() as session:
        return await session.get_one(Recording, recording_id)


async def test_lifecycle_on_s3_with_a_sigv4_presigned_url(
    rig: Rig, s3_pipeline: RecordingPipeline, s3_server: S3Server, prefix: str
) -> None:
    info = await _record(rig, s3_pipeline, 2.0)

    row = await _row(rig, info.sid)
    stored = (
        s3_server.client()
        .get_object(Bucket=s3_server.bucket, Key=f"{prefix}/{row.storage_key}")["Body"]
        .read()
    )
    assert row.status == "ready" and row.sha256 == hashlib.sha256(stored).hexdigest()
    assert "X-Amz-Signature=" in info.url
    async with rig.database.transaction() as session:
        event = await session.scalar(select(Event).where(Event.kind == "call.recording.ready"))
    assert event is not None and event.data["download_url"] == info.url
    async with httpx.AsyncClient() as http:
        download = await http.get(info.url)
    assert download.status_code == 200 and download.content == stored


async def test_the_seed_flow_copies_the_recording_into_the_apps_bucket(
    rig: Rig, s3_pipeline: RecordingPipeline, s3_server: S3Server
) -> None:
    info = await _record(rig, s3_pipeline, 1.0)
    call_id = (await _row(rig, info.sid)).call_id

    # The app's /voicemail/recording handler: fetch RecordingUrl, put it in its own bucket.
    async with httpx.AsyncClient() as http:
        audio = (await http.get(info.url)).content
    app_s3 = s3_server.client(s3_server.app)
    key = f"voicemails/{call_id}/{info.sid}.wav"
    app_s3.put_object(
        Bucket=s3_server.app_bucket,
        Key=key,
        Body=audio,
        ContentType="audio/wav",
        Metadata={"callId": call_id, "duration": str(info.duration)},
    )

    copy = app_s3.get_object(Bucket=s3_server.app_bucket, Key=key)
    assert copy["Body"].read() == audio
    assert audio[:4] == b"RIFF"
    assert copy["Metadata"] == {"callid": call_id, "duration": "1"}


async def test_a_workspace_with_its_own_bucket_gets_its_recordings_there(
    rig: Rig, s3_server: S3Server, prefix: str
) -> None:
    # The operator's store stays local; the workspace names a bucket and sealed keys.
    credentials = {
        "access_key": s3_server.sautikit.access_key,
        "secret_key": s3_server.sautikit.secret_key,
    }
    async with rig.database.transaction() as session:
        workspace = await session.get_one(Workspace, rig.workspace_id)
        workspace.storage_url = s3_server.url(prefix, credentials=False)
        workspace.storage_credentials = encrypt_secret(
            json.dumps(credentials), rig.settings.signing_key(), context=workspace.id
        )

    info = await _record(rig, rig.pipeline, 1.0)

    row = await _row(rig, info.sid)
    head = s3_server.client().head_object(
        Bucket=s3_server.bucket, Key=f"{prefix}/{row.storage_key}"
    )
    assert head["ContentLength"] == row.size_bytes
    assert not await rig.store.exists(row.storage_key or "")
    assert "X-Amz-Signature=" in info.url


async def test_credentials_sealed_for_another_workspace_are_not_used(
    rig: Rig, s3_server: S3Server, prefix: str
) -> None:
    async with rig.database.transaction() as session:
        workspace = await session.get_one(Workspace, rig.workspace_id)
        workspace.storage_url = s3_server.url(prefix, credentials=False)
        workspace.storage_credentials = encrypt_secret(
            json.dumps({"access_key": "a", "secret_key": "b"}),
            rig.settings.signing_key(),
            context="another-workspace",
        )

    info = await _record(rig, rig.pipeline, 1.0)

    row = await _row(rig, info.sid)
    assert info.url == ""
    assert row.status == "uploading"  # kept with its spool for a later retry
    assert (rig.pipeline.spool_dir / f"{row.id}.wav").exists()
