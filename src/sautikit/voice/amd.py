"""Answering-machine detection: who (or what) picked up an outbound call.

:class:`MachineDetector` hears the callee's first seconds, 20 ms frame by frame, and
answers an ``AnsweredBy`` value as Twilio names them:

* ``human`` — a short greeting ("Hello?", "Yes, speaking") followed by silence: a person
  waits for the caller to talk;
* ``machine_start`` — a greeting that runs on past ``speech_threshold`` (a recorded
  message); with ``DetectMessageEnd`` the detector goes on to the end of the message:
  ``machine_end_beep`` (the beep after which one may leave a message),
  ``machine_end_silence`` (the greeting ended in silence, no beep), or
  ``machine_end_other`` (``timeout`` ran out first);
* ``fax`` — a fax machine's calling tone (1100 Hz);
* ``unknown`` — nothing but silence for ``silence_timeout``, or ``timeout`` ran out.

The rules, as an explicit state machine over frames (``LISTENING`` → ``SPEAKING`` ↔
``PAUSED`` → ``MESSAGE`` → ``DONE``) — speech from the voice-activity detector of
:mod:`sautikit.speech.vad`, tones from the frame's spectrum:

1. Silence from the start for ``silence_timeout`` → ``unknown``.
2. Speech that lasts ``speech_threshold`` in total (pauses under ``speech_end_threshold``
   do not break it) → a machine.
3. Speech shorter than that, then ``speech_end_threshold`` of silence → ``human``.
4. A steady tone (one frequency holding most of the energy) for 160 ms: 1100 Hz → ``fax``;
   after a machine's greeting, any tone from 400 to 2500 Hz → ``machine_end_beep``.

Timings are Twilio's parameters, with its defaults (seconds here): ``timeout`` 30,
``speech_threshold`` 2.4, ``speech_end_threshold`` 1.2, ``silence_timeout`` 5.
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np

from sautikit.media.audio import FRAME_DURATION, FRAME_SAMPLES, SAMPLE_RATE
from sautikit.speech.vad import VoiceActivityDetector
from sautikit.voice.control import CallControl, Int16Array

__all__ = [
    "ANSWERED_BY",
    "AmdSettings",
    "AnsweredBy",
    "DetectorState",
    "MachineDetector",
    "classify",
    "detect_answering_machine",
]

AnsweredBy = Literal[
    "human",
    "machine_start",
    "machine_end_beep",
    "machine_end_silence",
    "machine_end_other",
    "fax",
    "unknown",
]
ANSWERED_BY: Final[tuple[AnsweredBy, ...]] = (
    "human",
    "machine_start",
    "machine_end_beep",
    "machine_end_silence",
    "machine_end_other",
    "fax",
    "unknown",
)

_TONE_FRAMES: Final = 8  # 160 ms of one steady tone
_TONE_PURITY: Final = 0.6  # share of the frame's energy in the strongest bin and its neighbours
_TONE_MIN_DBFS: Final = -35.0
_FAX_HZ: Final = (1000.0, 1200.0)  # CNG is 1100 Hz
_BEEP_HZ: Final = (400.0, 2500.0)


@dataclass(frozen=True, slots=True)
class AmdSettings:
    """``machineDetection`` and its timings (seconds)."""

    detect_message_end: bool = False
    timeout: float = 30.0
    speech_threshold: float = 2.4
    speech_end_threshold: float = 1.2
    silence_timeout: float = 5.0


class DetectorState(enum.Enum):
    LISTENING = "listening"  # nothing heard yet
    SPEAKING = "speaking"
    PAUSED = "paused"  # speech heard, now silence (a human's wait, or a pause in a greeting)
    MESSAGE = "message"  # a machine: waiting for the end of its greeting
    DONE = "done"


def _tone(frame: Int16Array) -> float | None:
    """The frequency of a steady tone filling ``frame``, or None."""
    samples = frame.astype(np.float64)
    energy = float(np.mean(samples * samples))
    if energy <= 0 or 10 * np.log10(energy / 32768.0**2) < _TONE_MIN_DBFS:
        return None
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples)))) ** 2
    peak = int(np.argmax(spectrum[1:])) + 1
    band = spectrum[max(1, peak - 1) : peak + 2].sum()
    if band / spectrum[1:].sum() < _TONE_PURITY:
        return None
    return peak * SAMPLE_RATE / len(samples)


class MachineDetector:
    """Classifies the callee from its audio; feed frames with :meth:`feed` until
    :attr:`answered_by` is set (then :attr:`state` is ``DONE``)."""

    def __init__(self, settings: AmdSettings = AmdSettings()) -> None:
        self.settings = settings
        self.state = DetectorState.LISTENING
        self.answered_by: AnsweredBy | None = None
        self.machine_detected_at: float | None = None
        """Seconds into the call when it was found to be a machine (``machine_start``)."""
        self._vad = VoiceActivityDetector(aggressiveness=3)
        self._frames = 0
        self._speech_frames = 0
        self._quiet_frames = 0
        self._tone_frames = 0
        self._tone_hz: float | None = None

    def _ticks(self, seconds: float) -> int:
        return max(1, round(seconds / FRAME_DURATION))

    @property
    def elapsed(self) -> float:
        return self._frames * FRAME_DURATION

    def _decide(self, answer: AnsweredBy) -> AnsweredBy:
        self.answered_by = answer
        self.state = DetectorState.DONE
        return answer

    def _machine(self) -> AnsweredBy | None:
        self.machine_detected_at = self.elapsed
        if not self.settings.detect_message_end:
            return self._decide("machine_start")
        self.state = DetectorState.MESSAGE
        self._quiet_frames = 0
        return None

    def _steady_tone(self, frame: Int16Array) -> float | None:
        """The tone's frequency once one has held for 160 ms."""
        hz = _tone(frame)
        if hz is not None and self._tone_hz is not None and abs(hz - self._tone_hz) <= 60:
            self._tone_frames += 1
        else:
            self._tone_frames = 1 if hz is not None else 0
        self._tone_hz = hz
        return hz if self._tone_frames >= _TONE_FRAMES else None

    def feed(self, frame: Int16Array) -> AnsweredBy | None:
        """One 20 ms frame of the callee; answers the verdict once there is one."""
        if self.state is DetectorState.DONE:
            return self.answered_by
        settings = self.settings
        self._frames += 1
        tone = self._steady_tone(frame)
        if (
            tone is not None
            and _FAX_HZ[0] <= tone <= _FAX_HZ[1]
            and self.state is not DetectorState.MESSAGE
        ):
            return self._decide("fax")
        voiced = tone is None and self._vad.is_speech(frame)
        beep = tone is not None and _BEEP_HZ[0] <= tone <= _BEEP_HZ[1]
        if beep and self.state in (DetectorState.SPEAKING, DetectorState.PAUSED):
            # A short greeting and a beep: a machine, and its message is over already.
            self.machine_detected_at = self.elapsed
            return self._decide(
                "machine_end_beep" if settings.detect_message_end else "machine_start"
            )
        if self.state is DetectorState.MESSAGE:
            if beep:
                return self._decide("machine_end_beep")
            self._quiet_frames = 0 if voiced or self._tone_frames else self._quiet_frames + 1
            if self._quiet_frames >= self._ticks(settings.speech_end_threshold):
                return self._decide("machine_end_silence")
        elif voiced:
            self.state = DetectorState.SPEAKING
            self._speech_frames += 1
            self._quiet_frames = 0
            if self._speech_frames >= self._ticks(settings.speech_threshold):
                return self._machine()
        elif self.state is DetectorState.LISTENING:
            if self._frames >= self._ticks(settings.silence_timeout):
                return self._decide("unknown")
        else:  # silence after speech
            self.state = DetectorState.PAUSED
            self._quiet_frames += 1
            if self._quiet_frames >= self._ticks(settings.speech_end_threshold):
                return self._decide("human")
        if self._frames >= self._ticks(settings.timeout):
            late: AnsweredBy = (
                "machine_end_other" if self.state is DetectorState.MESSAGE else "unknown"
            )
            return self._decide(late)
        return None

    def finish(self) -> AnsweredBy:
        """The verdict when the audio ran out (the callee hung up) before one was reached."""
        if self.answered_by is not None:
            return self.answered_by
        if self.state is DetectorState.MESSAGE:
            return self._decide("machine_end_other")
        if self.state is DetectorState.PAUSED:
            return self._decide("human")
        return self._decide("unknown")


