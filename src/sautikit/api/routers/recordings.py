"""``/v1/recordings`` and ``GET /v1/calls/{id}/recording`` (SPEC §2, §5).

Reading needs ``recordings.read``; deleting needs ``recordings.write``. Download URLs are
presigned for ``app.state.recording_url_lifetime`` (15 minutes unless the composition
root sets another ``timedelta``) and need no API key. Recordings are read from the store
of their workspace (``app.state.recording_stores``, a
:class:`~sautikit.recordings.stores.WorkspaceStores` shared with the pipeline; made from
``app.state.store`` when the composition root set none).

A recording's ``status``: ``recording``, ``finalising``, ``uploading`` (on its way),
``ready`` (stored; ``download_url`` set), ``empty`` (only silence; nothing stored),
``failed``, ``deleted`` (by ``DELETE``), ``expired`` (removed by the retention sweep).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from sautikit.api.auth import Principal, require_scopes
from sautikit.api.deps import DbSession, api_context
from sautikit.api.errors import ApiError, ErrorEnvelope
from sautikit.api.pagination import PageParams, page_params, paginate
from sautikit.api.routing import SautikitRoute
from sautikit.db.models import Call, Recording, Transcription, Workspace
from sautikit.db.types import utcnow
from sautikit.recordings.pipeline import DEFAULT_URL_LIFETIME
from sautikit.recordings.stores import WorkspaceStores
from sautikit.storage import PresignedUrl, StorageError

__all__ = ["router"]

router = APIRouter(prefix="/v1", route_class=SautikitRoute, tags=["recordings"])

read = require_scopes("recordings.read")
write = require_scopes("recordings.write")

STATUSES = (
    "recording",
    "finalising",
    "uploading",
    "ready",
    "empty",
    "failed",
    "deleted",
    "expired",
)


def _errors(*codes: tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorEnvelope, "description": f"`{code}`"} for status, code in codes}


_CALL_RECORDING_RESPONSES: dict[int | str, dict[str, Any]] = {
    302: {"description": "`Location` is a presigned download URL (no API key needed)"},
    **_errors(
        (404, "calls.not_found, calls.recording_not_found"), (410, "calls.recording_expired")
    ),
}


class RecordingOut(BaseModel):
    id: str = Field(description="Also `RecordingSid` in callbacks.")
    call_id: str
    source: str = Field(description="record, dial, conference or api.")
    status: str = Field(description=", ".join(STATUSES) + ".")
    duration_seconds: int | None
    channels: int
    format: str = Field(description="wav or mp3.")
    size_bytes: int | None
    sha256: str | None = Field(description="Hex SHA-256 of the stored file.")
    storage_key: str | None
    created_at: datetime
    download_url: str | None = Field(
        description="A presigned URL that needs no API key; null unless the status is ready."
    )
    download_url_expires_at: datetime | None


class RecordingPage(BaseModel):
    data: list[RecordingOut]
    next_cursor: str | None


class TranscriptWord(BaseModel):
    word: str
    start: float = Field(description="Seconds from the start of the recording.")
    end: float = Field(description="Seconds from the start of the recording.")
    confidence: float = Field(description="The model's confidence in the word, 0 to 1.")


class TranscriptChannel(BaseModel):
    channel: int = Field(description="0 for the first (left) channel, 1 for the second.")
    speaker: str | None = Field(
        description="`caller` or `callee` for a dual-channel recording; null for mono."
    )
    text: str
    words: list[TranscriptWord]


class TranscriptionOut(BaseModel):
    id: str = Field(description="Also `TranscriptionSid` in the transcribeCallback.")
    recording_id: str
    status: str = Field(description="queued, running, completed or failed.")
    text: str | None = Field(
        description="A mono recording's words; for a dual recording, the conversation with "
        "one `Caller: …` or `Callee: …` line per turn. Null until completed."
    )
    language: str | None = Field(description="ISO 639-1 code, e.g. `en`; null until completed.")
    channels: list[TranscriptChannel] = Field(
        description="Per channel of the recording, its words with times; empty until completed."
    )
    engine: str | None
    error: str | None = Field(description="Why it failed; null otherwise.")
    created_at: datetime
    completed_at: datetime | None


def _transcription_out(job: Transcription) -> TranscriptionOut:
    return TranscriptionOut(
        id=job.id,
        recording_id=job.recording_id,
        status=job.status,
        text=job.text,
        language=job.language,
        channels=[TranscriptChannel.model_validate(channel) for channel in job.channels or []],
        engine=job.engine,
        error=job.error,
        created_at=job.created_at,
        completed_at=job.completed_at,
    )


def _stores(request: Request) -> WorkspaceStores:
    stores: WorkspaceStores | None = getattr(request.app.state, "recording_stores", None)
    if stores is None:
        store = request.app.state.store
        if store is None:
            raise ApiError(500, "internal_error", "no object store is configured")
        stores = WorkspaceStores(api_context(request).settings, store)
        request.app.state.recording_stores = stores
    return stores


def _url_lifetime(request: Request) -> timedelta:
    lifetime: timedelta = getattr(request.app.state, "recording_url_lifetime", DEFAULT_URL_LIFETIME)
    return lifetime


async def _link(
    request: Request, session: AsyncSession, recording: Recording
) -> PresignedUrl | None:
    if recording.status != "ready" or recording.storage_key is None:
        return None
    workspace = await session.get_one(Workspace, recording.workspace_id)
    try:
        return (
            await _stores(request)
            .for_workspace(workspace)
            .presigned_url(
                recording.storage_key,
                _url_lifetime(request),
                filename=f"{recording.id}.{recording.format}",
            )
        )
    except StorageError as exc:
        raise ApiError(503, "recordings.storage_unavailable", str(exc)) from None


def _out(recording: Recording, link: PresignedUrl | None) -> RecordingOut:
    return RecordingOut(
        id=recording.id,
        call_id=recording.call_id,
        source=recording.source,
        status=recording.status,
        duration_seconds=recording.duration_seconds,
        channels=recording.channels,
        format=recording.format,
        size_bytes=recording.size_bytes,
        sha256=recording.sha256,
        storage_key=recording.storage_key,
        created_at=recording.created_at,
        download_url=link.url if link else None,
        download_url_expires_at=link.expires_at if link else None,
    )


async def _owned(session: AsyncSession, principal: Principal, recording_id: str) -> Recording:
    recording = await session.get(Recording, recording_id)
    if recording is None or recording.workspace_id != principal.workspace_id:
        raise ApiError(404, "recordings.not_found", f"no recording {recording_id}")
    return recording


@router.get(
    "/calls/{call_id}/recording",
    status_code=302,
    response_class=RedirectResponse,
    responses=_CALL_RECORDING_RESPONSES,
    summary="Download the call's latest recording",
)
async def call_recording(
    call_id: str, request: Request, session: DbSession, principal: Principal = Depends(read)
) -> RedirectResponse:
    """Redirects to a presigned URL of the call's latest stored recording, valid 15 minutes
    by default. 410 `calls.recording_expired` once retention removed it. Needs
    `recordings.read`."""
    call = await session.get(Call, call_id)
    if call is None or call.workspace_id != principal.workspace_id:
        raise ApiError(404, "calls.not_found", f"no call {call_id}")
    latest = await session.scalar(
        select(Recording)
        .where(Recording.call_id == call.id, Recording.status.in_(("ready", "expired")))
        .order_by(Recording.id.desc())
        .limit(1)
    )
    if latest is None:
        raise ApiError(404, "calls.recording_not_found", f"call {call_id} has no recording")
    link = await _link(request, session, latest)
    if link is None:
        raise ApiError(
            410,
            "calls.recording_expired",
            f"the recording of call {call_id} was removed by the retention policy",
        )
    return RedirectResponse(link.url, status_code=302)


@router.get("/recordings", response_model=RecordingPage, summary="Recordings, newest first")
async def list_recordings(
    request: Request,
    session: DbSession,
    call_id: str | None = Query(None, description="Only this call's recordings."),
    status: str | None = Query(
        None,
        description="Only recordings in this status.",
        json_schema_extra={"enum": list(STATUSES)},
    ),
    page: PageParams = Depends(page_params),
    principal: Principal = Depends(read),
) -> dict[str, Any]:
    """Needs `recordings.read`. Ready recordings carry a fresh `download_url`."""
    if status is not None and status not in STATUSES:
        raise ApiError(
            400,
            "validation.invalid_field",
            f"status: one of {', '.join(STATUSES)}",
            field="status",
        )
    query = select(Recording).where(Recording.workspace_id == principal.workspace_id)
    if call_id is not None:
        query = query.where(Recording.call_id == call_id)
    if status is not None:
        query = query.where(Recording.status == status)
    listed = await paginate(session, query, Recording.id, page, lambda row: row)
    listed["data"] = [
        _out(recording, await _link(request, session, recording)) for recording in listed["data"]
    ]
    return listed


@router.get(
    "/recordings/{recording_id}",
    response_model=RecordingOut,
    responses=_errors((404, "recordings.not_found")),
    summary="One recording, with a fresh download URL",
)
async def get_recording(
    recording_id: str, request: Request, session: DbSession, principal: Principal = Depends(read)
) -> RecordingOut:
    """Needs `recordings.read`."""
    recording = await _owned(session, principal, recording_id)
    return _out(recording, await _link(request, session, recording))


@router.delete(
    "/recordings/{recording_id}",
    response_model=RecordingOut,
    responses=_errors((404, "recordings.not_found")),
    summary="Delete a recording and its stored file",
)
async def delete_recording(
    recording_id: str, request: Request, session: DbSession, principal: Principal = Depends(write)
) -> RecordingOut:
    """Removes the stored file and marks the recording `deleted`; the metadata stays.
    Deleting again answers the same. A recording still being made cannot be deleted
    (409 `recordings.not_finished`). Needs `recordings.write`."""
    recording = await _owned(session, principal, recording_id)
    if recording.status in ("recording", "finalising", "uploading"):
        raise ApiError(
            409, "recordings.not_finished", f"recording {recording_id} is still being stored"
        )
    if recording.status != "deleted":
        if recording.storage_key is not None and recording.status == "ready":
            workspace = await session.get_one(Workspace, recording.workspace_id)
            try:
                await _stores(request).for_workspace(workspace).delete(recording.storage_key)
            except StorageError as exc:
                raise ApiError(503, "recordings.storage_unavailable", str(exc)) from None
        recording.status = "deleted"
        recording.deleted_at = utcnow()
    return _out(recording, None)


@router.get(
    "/recordings/{recording_id}/transcription",
    response_model=TranscriptionOut,
    responses=_errors((404, "recordings.not_found, recordings.transcription_not_found")),
    summary="The recording's transcript",
)
async def get_transcription(
    recording_id: str, session: DbSession, principal: Principal = Depends(read)
) -> TranscriptionOut:
    """The transcript, when `transcribe` asked for one; `status` says whether it is done.
    Needs `recordings.read`."""
    recording = await _owned(session, principal, recording_id)
    job = await session.scalar(
        select(Transcription).where(Transcription.recording_id == recording.id)
    )
    if job is None:
        raise ApiError(
            404,
            "recordings.transcription_not_found",
            f"recording {recording_id} was not transcribed",
        )
    return _transcription_out(job)


@router.get(
    "/transcripts/{transcript_id}",
    response_model=TranscriptionOut,
    responses=_errors((404, "transcripts.not_found")),
    summary="A transcript, with speakers and word timestamps",
)
async def get_transcript(
    transcript_id: str, session: DbSession, principal: Principal = Depends(read)
) -> TranscriptionOut:
    """A transcript by its id (`TranscriptionSid`): the text, and per channel the speaker
    (`caller`/`callee` for a dual recording) and every word with its start, end and
    confidence. Needs `recordings.read`."""
    job = await session.get(Transcription, transcript_id)
    if job is None or job.workspace_id != principal.workspace_id:
        raise ApiError(404, "transcripts.not_found", f"no transcript {transcript_id}")
    return _transcription_out(job)
