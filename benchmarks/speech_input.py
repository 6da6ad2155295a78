"""End of speech → answer for ``gather``/``getDigits`` speech input.

A caller's utterance (espeak-ng, about 3 s, 8 kHz) is fed to a
:class:`~sautikit.voice.speech.SpeechCollector` frame by frame at the media clock's pace
(20 ms), followed by silence, as the media tick would feed it. Measured: from the last
frame of the utterance to :meth:`SpeechCollector.collect` answering with the words — the
``speechTimeout`` wait (``auto``: 0.5 s of silence) plus the Whisper transcription on one
core. The action request that follows is one loopback HTTP POST (a few ms) on top.

Usage:
    .venv/bin/python benchmarks/speech_input.py [--runs 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from typing import Any

import numpy as np

from sautikit.media.audio import FRAME_SAMPLES, SAMPLE_RATE
from sautikit.media.tts import TextToSpeech
from sautikit.voice.speech import SpeechCollector, shared_recognizer

SENTENCE = "I would like to speak to someone about the delivery of my order."


class Line:
    """The little of a call that a collector uses: its tap and whether it ended."""

    def __init__(self) -> None:
        self.taps: list[Any] = []
        self.ended = False

    def add_media_tap(self, tap: Any) -> None:
        self.taps.append(tap)

    def remove_media_tap(self, tap: Any) -> None:
        self.taps.remove(tap)


async def one_run(utterance: np.ndarray) -> tuple[float, str]:
    line = Line()
    collector = SpeechCollector(line, timeout=5, speech_timeout=None)  # type: ignore[arg-type]
    collecting = asyncio.create_task(collector.collect())
    await asyncio.sleep(0)
    audio = np.concatenate([np.zeros(SAMPLE_RATE // 2, np.int16), utterance])
    frames = [
        audio[i : i + FRAME_SAMPLES]
        for i in range(0, len(audio) - FRAME_SAMPLES + 1, FRAME_SAMPLES)
    ]
    silence = np.zeros(FRAME_SAMPLES, np.int16)
    started = time.perf_counter()
    for index, frame in enumerate(frames):
        await asyncio.sleep(max(0.0, started + index * 0.02 - time.perf_counter()))
        for tap in list(line.taps):
            tap.on_frame(frame, silence)
    speech_ended = time.perf_counter()
    index = len(frames)
    while not collecting.done():
        await asyncio.sleep(max(0.0, started + index * 0.02 - time.perf_counter()))
        index += 1
        for tap in list(line.taps):
            tap.on_frame(silence, silence)
    result = await collecting
    return time.perf_counter() - speech_ended, result.text


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        utterance = await TextToSpeech(cache).synthesize(SENTENCE)
    # Trim the synthesiser's trailing silence: the utterance ends where the speech does.
    loud = np.flatnonzero(np.abs(utterance) > 300)
    utterance = utterance[: loud[-1] + 1]
    shared_recognizer().load()
    print(f"load average {' '.join(f'{load:.2f}' for load in os.getloadavg())}")
    print(f"utterance {len(utterance) / SAMPLE_RATE:.2f} s: {SENTENCE!r}")
    delays = []
    for _ in range(args.runs):
        delay, text = await one_run(utterance)
        delays.append(delay * 1000)
        print(f"  {delay * 1000:.0f} ms  {text!r}")
    delays.sort()
    print(
        f"end of speech -> words: median {statistics.median(delays):.0f} ms, "
        f"max {delays[-1]:.0f} ms over {len(delays)} runs"
    )
    print(f"load average {' '.join(f'{load:.2f}' for load in os.getloadavg())}")


if __name__ == "__main__":
    asyncio.run(main())