def classify(samples: Int16Array, settings: AmdSettings = AmdSettings()) -> AnsweredBy:
    """The verdict for a whole recording of a callee's answer (clips, tests)."""
    detector = MachineDetector(settings)
    for start in range(0, len(samples) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
        verdict = detector.feed(samples[start : start + FRAME_SAMPLES])
        if verdict is not None:
            return verdict
    return detector.finish()


class _DetectorTap:
    """Feeds the callee's frames to a detector on the media tick."""

    def __init__(self, detector: MachineDetector, decided: asyncio.Future[None]) -> None:
        self.detector = detector
        self.decided = decided

    def next_frame(self) -> Int16Array | None:
        return None

    def on_digit(self, digit: str) -> None:
        pass

    def on_frame(self, inbound: Int16Array, outbound: Int16Array) -> None:
        if self.detector.feed(inbound) is not None and not self.decided.done():
            self.decided.set_result(None)


async def detect_answering_machine(
    call: CallControl, settings: AmdSettings = AmdSettings()
) -> tuple[AnsweredBy, float]:
    """Listen to an answered call until the detector decides (or the call ends); answers
    ``AnsweredBy`` and the seconds it took (Twilio's ``MachineDetectionDuration``)."""
    detector = MachineDetector(settings)
    decided: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    tap = _DetectorTap(detector, decided)
    call.add_media_tap(tap)
    try:
        while not decided.done() and not call.ended:
            await asyncio.wait({decided}, timeout=0.5)
    finally:
        call.remove_media_tap(tap)
    return detector.finish(), detector.elapsed
