"""Finishing, at start, the recordings a crashed process left behind (SPEC §5).

A process killed while recording or uploading leaves a row in ``recording``,
``finalising`` or ``uploading`` that points at its spool file (``Recording.spool_path``,
written by :meth:`RecordingPipeline.begin` before any audio). :func:`recover_recordings`
runs each through :meth:`RecordingPipeline.store` — which repairs the WAV header with
``recover_wav``, uploads under the recording's fixed key (overwriting a half-done upload
rather than adding a copy), and writes ``call.recording.ready`` once, guarded by the row's
status — and then posts the record action's callback, since the call that would have
posted it is gone. ``callback_sent_at`` records that it went, so it goes once. A row
already ``ready`` whose callback never went (the process died between storing and posting,
or the app did not answer) gets its callback too, with a fresh URL.

Run it before the PBX takes calls: a row of a live recording of *this* process would look
unfinished too. Each process has its own spool (``data_dir/spool``); a row whose spool is
not on this machine is left for the process that has it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select, update

from sautikit.db.models import Call, Recording
from sautikit.recordings.pipeline import UNFINISHED_STATES, RecordingPipeline
from sautikit.voice.callbacks import Fields
from sautikit.voice.control import CallStatus, RecordingInfo

__all__ = ["RecoveryReport", "recover_recordings"]

log = logging.getLogger(__name__)


@dataclass
class RecoveryReport:
    """Recording ids by what recovery did with them."""

    stored: list[str] = field(default_factory=list)
    """Now ``ready`` (or found ready by a concurrent run)."""
    empty: list[str] = field(default_factory=list)
    """Nothing but a header was spooled: marked ``empty``."""
    failed: list[str] = field(default_factory=list)
    """The spool could not be finalised, or never reached the disk: marked ``failed``."""
    pending: list[str] = field(default_factory=list)
    """The store refused the upload: left ``uploading``, the next start tries again."""
    callbacks_sent: list[str] = field(default_factory=list)


async def recover_recordings(pipeline: RecordingPipeline) -> RecoveryReport:
    """Finish every unfinished recording whose spool lies in this process's spool folder."""
    report = RecoveryReport()
    async with pipeline.database.transaction() as session:
        candidates = (
            await session.scalars(
                select(Recording)
                .where(
                    Recording.status.in_(UNFINISHED_STATES)
                    | (
                        (Recording.status == "ready")
                        & Recording.action_url.is_not(None)
                        & Recording.callback_sent_at.is_(None)
                    )
                )
                .order_by(Recording.id)
            )
        ).all()
    for recording in candidates:
        spool = Path(recording.spool_path or "")
        if spool.parent != pipeline.spool_dir:
            continue  # another process's spool, or a path this pipeline did not hand out
        if recording.status == "ready":
            # Stored before the crash, but the call died before its callback was posted.
            stored = await pipeline.store(recording.id)
            if await _post_callback(pipeline, recording.id, stored.info):
                report.callbacks_sent.append(recording.id)
            continue
        if not await asyncio.to_thread(spool.is_file):
            # The row was made but the PBX died before creating the file: no audio exists.
            log.warning("recording %s: spool %s is missing; marking it failed", recording.id, spool)
            async with pipeline.database.transaction() as session:
                await session.execute(
                    update(Recording)
                    .where(Recording.id == recording.id, Recording.status.in_(UNFINISHED_STATES))
                    .values(status="failed")
                )
            report.failed.append(recording.id)
            continue
        stored = await pipeline.store(recording.id)
        log.info("recording %s recovered: %s", recording.id, stored.status)
        {"ready": report.stored, "empty": report.empty, "failed": report.failed}.get(
            stored.status, report.pending
        ).append(recording.id)
        if stored.status == "ready" and await _post_callback(pipeline, recording.id, stored.info):
            report.callbacks_sent.append(recording.id)
    return report


async def _post_callback(
    pipeline: RecordingPipeline, recording_id: str, info: RecordingInfo
) -> bool:
    """Post the record action's callback if the dead call never did; answer whether sent."""
    async with pipeline.database.transaction() as session:
        current = await session.get(Recording, recording_id)
        if current is None or current.action_url is None or current.callback_sent_at is not None:
            return False
        call = await session.get(Call, current.call_id)
    fields: Fields = {
        "CallId": current.call_id,
        "WorkspaceId": current.workspace_id,
        "From": call.from_number if call is not None else "",
        "To": call.to_number if call is not None else "",
        "Direction": call.direction if call is not None else "",
        "CallStatus": call.status if call is not None else CallStatus.COMPLETED,
        "RecordingSid": current.id,
        "RecordingUrl": info.url,
        "RecordingDuration": current.duration_seconds or 0,
        "RecordingChannels": current.channels,
        # The caller's line went down with the process: as for a hangup during a record.
        "Digits": "hangup",
    }
    client = await pipeline.app_clients(current.workspace_id, current.call_id)
    if not await client.notify(current.action_url, fields, current.action_method):
        log.warning("recording %s: the recovered callback was not taken", recording_id)
        return False
    await pipeline.mark_callback_sent(recording_id)
    return True
