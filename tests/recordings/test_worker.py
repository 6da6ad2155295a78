"""The transcription worker: jobs end completed or failed, are charged once, reach the app
as the transcribeCallback and an event, and a lapsed claim is taken over."""

from __future__ import annotations

import asyncio
import shutil
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select, update
from tests.events.support import FakeClock
from tests.recordings.conftest import Rig
from tests.recordings.support import fake_call, write_spool

from sautikit.billing.ledger import top_up
from sautikit.db.models import Delivery, Event, Transcription, WalletEntry
from sautikit.db.types import utcnow
from sautikit.events.delivery import DeliveryWorker, fan_out
from sautikit.media.audio import SAMPLE_RATE, WavSpoolWriter, load_wav
from sautikit.recordings.transcription import Transcript, TranscriptionError
from sautikit.recordings.worker import TranscriptionWorker
from sautikit.voice.control import RecordResult

CLIPS = Path(__file__).parents[2] / "benchmarks" / "clips"
CLIP = CLIPS / "01-call-back.wav"


class ScriptedEngine:
    """An engine that answers ``text``, or raises when ``text`` is None."""

    name = "scripted"

    def __init__(self, text: str | None) -> None:
        self.text = text
        self.heard: list[int] = []

    def load(self) -> None:
        pass

    def transcribe(self, samples: np.ndarray, *, sample_rate: int = 8000) -> Transcript:
        self.heard.append(len(samples))
        if self.text is None:
            raise TranscriptionError("the model fell over")
        return Transcript(self.text, "en", len(samples) / sample_rate, self.name)


async def _fund(rig: Rig, amount: int = 10_000) -> None:
    async with rig.database.transaction() as session:
        await top_up(session, rig.workspace_id, amount, idempotency_key="test-credit")


async def _recording(
    rig: Rig, *, clip: Path | None = None, dual: np.ndarray | None = None
) -> tuple[str, str]:
    """A ready recording that asked for a transcript; answers (call id, recording id).
    ``dual`` is a (frames, 2) array for a two-channel recording."""
    call_id = await rig.new_call()
    callback = rig.app.url + "/transcript"
    _, spool = await rig.pipeline.begin(
        call_id,
        rig.workspace_id,
        "dial" if dual is not None else "record",
        transcribe=True,
        transcribe_callback=callback,
        channels=2 if dual is not None else 1,
    )
    if dual is not None:
        with WavSpoolWriter(spool, channels=2) as writer:
            writer.write(dual)
    elif clip is None:
        write_spool(spool, 2.0)
    else:
        shutil.copyfile(clip, spool)
    info = await rig.pipeline.recording_finished(
        fake_call(call_id, rig.workspace_id),
        RecordResult(spool, 2.0, 2 if dual is not None else 1, "silence"),
        source="record",
        transcribe=True,
        transcribe_callback=callback,
    )
    return call_id, info.sid


def _worker(rig: Rig, engine: ScriptedEngine | str, **options: object) -> TranscriptionWorker:
    return TranscriptionWorker(
        rig.database,
        rig.settings,
        rig.stores,
        engine=engine,
        **options,  # type: ignore[arg-type]
    )


async def _job(rig: Rig, recording_id: str) -> Transcription:
    async with rig.database.transaction() as session:
        job = await session.scalar(
            select(Transcription).where(Transcription.recording_id == recording_id)
        )
    assert job is not None
    return job


async def _charges(rig: Rig) -> list[int]:
    async with rig.database.transaction() as session:
        return [
            entry.amount_minor
            for entry in await session.scalars(
                select(WalletEntry).where(WalletEntry.entry_type == "transcription")
            )
        ]


async def _callbacks(rig: Rig, clock: FakeClock | None = None) -> list[dict[str, str]]:
    """The transcribeCallbacks the app got, once the event delivery worker (which carries
    them, with their retries) has had a round."""
    async with DeliveryWorker(
        rig.database, rig.settings, http=rig.http, clock=clock or utcnow
    ) as worker:
        await worker.run_once()
    return [r.fields for r in rig.app.received if r.path.endswith("/transcript")]


