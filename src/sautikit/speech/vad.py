"""Voice-activity detection for 8 kHz telephone audio: which 20 ms frames hold speech.

One detector serves both uses in Sautikit: dropping silence from a finished recording before
the speech model sees it (:func:`speech_regions`), and telling, live, when a caller has
finished speaking (the speech input of ``getDigits``).

A frame is speech when Google's WebRTC detector (the ``webrtcvad-wheels`` package, a small C
library: about 10 µs a frame) says so *and* the frame is louder than an energy floor. The
floor keeps line hiss and comfort noise, which WebRTC's detector sometimes takes for speech
at low aggressiveness, out of the speech regions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import webrtcvad

from sautikit.media.audio import FRAME_SAMPLES, SAMPLE_RATE
from sautikit.media.silence import frame_dbfs

__all__ = [
    "DEFAULT_AGGRESSIVENESS",
    "DEFAULT_FLOOR_DBFS",
    "SpeechRegion",
    "VoiceActivityDetector",
    "speech_regions",
]

Int16Array = npt.NDArray[np.int16]

DEFAULT_AGGRESSIVENESS: Final = 2
"""WebRTC's mode, 0 (keeps most) to 3 (drops most non-speech); 2 suits phone calls."""
DEFAULT_FLOOR_DBFS: Final = -50.0
"""Frames quieter than this are never speech: 10 dB under the ``record`` verb's silence
threshold, so the quiet ends of words are kept."""


class VoiceActivityDetector:
    """Says whether one 20 ms frame of 8 kHz ``int16`` audio holds speech.

    It keeps WebRTC's internal state between frames, so feed one stream's frames in order;
    use one detector per stream.
    """

    def __init__(
        self,
        aggressiveness: int = DEFAULT_AGGRESSIVENESS,
        floor_dbfs: float = DEFAULT_FLOOR_DBFS,
    ) -> None:
        if aggressiveness not in (0, 1, 2, 3):
            raise ValueError(f"aggressiveness is 0 to 3, not {aggressiveness}")
        self._vad = webrtcvad.Vad(aggressiveness)
        self.floor_dbfs = floor_dbfs

    def is_speech(self, frame: Int16Array) -> bool:
        """Whether ``frame`` (exactly :data:`FRAME_SAMPLES` samples) holds speech."""
        if len(frame) != FRAME_SAMPLES:
            raise ValueError(f"a frame is {FRAME_SAMPLES} samples, not {len(frame)}")
        if frame_dbfs(frame) < self.floor_dbfs:
            return False
        return bool(self._vad.is_speech(frame.astype("<i2").tobytes(), SAMPLE_RATE))


@dataclass(frozen=True, slots=True)
class SpeechRegion:
    """A stretch of speech in a recording, in samples from its start (end exclusive)."""

    start: int
    end: int

    @property
    def start_seconds(self) -> float:
        return self.start / SAMPLE_RATE

    @property
    def end_seconds(self) -> float:
        return self.end / SAMPLE_RATE


def speech_regions(
    samples: Int16Array,
    *,
    aggressiveness: int = DEFAULT_AGGRESSIVENESS,
    padding: float = 0.2,
    bridge: float = 0.5,
    min_speech: float = 0.1,
) -> list[SpeechRegion]:
    """The speech in a finished 8 kHz recording, as ordered, non-overlapping regions.

    Runs of speech frames shorter than ``min_speech`` seconds (clicks) are dropped; each
    region is widened by ``padding`` seconds on both sides (WebRTC's detector clips soft
    word onsets and endings); regions closer than ``bridge`` seconds are joined, so a pause
    inside a sentence does not cut it in two.
    """
    detector = VoiceActivityDetector(aggressiveness)
    frames = len(samples) // FRAME_SAMPLES
    voiced = [
        detector.is_speech(samples[index * FRAME_SAMPLES : (index + 1) * FRAME_SAMPLES])
        for index in range(frames)
    ]
    runs: list[tuple[int, int]] = []  # frame indices, end exclusive
    start: int | None = None
    for index, speech in enumerate([*voiced, False]):
        if speech and start is None:
            start = index
        elif not speech and start is not None:
            runs.append((start, index))
            start = None
    shortest = round(min_speech * SAMPLE_RATE / FRAME_SAMPLES)
    pad = round(padding * SAMPLE_RATE)
    gap = round(bridge * SAMPLE_RATE)
    regions: list[SpeechRegion] = []
    for first, last in runs:
        if last - first < shortest:
            continue
        begin = max(0, first * FRAME_SAMPLES - pad)
        end = min(len(samples), last * FRAME_SAMPLES + pad)
        if regions and begin - regions[-1].end <= gap:
            regions[-1] = SpeechRegion(regions[-1].start, end)
        else:
            regions.append(SpeechRegion(begin, end))
    return regions
