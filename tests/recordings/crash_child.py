"""A Sautikit process the crash tests kill with SIGKILL (run as a script, not collected).

    crash_child.py MODE DATABASE_URL SEARCH_PATH DATA_DIR WORKSPACE_ID CALL_ID ACTION_URL

MODE ``recording``: begin a recording and spool audio as the PBX does, forever; after two
seconds of audio it prints ``recording <id>``. MODE ``uploading``: spool three seconds,
finish the recording, and stop for good right after the object is stored, before the row
is updated; it prints ``uploaded <id>`` there. Either way the parent kills it.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import httpx
import numpy as np
from pydantic import SecretStr

from sautikit.config import Settings
from sautikit.db import Database
from sautikit.media.audio import SAMPLE_RATE, WavSpoolWriter
from sautikit.recordings.pipeline import RecordingPipeline, signed_app_clients
from sautikit.recordings.stores import WorkspaceStores
from sautikit.storage import LocalObjectStore, open_store
from sautikit.voice.control import RecordResult

FRAME = (8000 * np.sin(2 * np.pi * 440 * np.arange(160) / SAMPLE_RATE)).astype(np.int16)


class StoreThatDiesAfterUpload(LocalObjectStore):
    async def put_file(self, key: str, path: Path, content_type: str) -> None:
        await super().put_file(key, path, content_type)
        print("uploaded", path.stem, flush=True)
        await asyncio.Event().wait()  # never returns: the parent kills us here


class Call:
    def __init__(self, call_id: str, workspace_id: str) -> None:
        self.call_id = call_id
        self.workspace_id = workspace_id


async def main(argv: list[str]) -> None:
    mode, url, search_path, data_dir, workspace_id, call_id, action_url = argv
    settings = Settings(data_dir=Path(data_dir), secret_key=SecretStr("test-secret"))
    options = {"connect_args": {"server_settings": {"search_path": search_path}}}
    database = Database(url, **(options if search_path else {}))
    local = open_store(settings)
    assert isinstance(local, LocalObjectStore)
    store = StoreThatDiesAfterUpload(local.root, local.public_url, local.signer)
    async with httpx.AsyncClient() as http:
        pipeline = RecordingPipeline(
            database, settings, WorkspaceStores(settings, store), signed_app_clients(database, http)
        )
        recording_id, spool = await pipeline.begin(
            call_id, workspace_id, "record", action_url=action_url
        )
        with WavSpoolWriter(spool, sync_interval=0.5) as writer:
            for frame in range(10**9):
                writer.write(FRAME)
                if mode == "recording":
                    if frame == 100:
                        print("recording", recording_id, flush=True)
                    if frame >= 100:
                        await asyncio.sleep(0.02)
                elif frame == 3 * 50 - 1:
                    break
        await pipeline.recording_finished(
            Call(call_id, workspace_id),  # type: ignore[arg-type]
            RecordResult(spool, 3.0, 1, "hangup"),
            source="record",
            transcribe=False,
            transcribe_callback=None,
        )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