async def test_a_transcript_is_stored_charged_announced_and_posted(rig: Rig) -> None:
    await _fund(rig)
    call_id, recording_id = await _recording(rig)
    engine = ScriptedEngine("please call me back")

    assert await _worker(rig, engine).run_pending() == 1

    job = await _job(rig, recording_id)
    assert (job.status, job.text, job.engine, job.attempts) == (
        "completed",
        "please call me back",
        "scripted",
        1,
    )
    assert engine.heard == [16000]
    assert await _charges(rig) == [-4]  # ceil(2 s × KES 1.00/min)
    async with rig.database.transaction() as session:
        (event,) = await session.scalars(
            select(Event).where(Event.kind == "call.transcription.ready")
        )
    assert event.data["text"] == "please call me back" and event.call_id == call_id
    (callback,) = await _callbacks(rig)
    assert callback == {
        "CallId": call_id,
        "WorkspaceId": rig.workspace_id,
        "RecordingSid": recording_id,
        "TranscriptionSid": job.id,
        "TranscriptionStatus": "completed",
        "TranscriptionText": "please call me back",
    }


async def test_an_engine_failure_ends_failed_and_costs_nothing(rig: Rig) -> None:
    await _fund(rig)
    _, recording_id = await _recording(rig)

    await _worker(rig, ScriptedEngine(None)).run_pending()

    job = await _job(rig, recording_id)
    assert job.status == "failed" and "fell over" in (job.error or "")
    assert await _charges(rig) == []
    (callback,) = await _callbacks(rig)
    assert callback["TranscriptionStatus"] == "failed"
    assert callback["TranscriptionText"] == ""


async def test_an_empty_wallet_fails_the_job_before_the_engine_runs(rig: Rig) -> None:
    _, recording_id = await _recording(rig)
    engine = ScriptedEngine("unpaid")

    await _worker(rig, engine).run_pending()

    job = await _job(rig, recording_id)
    assert job.status == "failed" and "wallet" in (job.error or "")
    assert engine.heard == []


async def test_a_lapsed_claim_is_taken_over_and_a_fresh_one_is_not(rig: Rig) -> None:
    await _fund(rig)
    _, recording_id = await _recording(rig)
    worker = _worker(rig, ScriptedEngine("taken over"), claim_timeout=timedelta(minutes=5))
    async with rig.database.transaction() as session:
        await session.execute(
            update(Transcription).values(status="running", claimed_at=utcnow(), attempts=1)
        )

    assert await worker.run_pending() == 0  # a live claim is left to its worker

    async with rig.database.transaction() as session:
        await session.execute(
            update(Transcription).values(claimed_at=utcnow() - timedelta(minutes=6))
        )
    assert await worker.run_pending() == 1

    job = await _job(rig, recording_id)
    assert (job.status, job.text, job.attempts) == ("completed", "taken over", 2)
    assert len(await _callbacks(rig)) == 1


async def test_a_job_that_keeps_dying_fails_after_its_attempts(rig: Rig) -> None:
    await _fund(rig)
    _, recording_id = await _recording(rig)
    async with rig.database.transaction() as session:
        await session.execute(
            update(Transcription).values(
                status="running", claimed_at=utcnow() - timedelta(hours=1), attempts=3
            )
        )

    await _worker(rig, ScriptedEngine("never"), max_attempts=3).run_pending()

    job = await _job(rig, recording_id)
    assert job.status == "failed" and "gave up after 3 attempts" in (job.error or "")


async def test_the_running_worker_wakes_when_a_job_is_queued(rig: Rig) -> None:
    await _fund(rig)
    worker = _worker(rig, ScriptedEngine("woken"), poll_interval=3600)
    rig.pipeline.on_transcription_queued = worker.wake
    running = asyncio.create_task(worker.run())
    try:
        _, recording_id = await _recording(rig)
        async with asyncio.timeout(10):
            while not await _callbacks(rig):  # noqa: ASYNC110 - each round is a delivery pass
                await asyncio.sleep(0.05)
    finally:
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
    assert (await _job(rig, recording_id)).text == "woken"


