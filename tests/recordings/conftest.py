"""Fixtures for the recording tests: a pipeline on the local store, a workspace with a call,
and a real HTTP receiver on loopback standing in for the app. The S3 tests reuse the
SeaweedFS server of tests/storage (imported here so pytest registers it)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from tests.events.support import Receiver
from tests.storage.conftest import s3_server  # noqa: F401 - a fixture, registered by import

from sautikit import accounts
from sautikit.config import Settings
from sautikit.db import Database
from sautikit.db.models import Call
from sautikit.net import outbound_client
from sautikit.recordings.pipeline import RecordingPipeline, signed_app_clients
from sautikit.recordings.stores import WorkspaceStores
from sautikit.storage import ObjectStore, open_store


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "var", secret_key=SecretStr("test-secret"), allow_private_http=True
    )


@dataclass
class Rig:
    database: Database
    settings: Settings
    store: ObjectStore
    stores: WorkspaceStores
    pipeline: RecordingPipeline
    app: Receiver
    http: httpx.AsyncClient
    workspace_id: str

    async def new_call(self, workspace_id: str | None = None) -> str:
        async with self.database.transaction() as session:
            call = Call(
                workspace_id=workspace_id or self.workspace_id,
                direction="inbound",
                from_number="+254700000001",
                to_number="+254722000001",
                status="answered",
                events_url=self.app.url,
            )
            session.add(call)
            await session.flush()
            return call.id

    async def new_workspace(self) -> str:
        async with self.database.transaction() as session:
            return (await accounts.create_workspace(session, "other")).id


@pytest.fixture
async def rig(database: Database, settings: Settings) -> AsyncIterator[Rig]:
    store = open_store(settings)
    stores = WorkspaceStores(settings, store)
    app = await Receiver().start()
    async with outbound_client(allow_private=True) as http:
        pipeline = RecordingPipeline(database, settings, stores, signed_app_clients(database, http))
        async with database.transaction() as session:
            workspace_id = (await accounts.create_workspace(session, "test")).id
        yield Rig(database, settings, store, stores, pipeline, app, http, workspace_id)
    await app.close()
    await stores.close()
    await store.close()
