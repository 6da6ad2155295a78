"""Voice-activity detection on 8 kHz audio: speech found, silence and hiss left out."""

from __future__ import annotations

import asyncio

import numpy as np
import numpy.typing as npt
import pytest

from sautikit.media.audio import FRAME_SAMPLES, SAMPLE_RATE
from sautikit.media.tts import TextToSpeech
from sautikit.speech.vad import VoiceActivityDetector, speech_regions


@pytest.fixture(scope="module")
def sentence(tmp_path_factory: pytest.TempPathFactory) -> npt.NDArray[np.int16]:
    tts = TextToSpeech(tmp_path_factory.mktemp("tts"))
    return asyncio.run(tts.synthesize("please call me back tomorrow morning"))


def test_two_sentences_apart_are_two_regions_where_they_were_said(
    sentence: npt.NDArray[np.int16],
) -> None:
    gap = np.zeros(3 * SAMPLE_RATE, np.int16)
    recording = np.concatenate([gap, sentence, gap, sentence, gap])
    regions = speech_regions(recording)
    assert len(regions) == 2
    first_start = len(gap)
    second_start = 2 * len(gap) + len(sentence)
    # Each region covers its sentence (give or take the padding) and none of the silence.
    assert abs(regions[0].start - first_start) <= 0.4 * SAMPLE_RATE
    assert abs(regions[1].start - second_start) <= 0.4 * SAMPLE_RATE
    assert regions[0].end <= second_start
    assert regions[1].end <= len(recording)
    assert regions[0].end_seconds - regions[0].start_seconds >= 0.6 * len(sentence) / SAMPLE_RATE


def test_a_short_pause_inside_speech_does_not_split_it(sentence: npt.NDArray[np.int16]) -> None:
    pause = np.zeros(SAMPLE_RATE // 5, np.int16)
    assert len(speech_regions(np.concatenate([sentence, pause, sentence]))) == 1


@pytest.mark.parametrize(
    "audio",
    [
        np.zeros(2 * SAMPLE_RATE, np.int16),
        np.random.default_rng(3).normal(0, 20, 2 * SAMPLE_RATE).astype(np.int16),  # ~-64 dBFS
        np.zeros(0, np.int16),
    ],
    ids=["silence", "hiss", "nothing"],
)
def test_silence_and_hiss_hold_no_speech(audio: npt.NDArray[np.int16]) -> None:
    assert speech_regions(audio) == []


def test_the_live_detector_takes_20ms_frames_only(sentence: npt.NDArray[np.int16]) -> None:
    detector = VoiceActivityDetector()
    frames = [
        sentence[index : index + FRAME_SAMPLES]
        for index in range(0, len(sentence) - FRAME_SAMPLES + 1, FRAME_SAMPLES)
    ]
    assert sum(detector.is_speech(frame) for frame in frames) >= len(frames) // 2
    assert not detector.is_speech(np.zeros(FRAME_SAMPLES, np.int16))
    with pytest.raises(ValueError, match="160 samples"):
        detector.is_speech(np.zeros(80, np.int16))
    with pytest.raises(ValueError, match="0 to 3"):
        VoiceActivityDetector(aggressiveness=4)