async def test_whisper_transcribes_a_spoken_clip(rig: Rig) -> None:
    await _fund(rig)
    _, recording_id = await _recording(rig, clip=CLIP)

    await _worker(rig, "whisper").run_pending()

    job = await _job(rig, recording_id)
    assert job.status == "completed" and job.engine == "whisper"
    assert "call me back" in (job.text or "").lower()


async def test_a_dual_recording_is_transcribed_per_party_with_timed_words(rig: Rig) -> None:
    await _fund(rig)
    caller = load_wav(CLIPS / "01-call-back.wav")  # "Please call me back tomorrow morning."
    callee = load_wav(CLIPS / "05-new-number.wav")  # "My phone number has changed since ..."
    # The caller speaks first; the callee answers after a 4 s pause on the caller's side.
    callee_starts = len(caller) + 4 * SAMPLE_RATE
    frames = callee_starts + len(callee) + SAMPLE_RATE
    dual = np.zeros((frames, 2), np.int16)
    dual[: len(caller), 0] = caller
    dual[callee_starts : callee_starts + len(callee), 1] = callee
    _, recording_id = await _recording(rig, dual=dual)

    await _worker(rig, "whisper").run_pending()

    job = await _job(rig, recording_id)
    assert job.status == "completed" and job.language == "en"
    assert job.channels is not None
    assert [channel["speaker"] for channel in job.channels] == ["caller", "callee"]
    caller_words = job.channels[0]["words"]
    callee_words = job.channels[1]["words"]
    assert "call me back" in job.channels[0]["text"].lower()
    assert "since last week" in job.channels[1]["text"].lower()
    # Words are in order, inside the audio, and where each party spoke.
    for words in (caller_words, callee_words):
        starts = [word["start"] for word in words]
        assert starts == sorted(starts)
        assert all(0 <= word["start"] <= word["end"] <= frames / SAMPLE_RATE for word in words)
        assert all(0.0 <= word["confidence"] <= 1.0 for word in words)
    assert caller_words[-1]["end"] <= callee_starts / SAMPLE_RATE + 0.3
    assert callee_words[0]["start"] >= callee_starts / SAMPLE_RATE - 0.5
    lines = (job.text or "").splitlines()
    assert [line.split(":")[0] for line in lines] == ["Caller", "Callee"]
    assert (await _callbacks(rig))[0]["TranscriptionText"] == job.text


async def test_a_transcript_callback_that_fails_is_retried_like_an_event(rig: Rig) -> None:
    await _fund(rig)
    await _recording(rig)
    await _worker(rig, ScriptedEngine("please call me back")).run_pending()
    rig.app.answers[:] = [500, 500]  # the app is down for the first round's requests
    clock = FakeClock(utcnow())
    await _callbacks(rig, clock)  # answered 500: kept, and retried on the events' schedule
    clock.advance(3600)
    first, again = await _callbacks(rig, clock)
    assert first == again and again["TranscriptionText"] == "please call me back"
    tries = [r for r in rig.app.received if r.path.endswith("/transcript")]
    assert tries[1].headers["content-type"] == "application/x-www-form-urlencoded"
    async with rig.database.sessions() as session:
        (delivery,) = await session.scalars(select(Delivery).where(Delivery.callback.is_not(None)))
    assert (delivery.status, delivery.attempts) == ("delivered", 2)
    async with rig.database.transaction() as session:  # POST /v1/events/{id}/redeliver
        event = await session.get_one(Event, delivery.event_id)
        again = await fan_out(session, event, utcnow(), callbacks=True)
    assert [(d.url, d.callback) for d in again if d.callback] == [(delivery.url, delivery.callback)]
