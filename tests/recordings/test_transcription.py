"""Offline transcription of 8 kHz recordings with Whisper: words, timings, silence."""

from __future__ import annotations

import asyncio
import re
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sautikit.media.audio import SAMPLE_RATE
from sautikit.media.tts import TextToSpeech
from sautikit.recordings.transcription import (
    ENGINE_NAMES,
    TranscriptionError,
    WhisperEngine,
    create_engine,
)

CALL_BACK = "please call me back tomorrow morning"
BALANCE = "i would like to check my account balance"
DELIVERY = "the delivery will arrive on monday afternoon"


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def _share_heard(reference: str, heard: str) -> float:
    """The share of the reference's words that were heard."""
    heard_words = set(_words(heard))
    reference_words = _words(reference)
    return sum(word in heard_words for word in reference_words) / len(reference_words)


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> dict[str, npt.NDArray[np.int16]]:
    tts = TextToSpeech(tmp_path_factory.mktemp("tts"))

    async def speak_all() -> dict[str, npt.NDArray[np.int16]]:
        return {text: await tts.synthesize(text) for text in (CALL_BACK, BALANCE, DELIVERY)}

    return asyncio.run(speak_all())


@pytest.fixture(scope="module")
def whisper() -> WhisperEngine:
    engine = WhisperEngine()
    engine.load()
    return engine


def test_whisper_hears_most_words_from_two_threads_at_once(
    whisper: WhisperEngine, speech: dict[str, npt.NDArray[np.int16]]
) -> None:
    with ThreadPoolExecutor(max_workers=2) as pool:
        references = [CALL_BACK, BALANCE]
        transcripts = list(pool.map(whisper.transcribe, [speech[text] for text in references]))
    for reference, transcript in zip(references, transcripts, strict=True):
        assert _share_heard(reference, transcript.text) >= 0.7, transcript.text
        assert transcript.engine == "whisper"
        assert transcript.language == "en"
        assert transcript.duration_seconds == pytest.approx(len(speech[reference]) / SAMPLE_RATE)


def test_whisper_loads_and_transcribes_with_no_network(
    monkeypatch: pytest.MonkeyPatch, speech: dict[str, npt.NDArray[np.int16]]
) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError(f"tried to use the network: {args}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    transcript = WhisperEngine().transcribe(speech[CALL_BACK])
    assert _share_heard(CALL_BACK, transcript.text) >= 0.7, transcript.text


@pytest.mark.parametrize("samples", [np.zeros(3 * SAMPLE_RATE, np.int16), np.zeros(0, np.int16)])
def test_whisper_gives_empty_text_for_silence(
    whisper: WhisperEngine, samples: npt.NDArray[np.int16]
) -> None:
    transcript = whisper.transcribe(samples)
    assert transcript.text == ""
    assert transcript.duration_seconds == len(samples) / SAMPLE_RATE


def test_whisper_ignores_line_noise_below_the_silence_threshold(whisper: WhisperEngine) -> None:
    hiss = np.random.default_rng(5).normal(0, 50, 2 * SAMPLE_RATE).astype(np.int16)  # ~-56 dBFS
    assert whisper.transcribe(hiss).text == ""


def test_words_carry_times_on_the_recording_clock_across_a_long_silence(
    whisper: WhisperEngine, speech: dict[str, npt.NDArray[np.int16]]
) -> None:
    first, second = speech[CALL_BACK], speech[DELIVERY]
    second_starts = 2 * SAMPLE_RATE + len(first) + 6 * SAMPLE_RATE
    recording = np.concatenate(
        [
            np.zeros(2 * SAMPLE_RATE, np.int16),
            first,
            np.zeros(6 * SAMPLE_RATE, np.int16),
            second,
            np.zeros(SAMPLE_RATE, np.int16),
        ]
    )
    transcript = whisper.transcribe(recording)
    assert _share_heard(CALL_BACK, transcript.text) >= 0.7, transcript.text
    assert _share_heard(DELIVERY, transcript.text) >= 0.6, transcript.text
    assert "".join(_words(" ".join(w.text for w in transcript.words))) == "".join(
        _words(transcript.text)
    )
    times = {_words(word.text)[0]: word for word in transcript.words if _words(word.text)}
    # "call" is said in the first sentence, "afternoon" after the six seconds of silence.
    assert 2.0 - 0.3 <= times["call"].start <= 2.0 + len(first) / SAMPLE_RATE
    assert times["afternoon"].start >= second_starts / SAMPLE_RATE
    assert times["afternoon"].end <= len(recording) / SAMPLE_RATE
    starts = [word.start for word in transcript.words]
    assert starts == sorted(starts)
    assert all(word.start <= word.end for word in transcript.words)
    assert 0.0 < transcript.confidence <= 1.0


def test_hints_are_accepted_and_keep_the_words(
    whisper: WhisperEngine, speech: dict[str, npt.NDArray[np.int16]]
) -> None:
    transcript = whisper.transcribe(speech[BALANCE], hints=["account balance", "M-Pesa"])
    assert _share_heard(BALANCE, transcript.text) >= 0.6, transcript.text


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(samples=arrays(np.int16, st.integers(0, SAMPLE_RATE // 2)))
def test_whisper_takes_any_short_audio(
    whisper: WhisperEngine, samples: npt.NDArray[np.int16]
) -> None:
    transcript = whisper.transcribe(samples)
    assert isinstance(transcript.text, str)
    assert all(0 <= word.start <= word.end for word in transcript.words)


@pytest.mark.parametrize("engine", ENGINE_NAMES)
@pytest.mark.parametrize(
    "samples", [np.zeros((2, 160), np.int16), np.zeros(160, np.float32)], ids=["stereo", "float"]
)
def test_samples_that_are_not_mono_int16_are_refused(
    engine: str, samples: npt.NDArray[np.generic], tmp_path: Path
) -> None:
    with pytest.raises(TranscriptionError, match="1-D int16"):
        create_engine(engine).transcribe(samples)  # type: ignore[arg-type]


@pytest.mark.parametrize("engine", ENGINE_NAMES)
def test_a_missing_model_folder_is_refused_by_name(engine: str, tmp_path: Path) -> None:
    with pytest.raises(TranscriptionError, match="does not exist"):
        create_engine(engine, str(tmp_path / "nowhere"))


def test_a_whisper_model_name_is_not_downloaded() -> None:
    with pytest.raises(TranscriptionError, match="never downloaded"):
        create_engine("whisper", "tiny.en")


def test_a_whisper_folder_without_its_tokenizer_is_refused(tmp_path: Path) -> None:
    # faster-whisper would fetch a missing tokenizer from the Hugging Face hub.
    (tmp_path / "model.bin").write_bytes(b"")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(TranscriptionError, match=r"lacks tokenizer\.json"):
        create_engine("whisper", tmp_path)


def test_a_corrupt_whisper_model_fails_as_a_transcription_error(tmp_path: Path) -> None:
    for name in ("model.bin", "config.json", "tokenizer.json"):
        (tmp_path / name).write_bytes(b"not a model")
    engine = create_engine("whisper", tmp_path)
    with pytest.raises(TranscriptionError, match="cannot load the Whisper model"):
        engine.transcribe(np.zeros(SAMPLE_RATE, np.int16))


def test_an_unknown_engine_is_refused_with_the_known_names() -> None:
    with pytest.raises(TranscriptionError, match="choose one of whisper"):
        create_engine("pocketsphinx")


def test_engine_names_are_read_loosely() -> None:
    assert create_engine(" Whisper ").name == "whisper"
