"""The transcription worker: recordings to text, off the call's path (SPEC §5).

Jobs are :class:`~sautikit.db.models.Transcription` rows, queued by the recording pipeline
in the transaction that makes the recording ``ready``. The worker claims them
(``queued`` → ``running``), transcribes with an offline engine in a thread, and ends each
``completed`` or ``failed``:

* the row holds the text, its language and, per channel, a speaker label and every word
  with its start, end and confidence (``GET /v1/transcripts/{id}``, also
  ``GET /v1/recordings/{id}/transcription``). A dual-channel recording is transcribed one
  channel at a time: the first is the ``caller``, the second the ``callee`` (SPEC §4's
  ``recordingChannels``), and the text reads as the conversation, one labelled turn a line;
* ``call.transcription.ready`` is written in the same transaction;
* the record verb's ``transcribeCallback`` gets ``TranscriptionText``,
  ``TranscriptionStatus`` (``completed`` | ``failed``), ``TranscriptionSid``,
  ``RecordingSid`` and ``CallId``: a delivery of that event, written in the same
  transaction and sent by the event delivery worker, so it is retried (and dead-lettered,
  and redeliverable) like events are.

No job is left stuck. A claim carries a time (``claimed_at``) and a number (``attempts``,
raised by each claim); a ``running`` job whose claim is older than ``claim_timeout`` — its
worker died, or hangs — is claimed again by any worker, also after a restart, and only the
holder of the latest claim may finish it. After ``max_attempts`` claims a job fails.

Billing: SPEC §5 bills transcription per second of audio. The charge
(:func:`~sautikit.billing.ledger.charge_transcription`, once per recording) is posted in
the transaction that completes the job, so a failed transcription costs nothing; a wallet
that cannot pay is found before the engine runs, and the job fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

from sqlalchemy import or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.elements import ColumnElement

from sautikit.billing.ledger import InsufficientFunds, available, charge_transcription
from sautikit.billing.rating import price_for
from sautikit.config import Settings
from sautikit.db import Database
from sautikit.db.models import Recording, Transcription, Workspace
from sautikit.db.types import rows_changed, utcnow
from sautikit.events.delivery import add_callback_delivery
from sautikit.events.outbox import record_call_event
from sautikit.media.audio import AudioFormatError, load_recording_channels
from sautikit.metrics import COUNTERS
from sautikit.recordings.finalise import CONTENT_TYPES
from sautikit.recordings.pipeline import callback_encoding
from sautikit.recordings.stores import WorkspaceStores
from sautikit.recordings.transcription import (
    Transcript,
    TranscriptionEngine,
    TranscriptionError,
    create_engine,
)
from sautikit.storage import StorageError

__all__ = [
    "DEFAULT_CLAIM_TIMEOUT",
    "DUAL_SPEAKERS",
    "TranscriptionWorker",
    "channel_transcripts",
    "conversation_text",
    "transcription_data",
]

log = logging.getLogger(__name__)

DEFAULT_CLAIM_TIMEOUT: Final = timedelta(minutes=10)
DUAL_SPEAKERS: Final = ("caller", "callee")
"""Who speaks on each channel of a dual recording, first channel first."""
_DEFAULT_POLL_SECONDS: Final = 5.0


class _JobFailed(Exception):
    """The job cannot complete; the message is what the row's ``error`` says."""


@dataclass(frozen=True, slots=True)
class _Claim:
    transcription_id: str
    attempt: int


@dataclass(frozen=True, slots=True)
class _Heard:
    """A finished transcription, ready to store."""

    text: str
    engine: str
    language: str | None
    channels: list[dict[str, Any]]


def channel_transcripts(transcripts: list[Transcript]) -> list[dict[str, Any]]:
    """The stored per-channel form: speaker labels for a dual recording, none for mono."""
    speakers: tuple[str | None, ...] = (
        DUAL_SPEAKERS if len(transcripts) == len(DUAL_SPEAKERS) else (None,) * len(transcripts)
    )
    return [
        {
            "channel": index,
            "speaker": speaker,
            "text": transcript.text,
            "words": [
                {
                    "word": word.text,
                    "start": word.start,
                    "end": word.end,
                    "confidence": word.confidence,
                }
                for word in transcript.words
            ],
        }
        for index, (speaker, transcript) in enumerate(zip(speakers, transcripts, strict=True))
    ]


def conversation_text(channels: list[dict[str, Any]]) -> str:
    """The transcript's text: a mono recording's words as heard; for labelled channels, the
    words of both in time order, one ``Speaker: words`` line per turn."""
    if len(channels) == 1 or any(channel["speaker"] is None for channel in channels):
        return " ".join(channel["text"] for channel in channels if channel["text"]).strip()
    timed = sorted(
        (word["start"], index, channel["speaker"], word["word"])
        for index, channel in enumerate(channels)
        for word in channel["words"]
    )
    turns: list[tuple[str, list[str]]] = []
    for _, _, speaker, word in timed:
        if turns and turns[-1][0] == speaker:
            turns[-1][1].append(word)
        else:
            turns.append((speaker, [word]))
    return "\n".join(f"{speaker.capitalize()}: {' '.join(words)}" for speaker, words in turns)


