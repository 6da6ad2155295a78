"""``POST /v1/calls`` with ``record: true`` (SPEC §5): the call recorded from its answer.

Both parties, in two channels, as a ``dial`` with ``record-from-answer`` records them: the
callee on the left, what the callee hears on the right (the app's prompts, and the party
a ``dial`` bridges in). It goes through the recording pipeline like every recording: the
row (``source: api``) exists before any audio, the spool is written as the call runs, and
at hangup it is finished, stored and announced with ``call.recording.ready``; after a
crash, recovery finishes and uploads the spool the dead process left.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from sautikit.media import ChannelClosed, RecordingHandle
from sautikit.recordings.pipeline import RecordingPipeline
from sautikit.voice.control import RecordResult
from sautikit.voice.live import CallHost, LiveCall

__all__ = ["RECORD_FROM_ANSWER", "CallRecording"]

log = logging.getLogger(__name__)

RECORD_FROM_ANSWER = "record-from-answer"
"""``Call.record`` of an API call placed with ``record: true``."""


class CallRecording:
    """One API call's recording, from the answer until :meth:`finish`."""

    def __init__(
        self, live: LiveCall, recordings: RecordingPipeline, path: Path, handle: RecordingHandle
    ) -> None:
        self.live = live
        self.recordings = recordings
        self.path = path
        self.handle = handle

    @classmethod
    async def start(
        cls, host: CallHost, recordings: RecordingPipeline, live: LiveCall
    ) -> CallRecording | None:
        """Open the row and start writing; None when the call ended as it answered."""
        path = await host.begin_recording(live, "api", channels=2)
        try:
            handle = live.channel.start_recording(path, 2)
        except ChannelClosed:
            await recordings.discard(RecordResult(path, 0.0, 2, "hangup", empty=True))
            return None
        if live.recording is None:  # the API's pause/resume/stop reach it
            live.recording = handle
        return cls(live, recordings, path, handle)

    async def finish(self) -> None:
        """Close the spool and hand it to the pipeline (stored, then announced)."""
        seconds = self.handle.stop()
        await self.handle.finished()
        if self.live.recording is self.handle:
            self.live.recording = None
        result = RecordResult(self.path, seconds, 2, "hangup")
        try:
            await self.recordings.recording_finished(
                self.live, result, source="api", transcribe=False, transcribe_callback=None
            )
        except Exception:
            # The row and the spool stay: recovery stores them at the next start.
            log.exception("call %s: storing its recording failed", self.live.call_id)

    async def finish_shielded(self) -> None:
        """:meth:`finish`, carried through even if the caller is cancelled (shutdown)."""
        await asyncio.shield(self.finish())
