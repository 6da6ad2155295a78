"""The life of a recording after the PBX has spooled it (SPEC §5).

::

    begin()               row "recording", spool path handed to the PBX
    recording_finished()  "finalising": WAV checked/repaired, trimmed, MP3 if asked
                          "uploading":  put in the workspace's bucket or the operator's
                          "ready":      row filled in + call.recording.ready event, one
                                        transaction; a transcription job if asked
    mark_callback_sent()  the record action's callback reached the app (the interpreter
                          posts it; RecordingCallbackClient marks it)

:class:`RecordingPipeline` is the :class:`~sautikit.voice.control.RecordingSink` the
interpreter hands recordings to. Every step is safe to run again: the object key is a
function of the recording (``recordings/<workspace>/<call>/<recording>.<format>``), so a
second upload overwrites the first, and the row only becomes ``ready`` (and the event is
only written) in a transaction that checks it is not ``ready`` already. That is what lets
:mod:`sautikit.recordings.recovery` finish, after a crash, whatever a dead process left.

The download URL handed to the app (``RecordingUrl``, the event's ``download_url``) is
presigned for ``url_lifetime`` (15 minutes by default) and needs no API key.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from sautikit.config import Settings
from sautikit.db import Database
from sautikit.db.models import Call, Number, Recording, Transcription, Workspace
from sautikit.db.types import utcnow
from sautikit.events.delivery import workspace_signing_secret
from sautikit.events.outbox import record_call_event
from sautikit.ids import new_id
from sautikit.metrics import COUNTERS
from sautikit.recordings.finalise import (
    FinalisedRecording,
    FinaliseError,
    RecordingFormat,
    finalise_recording,
)
from sautikit.recordings.stores import WorkspaceStores
from sautikit.storage import ObjectStore, PresignedUrl, StorageError
from sautikit.voice.actions import Action
from sautikit.voice.callbacks import (
    DEFAULT_TIMEOUT,
    AppClient,
    AppErrorKind,
    AppRequestError,
    CallbackEncoding,
    Fields,
)
from sautikit.voice.control import CallControl, RecordingInfo, RecordingSource, RecordResult

__all__ = [
    "DEFAULT_URL_LIFETIME",
    "SPOOL_DIRECTORY",
    "AppClientFactory",
    "RecordingCallbackClient",
    "RecordingPipeline",
    "StoredRecording",
    "callback_encoding",
    "event_data",
    "rfc3339",
    "signed_app_clients",
    "storage_key",
]

log = logging.getLogger(__name__)

DEFAULT_URL_LIFETIME: Final = timedelta(minutes=15)
SPOOL_DIRECTORY: Final = "spool"
"""Under ``settings.data_dir``: where the PBX writes recordings as they arrive."""

# Rows in these states have a spool that is not yet stored; recovery finishes them.
UNFINISHED_STATES: Final = ("recording", "finalising", "uploading")

AppClientFactory = Callable[[str, str | None], Awaitable[AppClient]]
"""The client that posts to a workspace's app (signed with its secret, in the encoding the
call's number or the workspace chose), by workspace id and call id (None: no call)."""


async def callback_encoding(
    session: AsyncSession,
    workspace_id: str,
    *,
    number_id: str | None = None,
    call_id: str | None = None,
) -> CallbackEncoding:
    """The encoding of POSTs to the app (SPEC §3): the number's choice if it made one (the
    number ``number_id``, or the number of the call ``call_id``), else the workspace's."""
    if number_id is None and call_id is not None:
        number_id = await session.scalar(select(Call.number_id).where(Call.id == call_id))
    chosen: str | None = None
    if number_id is not None:
        chosen = await session.scalar(
            select(Number.callback_encoding).where(
                Number.id == number_id, Number.workspace_id == workspace_id
            )
        )
    if chosen is None:
        chosen = await session.scalar(
            select(Workspace.callback_encoding).where(Workspace.id == workspace_id)
        )
    return CallbackEncoding(chosen or CallbackEncoding.FORM)


def signed_app_clients(
    database: Database, http: httpx.AsyncClient, *, timeout: float = DEFAULT_TIMEOUT
) -> AppClientFactory:
    """An :data:`AppClientFactory` signing with each workspace's own secret, over ``http``
    (from :func:`sautikit.net.outbound_client`)."""

    async def client_for(workspace_id: str, call_id: str | None) -> AppClient:
        async with database.transaction() as session:
            secret = await workspace_signing_secret(session, workspace_id)
            encoding = await callback_encoding(session, workspace_id, call_id=call_id)
        return AppClient(http, secret, timeout=timeout, encoding=encoding)

    return client_for


