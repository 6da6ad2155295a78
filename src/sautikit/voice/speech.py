"""Speech input for ``getDigits``/``gather``: hear one utterance, end it, transcribe it.

A :class:`SpeechCollector` taps the call (:meth:`CallControl.add_media_tap`) and runs a
small explicit state machine over the caller's 20 ms frames, with the voice-activity
detector of :mod:`sautikit.speech.vad`:

* ``WAITING`` — no speech yet. :data:`SPEECH_START_FRAMES` voiced frames in a row start
  the utterance (a click or a cough is shorter); ``timeout`` seconds without that end the
  collection with nothing heard.
* ``SPEAKING`` — the utterance runs until ``speech_timeout`` seconds of silence (``auto``:
  :data:`AUTO_SPEECH_TIMEOUT`, a pause at the end of a sentence) or :data:`MAX_UTTERANCE`
  seconds; its audio, from a little before the start, is kept.
* ``DONE`` — the audio goes to the offline recognizer (Whisper, the engine that makes
  transcripts) in a thread, with the app's ``hints``. To answer sooner, the words so far
  are transcribed as soon as 0.2 s of silence follows speech; when that silence becomes
  the end of the utterance, that transcription is the answer (speech that resumes makes
  it stale, and it is dropped).

While the caller speaks, ``on_partial`` (the ``partialResultCallback``) is given the words
of the utterance so far about once a second, one transcription at a time. Timing is
counted in frames, so it moves with the audio.
"""

from __future__ import annotations

import asyncio
import enum
import threading
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from sautikit.media.audio import FRAME_DURATION
from sautikit.recordings.transcription import (
    Transcript,
    TranscriptionEngine,
    TranscriptionError,
    WhisperEngine,
)
from sautikit.speech.vad import VoiceActivityDetector
from sautikit.voice.control import CallControl, Int16Array

__all__ = [
    "AUTO_SPEECH_TIMEOUT",
    "MAX_UTTERANCE",
    "SPEECH_START_FRAMES",
    "SpeechCollector",
    "SpeechResult",
    "SpeechState",
    "shared_recognizer",
]

AUTO_SPEECH_TIMEOUT: Final = 0.5
"""Seconds of silence that end an utterance with ``speechTimeout: "auto"``."""
MAX_UTTERANCE: Final = 60.0
"""The longest utterance kept, in seconds."""
SPEECH_START_FRAMES: Final = 3
"""Voiced 20 ms frames in a row that count as speech starting."""
_LEAD_FRAMES: Final = 15  # 0.3 s kept before the start: soft onsets
_PARTIAL_EVERY_FRAMES: Final = 50  # about once a second
# After this much silence the words so far are transcribed ahead of the end of the
# utterance: if the silence lasts, the end needs no transcription of its own.
_EARLY_TRANSCRIPTION_FRAMES: Final = 10

_recognizer_lock = threading.Lock()
_recognizer: TranscriptionEngine | None = None


def shared_recognizer() -> TranscriptionEngine:
    """The process's one offline recognizer (Whisper tiny.en on one core), made on first
    use; its model loads on the first transcription."""
    global _recognizer
    with _recognizer_lock:
        if _recognizer is None:
            _recognizer = WhisperEngine()
        return _recognizer


class SpeechState(enum.Enum):
    WAITING = "waiting"
    SPEAKING = "speaking"
    DONE = "done"


@dataclass(frozen=True, slots=True)
class SpeechResult:
    """What the caller said: empty ``text`` when nothing (or nothing intelligible) was."""

    text: str
    confidence: float
    heard_speech: bool


