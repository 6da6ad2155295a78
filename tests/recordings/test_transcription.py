"""Offline transcription of 8 kHz recordings with Whisper and pocketsphinx."""

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
    PocketsphinxEngine,
    TranscriptionError,
    WhisperEngine,
    create_engine,
    narrowband_model,
)

CALL_BACK = "please call me back tomorrow morning"
BALANCE = "i would like to check my account balance"
# Pocketsphinx hears little of espeak-ng's voice; a longer message gives it something to find.
MESSAGE = (
    "hello, this is a message for the accounts team. "
    "please call me back tomorrow morning about the payment."
)


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
        return {text: await tts.synthesize(text) for text in (CALL_BACK, BALANCE, MESSAGE)}

    return asyncio.run(speak_all())


@pytest.fixture(scope="module")
def whisper() -> WhisperEngine:
    engine = WhisperEngine()
    engine.load()
    return engine


@pytest.fixture(scope="module")
def pocketsphinx(tmp_path_factory: pytest.TempPathFactory) -> PocketsphinxEngine:
    engine = PocketsphinxEngine(cache_dir=tmp_path_factory.mktemp("models"))
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


def test_pocketsphinx_transcribes_8khz_speech(
    pocketsphinx: PocketsphinxEngine, speech: dict[str, npt.NDArray[np.int16]]
) -> None:
    transcript = pocketsphinx.transcribe(speech[MESSAGE])
    assert transcript.text.strip()
    assert transcript.engine == "pocketsphinx"
    assert transcript.language == "en"
    assert pocketsphinx.transcribe(np.zeros(2 * SAMPLE_RATE, np.int16)).text == ""


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(samples=arrays(np.int16, st.integers(0, SAMPLE_RATE // 2)))
def test_pocketsphinx_takes_any_short_audio(
    pocketsphinx: PocketsphinxEngine, samples: npt.NDArray[np.int16]
) -> None:
    assert isinstance(pocketsphinx.transcribe(samples).text, str)


def test_narrowband_copy_is_made_once_and_leaves_the_bundled_model_alone(
    pocketsphinx: PocketsphinxEngine, tmp_path: Path
) -> None:
    bundled = pocketsphinx.model_path
    copy = narrowband_model(bundled, tmp_path)
    assert "-upperf 3500" in (copy / "feat.params").read_text().splitlines()
    assert "-upperf 3500" not in (bundled / "feat.params").read_text().splitlines()
    assert narrowband_model(bundled, tmp_path) == copy
    assert [path.name for path in tmp_path.iterdir()] == [copy.name]
    # A model already made for 8 kHz is used where it is.
    assert narrowband_model(copy, tmp_path / "elsewhere") == copy


@pytest.mark.parametrize("engine", ENGINE_NAMES)
@pytest.mark.parametrize(
    "samples", [np.zeros((2, 160), np.int16), np.zeros(160, np.float32)], ids=["stereo", "float"]
)
def test_samples_that_are_not_mono_int16_are_refused(
    engine: str, samples: npt.NDArray[np.generic], tmp_path: Path
) -> None:
    with pytest.raises(TranscriptionError, match="1-D int16"):
        create_engine(engine, cache_dir=tmp_path).transcribe(samples)  # type: ignore[arg-type]


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


def test_a_corrupt_pocketsphinx_model_fails_as_a_transcription_error(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "feat.params").write_text("-upperf 3500\n")
    (model / "mdef").write_bytes(b"not a model")
    engine = create_engine("pocketsphinx", model, cache_dir=tmp_path / "cache")
    with pytest.raises(TranscriptionError, match="cannot load the pocketsphinx model"):
        engine.transcribe(np.zeros(SAMPLE_RATE, np.int16))


def test_an_unknown_engine_is_refused_with_the_known_names() -> None:
    with pytest.raises(TranscriptionError, match="whisper, pocketsphinx"):
        create_engine("vosk")


def test_engine_names_are_read_loosely() -> None:
    assert create_engine(" Whisper ").name == "whisper"