class RecordingCallbackClient(AppClient):
    """An :class:`AppClient` for the interpreter that calls
    :meth:`RecordingPipeline.mark_callback_sent` once a callback carrying a
    ``RecordingSid`` has reached the app — the app answered, whatever it answered. Built by
    :meth:`RecordingPipeline.app_client`; a callback that never arrived (unreachable,
    refused, timed out) stays unmarked, and recovery posts it at the next start."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        secret: str,
        pipeline: RecordingPipeline,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        encoding: CallbackEncoding = CallbackEncoding.FORM,
    ) -> None:
        super().__init__(http, secret, timeout=timeout, encoding=encoding)
        self.pipeline = pipeline

    async def fetch_actions(self, url: str, method: str, fields: Fields) -> list[Action]:
        try:
            actions = await super().fetch_actions(url, method, fields)
        except AppRequestError as exc:
            if exc.kind not in _UNDELIVERED:
                await self._delivered(fields)
            raise
        await self._delivered(fields)
        return actions

    async def notify(self, url: str, fields: Fields, method: str = "POST") -> bool:
        delivered = await super().notify(url, fields, method)
        if delivered:
            await self._delivered(fields)
        return delivered

    async def _delivered(self, fields: Fields) -> None:
        recording_id = fields.get("RecordingSid")
        if isinstance(recording_id, str) and recording_id:
            await self.pipeline.mark_callback_sent(recording_id)


# The request may not have reached the app: recovery had better post it again.
_UNDELIVERED: Final = frozenset(
    {AppErrorKind.UNREACHABLE, AppErrorKind.REFUSED, AppErrorKind.TIMEOUT}
)


def storage_key(recording: Recording, format: str) -> str:
    """Where a recording is stored: the same key every time, so a retry overwrites."""
    return f"recordings/{recording.workspace_id}/{recording.call_id}/{recording.id}.{format}"


def rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class StoredRecording:
    """What :meth:`RecordingPipeline.store` did with one recording."""

    recording_id: str
    status: str
    """``ready``; ``empty`` (nothing kept); ``failed`` (the spool is not a usable WAV; it
    is kept); ``uploading`` (the store refused it; the spool is kept for recovery)."""
    info: RecordingInfo
    """What the app is told: the URL is empty unless the recording is ready."""
    event_written: bool
    """Whether this run wrote ``call.recording.ready`` (False if another run already had)."""


class RecordingPipeline:
    """Spool → finalise → upload → row → event, for every recording of this process.

    ``stores`` picks each workspace's bucket; ``app_clients`` gives the client that posts to
    a workspace's app (used by recovery for callbacks a dead call could not post).
    ``on_transcription_queued`` is called when a transcription job was queued, so a worker
    can start at once rather than at its next poll.
    """

    def __init__(
        self,
        database: Database,
        settings: Settings,
        stores: WorkspaceStores,
        app_clients: AppClientFactory,
        *,
        url_lifetime: timedelta = DEFAULT_URL_LIFETIME,
        on_transcription_queued: Callable[[], None] | None = None,
    ) -> None:
        self.database = database
        self.settings = settings
        self.stores = stores
        self.app_clients = app_clients
        self.url_lifetime = url_lifetime
        self.on_transcription_queued = on_transcription_queued
        self.spool_dir = settings.data_dir / SPOOL_DIRECTORY

    # --- the PBX's side -------------------------------------------------------------------

    async def begin(
        self,
        call_id: str,
        workspace_id: str,
        source: RecordingSource,
        *,
        action_url: str | None = None,
        action_method: str = "POST",
        transcribe: bool = False,
        transcribe_callback: str | None = None,
        channels: int = 1,
        trim: bool = False,
    ) -> tuple[str, Path]:
        """Make the row (status ``recording``) and answer its id and the spool path the
        PBX must write to. The row exists before any audio does, so a crash leaves a row
        that points at the spool, and recovery can finish it."""
        if channels not in (1, 2):
            raise ValueError(f"recordings are mono or two-channel, not {channels} channels")
        recording_id = new_id()
        spool = self.spool_dir / f"{recording_id}.wav"
        await asyncio.to_thread(self.spool_dir.mkdir, parents=True, exist_ok=True)
        async with self.database.transaction() as session:
            session.add(
                Recording(
                    id=recording_id,
                    workspace_id=workspace_id,
                    call_id=call_id,
                    source=source,
                    status="recording",
                    channels=channels,
                    spool_path=str(spool),
                    trim_silence=trim,
                    action_url=action_url,
                    action_method=action_method,
                    transcribe=transcribe,
                    transcribe_callback=transcribe_callback,
                )
            )
        return recording_id, spool

    async def app_client(
        self,
        workspace_id: str,
        http: httpx.AsyncClient,
        *,
        request_timeout: float = DEFAULT_TIMEOUT,
        number_id: str | None = None,
    ) -> RecordingCallbackClient:
        """The client a call's interpreter should post with: signed with the workspace's
        secret, in the encoding of the call's number ``number_id`` (or the workspace's), and
        marking record callbacks sent (see :class:`RecordingCallbackClient`)."""
        async with self.database.transaction() as session:
            secret = await workspace_signing_secret(session, workspace_id)
            encoding = await callback_encoding(session, workspace_id, number_id=number_id)
        return RecordingCallbackClient(
            http, secret, self, timeout=request_timeout, encoding=encoding
        )

    # --- RecordingSink --------------------------------------------------------------------

    async def recording_finished(
        self,
        call: CallControl,
        result: RecordResult,
        *,
        source: RecordingSource,
        transcribe: bool,
        transcribe_callback: str | None,
    ) -> RecordingInfo:
        """Store a finished recording and answer what the app is told (SPEC §3)."""
        recording_id = await self._claim_row(
            call.call_id,
            call.workspace_id,
            result,
            source=source,
            transcribe=transcribe,
            transcribe_callback=transcribe_callback,
        )
        return (await self.store(recording_id)).info

    async def discard(self, result: RecordResult) -> None:
        """An empty recording: the row (if the PBX began one) says ``empty``; nothing is
        stored and the spool file goes."""
        async with self.database.transaction() as session:
            await session.execute(
                update(Recording)
                .where(
                    Recording.spool_path == str(result.path),
                    Recording.status.in_(UNFINISHED_STATES),
                )
                .values(status="empty", duration_seconds=0)
            )
        await asyncio.to_thread(result.path.unlink, missing_ok=True)

    async def mark_callback_sent(self, recording_id: str) -> None:
        """Note that the record action's callback reached the app's ``action`` URL, so
        recovery never posts it a second time."""
        async with self.database.transaction() as session:
            await session.execute(
                update(Recording)
                .where(Recording.id == recording_id, Recording.callback_sent_at.is_(None))
                .values(callback_sent_at=utcnow())
            )

    async def _claim_row(
        self,
        call_id: str,
        workspace_id: str,
        result: RecordResult,
        *,
        source: RecordingSource,
        transcribe: bool,
        transcribe_callback: str | None,
    ) -> str:
        """The id of the row :meth:`begin` made for this spool, brought up to date with the
        interpreter's wishes; a new row if the PBX began none."""
        async with self.database.transaction() as session:
            recording = await session.scalar(
                select(Recording).where(
                    Recording.spool_path == str(result.path),
                    Recording.workspace_id == workspace_id,
                )
            )
            if recording is None:
                recording = Recording(
                    workspace_id=workspace_id,
                    call_id=call_id,
                    source=source,
                    status="recording",
                    spool_path=str(result.path),
                )
                session.add(recording)
            recording.channels = result.channels
            recording.transcribe = transcribe
            recording.transcribe_callback = transcribe_callback
            await session.flush()
            return recording.id

    # --- the pipeline proper --------------------------------------------------------------

    async def store(self, recording_id: str) -> StoredRecording:
        """Finalise, upload and publish one recording whose spool is on disk.

        Safe to run again on the same recording (after a crash, or twice at once): the
        object is overwritten, the event is written once.
        """
        async with self.database.transaction() as session:
            recording = await session.get(Recording, recording_id)
            if recording is None:
                raise LookupError(f"no recording {recording_id}")
            workspace = await session.get_one(Workspace, recording.workspace_id)
            if recording.status == "ready":
                info = await self._ready_info(recording, workspace)
                return StoredRecording(recording_id, "ready", info, event_written=False)
            if recording.status not in UNFINISHED_STATES:  # empty, failed, deleted, expired
                return self._unstored(recording, recording.status)
            recording.status = "finalising"
        format: RecordingFormat = "mp3" if workspace.recording_format == "mp3" else "wav"
        spool = Path(recording.spool_path or "")
        try:
            finalised = await asyncio.to_thread(
                finalise_recording, spool, format=format, trim=recording.trim_silence
            )
        except FinaliseError as exc:
            log.error("recording %s cannot be finalised: %s", recording_id, exc)
            await self._set_status(recording_id, "failed")
            return self._unstored(recording, "failed")
        if finalised.frames == 0:
            await self._set_status(recording_id, "empty", duration_seconds=0)
            await asyncio.to_thread(_remove_files, spool, finalised)
            return StoredRecording(
                recording_id, "empty", RecordingInfo("", "", 0, finalised.channels), False
            )

        key = storage_key(recording, finalised.format)
        await self._set_status(recording_id, "uploading", storage_key=key)
        try:
            store = self.stores.for_workspace(workspace)
            started = time.perf_counter()
            await store.put_file(key, finalised.path, finalised.content_type)
            COUNTERS.recording_uploads.observe(time.perf_counter() - started)
            link = await self._link(store, key, finalised.format, recording_id)
        except StorageError as exc:
            COUNTERS.recording_upload_failures += 1
            # The spool stays; the next start's recovery tries the upload again.
            log.error("recording %s could not be stored: %s", recording_id, exc)
            return self._unstored(recording, "uploading", finalised.duration_seconds)

        event_written, transcription_queued = await self._publish(recording_id, finalised, link)
        await asyncio.to_thread(_remove_files, spool, finalised)
        if transcription_queued and self.on_transcription_queued is not None:
            self.on_transcription_queued()
        info = RecordingInfo(recording_id, link.url, finalised.duration_seconds, finalised.channels)
        return StoredRecording(recording_id, "ready", info, event_written)

    async def _publish(
        self, recording_id: str, finalised: FinalisedRecording, link: PresignedUrl
    ) -> tuple[bool, bool]:
        """Row ``ready`` and the event, in one transaction guarded by the row's status.
        Answers whether this call wrote the event, and whether it queued a transcription."""
        async with self.database.transaction() as session:
            recording = await session.scalar(
                select(Recording).where(Recording.id == recording_id).with_for_update()
            )
            if recording is None or recording.status == "ready":
                return False, False
            recording.status = "ready"
            recording.ready_at = utcnow()
            recording.duration_seconds = finalised.duration_seconds
            recording.channels = finalised.channels
            recording.format = finalised.format
            recording.size_bytes = finalised.size_bytes
            recording.sha256 = finalised.sha256
            await record_call_event(
                session,
                call_id=recording.call_id,
                kind="call.recording.ready",
                data=event_data(recording, link),
            )
            if recording.transcribe:
                session.add(
                    Transcription(workspace_id=recording.workspace_id, recording_id=recording.id)
                )
            return True, recording.transcribe

    async def _ready_info(self, recording: Recording, workspace: Workspace) -> RecordingInfo:
        link = await self._link(
            self.stores.for_workspace(workspace),
            recording.storage_key or "",
            recording.format,
            recording.id,
        )
        return RecordingInfo(
            recording.id, link.url, recording.duration_seconds or 0, recording.channels
        )

    async def _link(
        self, store: ObjectStore, key: str, format: str, recording_id: str
    ) -> PresignedUrl:
        return await store.presigned_url(
            key, self.url_lifetime, filename=f"{recording_id}.{format}"
        )

    async def _set_status(self, recording_id: str, status: str, **values: Any) -> None:
        async with self.database.transaction() as session:
            await session.execute(
                update(Recording)
                .where(Recording.id == recording_id, Recording.status != "ready")
                .values(status=status, **values)
            )

    @staticmethod
    def _unstored(recording: Recording, status: str, duration: int = 0) -> StoredRecording:
        info = RecordingInfo(recording.id, "", duration, recording.channels)
        return StoredRecording(recording.id, status, info, event_written=False)


def event_data(recording: Recording, link: PresignedUrl) -> dict[str, Any]:
    """The ``call.recording.ready`` payload: SPEC §5's fields and the download link."""
    return {
        "recording_id": recording.id,
        "call_id": recording.call_id,
        "source": recording.source,
        "status": recording.status,
        "duration_seconds": recording.duration_seconds,
        "channels": recording.channels,
        "format": recording.format,
        "size_bytes": recording.size_bytes,
        "sha256": recording.sha256,
        "download_url": link.url,
        "expires_at": rfc3339(link.expires_at),
    }


def _remove_files(spool: Path, finalised: FinalisedRecording) -> None:
    finalised.path.unlink(missing_ok=True)
    spool.unlink(missing_ok=True)