class SpeechCollector:
    """Collects one utterance from ``call``; :meth:`collect` answers what was said."""

    def __init__(
        self,
        call: CallControl,
        *,
        timeout: float,
        speech_timeout: float | None,
        hints: Sequence[str] = (),
        recognizer: TranscriptionEngine | None = None,
        on_partial: Callable[[str, int], None] | None = None,
    ) -> None:
        self.call = call
        self.hints = tuple(hints)
        self.recognizer = recognizer or shared_recognizer()
        self.on_partial = on_partial
        self.state = SpeechState.WAITING
        self._wait_frames = max(1, round(timeout / FRAME_DURATION))
        self._silence_frames = max(
            1, round((speech_timeout or AUTO_SPEECH_TIMEOUT) / FRAME_DURATION)
        )
        self._max_frames = round(MAX_UTTERANCE / FRAME_DURATION)
        self._vad = VoiceActivityDetector()
        self._lead: deque[Int16Array] = deque(maxlen=_LEAD_FRAMES)
        self._utterance: list[Int16Array] = []
        self._frames = 0
        self._voiced_run = 0
        self._quiet_run = 0
        self._partials = 0
        self._partial_busy = False
        self._early: asyncio.Task[Transcript | None] | None = None
        # Transcriptions in flight (early, partial): held so none is collected half-way.
        self._background: set[asyncio.Task[Transcript | None]] = set()
        self._ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.ended_at: float | None = None
        """When (loop time) the end of speech was detected."""

    @property
    def speaking(self) -> bool:
        """Whether the caller has started an utterance."""
        return self.state is not SpeechState.WAITING

    # --- the tap (media tick) -------------------------------------------------------------

    def next_frame(self) -> Int16Array | None:
        return None

    def on_digit(self, digit: str) -> None:
        pass  # keys are the digit collector's

    def on_frame(self, inbound: Int16Array, outbound: Int16Array) -> None:
        if self.state is SpeechState.DONE:
            return
        self._frames += 1
        voiced = self._vad.is_speech(inbound)
        if self.state is SpeechState.WAITING:
            self._lead.append(inbound)
            self._voiced_run = self._voiced_run + 1 if voiced else 0
            if self._voiced_run >= SPEECH_START_FRAMES:
                self.state = SpeechState.SPEAKING
                self._utterance = list(self._lead)
                self._quiet_run = 0
            elif self._frames >= self._wait_frames:
                self._finish()
            return
        self._utterance.append(inbound)
        self._quiet_run = 0 if voiced else self._quiet_run + 1
        if voiced and self._early is not None:
            self._early = None  # the caller went on: that early transcription is stale
        if self._quiet_run == _EARLY_TRANSCRIPTION_FRAMES and self._early is None:
            audio = np.concatenate(self._utterance)
            self._early = self._in_background(self._transcribe(audio))
        if self._quiet_run >= self._silence_frames or len(self._utterance) >= self._max_frames:
            self._finish()
        elif self.on_partial is not None and len(self._utterance) % _PARTIAL_EVERY_FRAMES == 0:
            self._partial()

    def _finish(self) -> None:
        self.state = SpeechState.DONE
        self.ended_at = asyncio.get_running_loop().time()
        if not self._ended.done():
            self._ended.set_result(None)

    def _partial(self) -> None:
        if self._partial_busy:
            return  # one partial transcription at a time; skip this one
        self._partial_busy = True
        self._partials += 1
        audio = np.concatenate(self._utterance)
        sequence = self._partials
        task = self._in_background(self._transcribe(audio))

        def done(finished: asyncio.Task[Transcript | None]) -> None:
            self._partial_busy = False
            result = None if finished.cancelled() else finished.result()
            listening = self.state is not SpeechState.DONE and self.on_partial is not None
            if result is not None and result.text and listening:
                assert self.on_partial is not None
                self.on_partial(result.text, sequence)

        task.add_done_callback(done)

    def _in_background(
        self, work: Coroutine[Any, Any, Transcript | None]
    ) -> asyncio.Task[Transcript | None]:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def _transcribe(self, audio: Int16Array) -> Transcript | None:
        try:
            return await asyncio.to_thread(self.recognizer.transcribe, audio, self.hints)
        except TranscriptionError:
            return None

    # --- collecting -----------------------------------------------------------------------

    async def collect(self) -> SpeechResult:
        """Listen until the utterance ends (or none starts in time), then transcribe it.
        Cancelling stops listening. Raises CallEnded if the call's media is gone."""
        self.call.add_media_tap(self)
        try:
            while not self._ended.done():
                if self.call.ended:
                    self._finish()
                    break
                # Wake now and then to notice a call that ended under us.
                await asyncio.wait({self._ended}, timeout=0.5)
        finally:
            self.call.remove_media_tap(self)
        if not self._utterance:
            return SpeechResult("", 0.0, heard_speech=False)
        early = self._early
        if early is not None and self._quiet_run >= _EARLY_TRANSCRIPTION_FRAMES:
            transcript = await early  # the words before this silence are all the words
        else:
            transcript = await self._transcribe(np.concatenate(self._utterance))
        if transcript is None:
            return SpeechResult("", 0.0, heard_speech=True)
        return SpeechResult(transcript.text, transcript.confidence, heard_speech=True)