class TranscriptionWorker:
    """Runs transcription jobs, at most ``concurrency`` at once, until cancelled.

    ``engine`` is an engine name for :func:`create_engine` (``whisper``), with
    ``model_path`` replacing its bundled model; or an engine object. The engine is built
    and loaded on the first job, in a thread.
    """

    def __init__(
        self,
        database: Database,
        settings: Settings,
        stores: WorkspaceStores,
        *,
        engine: str | TranscriptionEngine = "whisper",
        model_path: str | Path | None = None,
        concurrency: int = 1,
        claim_timeout: timedelta = DEFAULT_CLAIM_TIMEOUT,
        max_attempts: int = 3,
        poll_interval: float = _DEFAULT_POLL_SECONDS,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.database = database
        self.settings = settings
        self.stores = stores
        self.model_path = model_path
        self.claim_timeout = claim_timeout
        self.max_attempts = max_attempts
        self.poll_interval = poll_interval
        self._engine_name = engine if isinstance(engine, str) else engine.name
        self._engine: TranscriptionEngine | None = None if isinstance(engine, str) else engine
        self._engine_lock = asyncio.Lock()
        self._slots = asyncio.Semaphore(concurrency)
        self._concurrency = concurrency
        self._wakeup = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()

    def wake(self) -> None:
        """A job was queued: look now rather than at the next poll. Safe from any task."""
        self._wakeup.set()

    async def run(self) -> None:
        """Claim and run jobs until cancelled; running jobs are cancelled with it (their
        claims lapse and another worker takes them over)."""
        try:
            while True:
                self._wakeup.clear()
                try:
                    await self._start_jobs()
                except (SQLAlchemyError, OSError):
                    # The database is away: jobs wait in it, so try again at the next poll.
                    log.exception("cannot claim transcription jobs")
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_interval):
                        await self._wakeup.wait()
        finally:
            for task in self._running:
                task.cancel()
            await asyncio.gather(*self._running, return_exceptions=True)

    async def run_pending(self) -> int:
        """Run every job that can be claimed now and wait for them; answer how many ran."""
        ran = 0
        while claims := await self._claim(self._concurrency):
            ran += len(claims)
            await asyncio.gather(*(self._run_job(claim) for claim in claims))
        return ran

    async def _start_jobs(self) -> None:
        free = self._concurrency - len(self._running)
        if free <= 0:
            return
        for claim in await self._claim(free):
            task = asyncio.create_task(self._run_job(claim))
            self._running.add(task)
            task.add_done_callback(self._job_done)

    def _job_done(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._wakeup.set()  # a slot is free

    # --- claiming -------------------------------------------------------------------------

    def _claimable(self) -> ColumnElement[bool]:
        stale = utcnow() - self.claim_timeout
        return or_(
            Transcription.status == "queued",
            (Transcription.status == "running") & (Transcription.claimed_at < stale),
        )

    async def _claim(self, limit: int) -> list[_Claim]:
        """Take up to ``limit`` jobs: queued ones, or running ones whose claim lapsed.
        Each claim is a conditional UPDATE, so two workers never hold the same job."""
        async with self.database.transaction() as session:
            candidates = (
                await session.scalars(
                    select(Transcription.id)
                    .where(self._claimable())
                    .order_by(Transcription.created_at)
                    .limit(limit)
                )
            ).all()
        claims = []
        for transcription_id in candidates:
            async with self.database.transaction() as session:
                taken = await session.execute(
                    update(Transcription)
                    .where(Transcription.id == transcription_id, self._claimable())
                    .values(
                        status="running",
                        claimed_at=utcnow(),
                        attempts=Transcription.attempts + 1,
                    )
                )
                if rows_changed(taken) != 1:
                    continue  # another worker was first
                attempt = await session.scalar(
                    select(Transcription.attempts).where(Transcription.id == transcription_id)
                )
            claims.append(_Claim(transcription_id, int(attempt or 0)))
        return claims

    # --- one job --------------------------------------------------------------------------

    async def _run_job(self, claim: _Claim) -> None:
        async with self._slots:
            try:
                heard = await self._transcribe(claim)
            except _JobFailed as exc:
                await self._finish(claim, failure=str(exc))
            except Exception as exc:  # any bug ends the job as failed, never stuck
                log.exception("transcription %s failed unexpectedly", claim.transcription_id)
                await self._finish(claim, failure=f"internal error: {type(exc).__name__}")
            else:
                await self._finish(claim, heard=heard)

    async def _transcribe(self, claim: _Claim) -> _Heard:
        if claim.attempt > self.max_attempts:
            raise _JobFailed(f"gave up after {self.max_attempts} attempts")
        async with self.database.transaction() as session:
            job = await session.get_one(Transcription, claim.transcription_id)
            recording = await session.get_one(Recording, job.recording_id)
            workspace = await session.get_one(Workspace, job.workspace_id)
            if recording.status != "ready" or recording.storage_key is None:
                raise _JobFailed(f"the recording is {recording.status}, not stored")
            price = price_for(
                recording.duration_seconds or 0, self.settings.default_transcription_rate_minor
            )
            if await available(session, workspace.id) < price:
                raise _JobFailed("the wallet cannot pay for the transcription")
        try:
            data = await self.stores.for_workspace(workspace).get_bytes(recording.storage_key)
            # A recording of a wideband call stays 16 kHz: Whisper hears its upper band.
            rate, channels = await asyncio.to_thread(
                load_recording_channels, data, CONTENT_TYPES[recording.format]
            )
            if len(channels) > len(DUAL_SPEAKERS):
                raise _JobFailed(f"the recording has {len(channels)} channels, not one or two")
            engine = await self._loaded_engine()
            started = time.perf_counter()
            transcripts = [
                await asyncio.to_thread(engine.transcribe, samples, sample_rate=rate)
                for samples in channels
            ]
            if recording.duration_seconds:
                work = time.perf_counter() - started
                COUNTERS.transcription_rtf.observe(work / recording.duration_seconds)
        except (StorageError, AudioFormatError, TranscriptionError) as exc:
            raise _JobFailed(str(exc)) from exc
        stored = channel_transcripts(transcripts)
        return _Heard(
            conversation_text(stored),
            transcripts[0].engine,
            transcripts[0].language or None,
            stored,
        )

    async def _loaded_engine(self) -> TranscriptionEngine:
        async with self._engine_lock:
            if self._engine is None:
                engine = await asyncio.to_thread(create_engine, self._engine_name, self.model_path)
                await asyncio.to_thread(engine.load)
                self._engine = engine
            return self._engine

    async def _finish(
        self,
        claim: _Claim,
        *,
        heard: _Heard | None = None,
        failure: str | None = None,
    ) -> None:
        """End the job, if this claim still holds it: row, charge, event and the app's
        transcribeCallback (a delivery, retried like the event) in one transaction."""
        try:
            await self._complete(claim, heard, failure)
        except InsufficientFunds:
            await self._complete(claim, None, "the wallet cannot pay for it")

    async def _complete(self, claim: _Claim, heard: _Heard | None, failure: str | None) -> None:
        async with self.database.transaction() as session:
            job = await session.scalar(
                select(Transcription)
                .where(Transcription.id == claim.transcription_id)
                .with_for_update()
            )
            if job is None or job.status != "running" or job.attempts != claim.attempt:
                log.info("transcription %s was taken over; dropping this result", claim)
                return
            recording = await session.get_one(Recording, job.recording_id)
            if heard is None and failure is None:
                failure = "internal error: no transcript"
            if heard is not None and failure is None:
                await charge_transcription(
                    session,
                    job.workspace_id,
                    recording.id,
                    recording.duration_seconds or 0,
                    settings=self.settings,
                )
            done = heard if failure is None else None
            job.status = "failed" if done is None else "completed"
            COUNTERS.transcriptions[job.status] += 1
            job.text = done.text if done is not None else None
            job.language = done.language if done is not None else None
            job.channels = done.channels if done is not None else None
            job.error = failure
            job.engine = heard.engine if heard is not None else self._engine_name
            job.completed_at = utcnow()
            event = await record_call_event(
                session,
                call_id=recording.call_id,
                kind="call.transcription.ready",
                data=transcription_data(job, recording),
            )
            if recording.transcribe_callback is None:
                return
            fields: dict[str, str | int] = {
                "CallId": recording.call_id,
                "WorkspaceId": job.workspace_id,
                "RecordingSid": recording.id,
                "TranscriptionSid": job.id,
                "TranscriptionStatus": job.status,
                "TranscriptionText": job.text or "",
            }
            encoding = await callback_encoding(session, job.workspace_id, call_id=recording.call_id)
            await add_callback_delivery(
                session,
                event,
                url=recording.transcribe_callback,
                method="POST",
                fields=fields,
                encoding=encoding,
            )


def transcription_data(job: Transcription, recording: Recording) -> dict[str, Any]:
    """The ``call.transcription.ready`` payload."""
    return {
        "transcription_id": job.id,
        "recording_id": recording.id,
        "call_id": recording.call_id,
        "status": job.status,
        "text": job.text,
        "engine": job.engine,
        "error": job.error,
    }
