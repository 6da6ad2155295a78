"""Energy-based silence detection for ``record`` (its ``timeout`` and ``trim-silence``).

Loudness is the RMS level of a 20 ms frame in dBFS, where 0 dBFS is the RMS of a full-scale
square wave (a full-scale sine reads about -3 dBFS) and digital silence reads minus infinity.
A frame is speech when it is at or above the threshold; -40 dBFS sits well above line noise
on a quiet G.711 call and well below a talker.

* :class:`SilenceDetector` is fed frames live and reports when speech starts and when
  silence has lasted the configured time (from the start of the call or the last speech).
* :func:`trim_silence` cuts leading and trailing silence from a finished recording.
"""

from __future__ import annotations

import enum

import numpy as np
import numpy.typing as npt

from sautikit.media.audio import FRAME_SAMPLES, SAMPLE_RATE

__all__ = ["SilenceDetector", "VoiceActivity", "frame_dbfs", "trim_silence"]

_FULL_SCALE = 32768.0


def _levels_dbfs(frames: npt.NDArray[np.int16]) -> npt.NDArray[np.float64]:
    """dBFS of each row of a (n, samples) array."""
    power = np.mean(np.square(frames, dtype=np.float64), axis=-1)
    with np.errstate(divide="ignore"):
        levels: npt.NDArray[np.float64] = 10.0 * np.log10(power / (_FULL_SCALE * _FULL_SCALE))
    return levels


def frame_dbfs(frame: npt.NDArray[np.int16]) -> float:
    """The RMS level of one frame in dBFS (``-inf`` for digital silence)."""
    if len(frame) == 0:
        return float("-inf")
    return float(_levels_dbfs(np.asarray(frame)))


class VoiceActivity(enum.Enum):
    """What :meth:`SilenceDetector.feed` reports, each once per transition."""

    SPEECH_STARTED = "speech-started"
    SILENCE = "silence"


class SilenceDetector:
    """Watches a stream of 20 ms frames for speech and for long enough silence.

    ``duration`` is the silence, in seconds, that counts as "silence"; ``speech_frames``
    consecutive loud frames are needed to count as speech, so a click is not a talker.
    """

    def __init__(
        self,
        threshold_dbfs: float = -40.0,
        duration: float = 5.0,
        speech_frames: int = 2,
        frame_ms: int = 20,
    ) -> None:
        self.threshold_dbfs = threshold_dbfs
        self.duration = duration
        self.speech_frames = speech_frames
        self.frame_ms = frame_ms
        self._silence_frames_needed = max(1, round(duration * 1000 / frame_ms))
        self._loud_run = 0
        self._quiet_run = 0
        self.speaking = False
        self.heard_speech = False
        self._silence_reported = False

    @property
    def silent_for(self) -> float:
        """Seconds of silence so far (since the start or the last speech)."""
        return self._quiet_run * self.frame_ms / 1000

    def feed(self, frame: npt.NDArray[np.int16]) -> VoiceActivity | None:
        """Account for one frame; return an event when speech starts or silence lasts."""
        if frame_dbfs(frame) >= self.threshold_dbfs:
            self._loud_run += 1
            if self._loud_run >= self.speech_frames:
                self._quiet_run = 0
                self._silence_reported = False
                if not self.speaking:
                    self.speaking = True
                    self.heard_speech = True
                    return VoiceActivity.SPEECH_STARTED
            return None
        self._loud_run = 0
        self._quiet_run += 1
        self.speaking = False
        if self._quiet_run >= self._silence_frames_needed and not self._silence_reported:
            self._silence_reported = True
            return VoiceActivity.SILENCE
        return None


def trim_silence(
    samples: npt.NDArray[np.int16],
    threshold_dbfs: float = -40.0,
    *,
    sample_rate: int = SAMPLE_RATE,
) -> npt.NDArray[np.int16]:
    """``samples`` without leading and trailing 20 ms frames quieter than the threshold.

    Works on whole 20 ms frames at ``sample_rate`` (the last may be partial). All silence
    gives an empty array.
    """
    samples = np.asarray(samples, dtype=np.int16)
    size = FRAME_SAMPLES * sample_rate // SAMPLE_RATE
    count = -(-len(samples) // size)
    padded = np.zeros(count * size, dtype=np.int16)
    padded[: len(samples)] = samples
    loud = np.flatnonzero(_levels_dbfs(padded.reshape(count, size)) >= threshold_dbfs)
    if len(loud) == 0:
        return samples[:0]
    return samples[loud[0] * size : (loud[-1] + 1) * size]
