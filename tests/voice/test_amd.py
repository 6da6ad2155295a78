"""Answering-machine detection on the committed clip set (benchmarks/amd_clips, made with
espeak-ng and sox by benchmarks/amd.py --make-clips)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from sautikit.media.audio import FRAME_SAMPLES, SAMPLE_RATE, load_wav
from sautikit.voice.amd import AmdSettings, MachineDetector, classify

BENCHMARKS = Path(__file__).parents[2] / "benchmarks"
CLIPS = json.loads((BENCHMARKS / "amd_clips" / "labels.json").read_text())["clips"]


def _benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location("amd_benchmark", BENCHMARKS / "amd.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("mode", ["Enable", "DetectMessageEnd"])
def test_nine_in_ten_clips_are_told_right(mode: str) -> None:
    expected = _benchmark().expected
    settings = AmdSettings(detect_message_end=mode == "DetectMessageEnd")
    verdicts = {
        clip["file"]: (
            classify(load_wav(BENCHMARKS / "amd_clips" / clip["file"]), settings),
            expected(mode, clip),
        )
        for clip in CLIPS
    }
    right = sum(got == want for got, want in verdicts.values())
    assert right / len(verdicts) >= 0.9, verdicts
    # What must never go wrong: silence is no human, a fax is a fax, a beep ends a message.
    for name, (got, want) in verdicts.items():
        if want in ("unknown", "fax", "machine_end_beep"):
            assert got == want, name


def test_a_short_answer_is_a_human_once_the_line_goes_quiet() -> None:
    detector = MachineDetector()
    loud = (6000 * np.sin(np.arange(FRAME_SAMPLES) * 2 * np.pi * 300 / SAMPLE_RATE)).astype(
        np.int16
    )
    hello = load_wav(BENCHMARKS / "amd_clips" / "human-01.wav")
    frames = [hello[i : i + FRAME_SAMPLES] for i in range(0, len(hello), FRAME_SAMPLES)]
    verdicts = [detector.feed(frame) for frame in frames if len(frame) == FRAME_SAMPLES]
    assert "human" in verdicts
    # Decided about 1.2 s after "Hello?", long before the clip's 4 s of silence ran out.
    assert verdicts.index("human") * 0.02 < 3.0
    assert detector.feed(loud) == "human"  # the verdict stays


def test_nothing_heard_before_the_audio_ends_is_unknown() -> None:
    assert classify(np.zeros(SAMPLE_RATE, np.int16)) == "unknown"
