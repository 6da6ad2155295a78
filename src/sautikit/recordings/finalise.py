"""Turn a spool file into the recording that is stored: checked WAV, or MP3 on request.

The PBX spools 16-bit PCM at 8 kHz, mono or two-channel, with
:class:`~sautikit.media.audio.WavSpoolWriter`. :func:`finalise_recording`:

1. repairs the header with :func:`~sautikit.media.audio.recover_wav` (a no-op on a file
   that was closed properly; after a crash it counts the audio from the file length);
2. checks that the file is what the PBX writes (16-bit, 8 kHz, one or two channels);
3. trims leading and trailing silence when asked (``trim-silence``; mono recordings — the
   ``record`` verb's — since only that verb offers it);
4. encodes MP3 when asked, with LAME through the ``lameenc`` wheel;
5. measures the result: duration, size and SHA-256.

It is a pure function of the spool file: run twice (a crash between finalising and
uploading), it produces the same bytes, so a re-upload overwrites rather than duplicates.
The spool itself is left in place; the caller removes it once the recording is stored.
"""

from __future__ import annotations

import hashlib
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import numpy as np

from sautikit.media.audio import SAMPLE_RATE, AudioFormatError, encode_wav, recover_wav
from sautikit.media.silence import trim_silence

__all__ = [
    "CONTENT_TYPES",
    "RECORDING_FORMATS",
    "FinaliseError",
    "FinalisedRecording",
    "RecordingFormat",
    "finalise_recording",
]

RecordingFormat = Literal["wav", "mp3"]
RECORDING_FORMATS: Final = ("wav", "mp3")
CONTENT_TYPES: Final[dict[str, str]] = {"wav": "audio/wav", "mp3": "audio/mpeg"}

# Speech at 8 kHz: 16 kbit/s per channel keeps the telephone band intelligible at a
# sixteenth of the PCM size (MPEG-2.5 layer III is what LAME uses at this rate). A 16 kHz
# recording (a wideband leg) gets 32 kbit/s per channel (MPEG-2 layer III), the same
# sixteenth, so its upper band is not thrown away again in the encoding.
_MP3_KBPS_PER_CHANNEL: Final = {8000: 16, 16000: 32}
#: The rates the PBX writes: 8 kHz, and 16 kHz where a leg had wideband audio.
SPOOL_RATES: Final = (8000, 16000)
_MP3_QUALITY: Final = 2  # LAME's "high quality" preset: slower search, same bitrate
_ENCODE_BLOCK_FRAMES: Final = 10 * SAMPLE_RATE  # ten seconds at a time bounds memory
_HASH_CHUNK: Final = 1024 * 1024


class FinaliseError(Exception):
    """The spool file cannot become a recording: not a WAV, or not in the PBX's format."""


@dataclass(frozen=True, slots=True)
class FinalisedRecording:
    """The file to store and what the recording row says about it."""

    path: Path
    """The file to upload: the spool itself, or a sibling the finaliser wrote."""
    format: RecordingFormat
    channels: int
    frames: int
    """Sample frames (1/sample_rate s each) in the recording; 0 means nothing was kept."""
    size_bytes: int
    sha256: str
    sample_rate: int = SAMPLE_RATE

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]

    @property
    def duration(self) -> float:
        """Seconds of audio."""
        return self.frames / self.sample_rate

    @property
    def duration_seconds(self) -> int:
        """Whole seconds as the app is told (``RecordingDuration``); at least 1 for any
        audio at all, so that 0 keeps meaning "empty"."""
        if self.frames == 0:
            return 0
        return max(1, round(self.duration))


def finalise_recording(spool: Path, *, format: RecordingFormat, trim: bool) -> FinalisedRecording:
    """Finalise ``spool`` (see the module's description); raises :class:`FinaliseError`."""
    if format not in RECORDING_FORMATS:
        raise FinaliseError(f"unknown recording format {format!r}; use wav or mp3")
    try:
        recover_wav(spool)
        channels, rate, samples = _read_pcm(spool)
    except (AudioFormatError, wave.Error, EOFError) as exc:
        raise FinaliseError(f"the spool file {spool.name} is not a usable WAV: {exc}") from exc
    except OSError as exc:
        raise FinaliseError(f"cannot read the spool file {spool}: {exc.strerror or exc}") from exc

    output = spool
    trimmed = False
    if trim and channels == 1:
        kept = trim_silence(samples, sample_rate=rate)
        trimmed = len(kept) != len(samples)
        samples = kept
    if len(samples) == 0:
        pass  # nothing to keep: the caller stores nothing, so nothing is encoded
    elif format == "mp3":
        output = spool.with_suffix(".mp3")
        _write_mp3(output, samples, channels, rate)
    elif trimmed:
        output = spool.with_suffix(".trimmed.wav")
        output.write_bytes(encode_wav(samples, rate))
    frames = len(samples)
    size, digest = _measure(output)
    return FinalisedRecording(output, format, channels, frames, size, digest, rate)


def _read_pcm(spool: Path) -> tuple[int, int, np.ndarray]:
    """The channel count, rate and samples (shape (n,) or (n, 2)) of a PBX spool file."""
    with wave.open(str(spool), "rb") as reader:
        channels = reader.getnchannels()
        width = reader.getsampwidth()
        rate = reader.getframerate()
        if width != 2 or rate not in SPOOL_RATES or channels not in (1, 2):
            raise FinaliseError(
                f"the spool file {spool.name} holds {channels}-channel {8 * width}-bit audio "
                f"at {rate} Hz; the PBX writes 16-bit, 8000 or 16000 Hz, one or two channels"
            )
        raw = reader.readframes(reader.getnframes())
    samples = np.frombuffer(raw, dtype="<i2").astype(np.int16)
    return channels, rate, samples.reshape(-1, channels) if channels == 2 else samples


def _write_mp3(path: Path, samples: np.ndarray, channels: int, rate: int) -> None:
    import lameenc

    encoder = lameenc.Encoder()
    encoder.set_in_sample_rate(rate)
    encoder.set_channels(channels)
    encoder.set_bit_rate(_MP3_KBPS_PER_CHANNEL[rate] * channels)
    encoder.set_quality(_MP3_QUALITY)
    with path.open("wb") as output:
        for start in range(0, len(samples), _ENCODE_BLOCK_FRAMES):
            block = samples[start : start + _ENCODE_BLOCK_FRAMES]
            output.write(encoder.encode(block.astype("<i2").tobytes()))
        output.write(encoder.flush())


def _measure(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as source:
        while chunk := source.read(_HASH_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()
