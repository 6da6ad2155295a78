"""Audio files and sample-rate conversion for Sautikit's media engine.

Inside Sautikit, audio is 8 kHz mono signed 16-bit PCM held in numpy ``int16`` arrays and
cut into 20 ms frames of :data:`FRAME_SAMPLES` samples. This module brings audio from the
outside world into that shape and writes recordings back out:

* :func:`load_wav` reads RIFF/WAVE files of any sample rate: 8/16/24/32-bit integer PCM,
  32/64-bit float, µ-law and A-law, mono or multichannel (downmixed), including
  ``WAVE_FORMAT_EXTENSIBLE`` headers and streamed files whose sizes were never filled in.
* :func:`load_audio` also decodes MP3 (through the ``miniaudio`` wheel) for the ``play``
  verb, choosing the decoder from the content type and the bytes themselves.
* :func:`resample` is a windowed-sinc polyphase converter: it low-pass filters before
  decimating, so 16/22.05/44.1/48 kHz prompts do not alias into the telephone band.
* :class:`WavSpoolWriter` streams recordings to disk with a header that is valid after every
  flush, and :func:`recover_wav` repairs the sizes of a file left by a killed process.

Every decoding failure raises :class:`AudioFormatError` with a readable message.
"""

from __future__ import annotations

import functools
import math
import os
import struct
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Final

import numpy as np
import numpy.typing as npt

from sautikit.media.g711 import alaw_decode, ulaw_decode

__all__ = [
    "FRAME_DURATION",
    "FRAME_SAMPLES",
    "FSYNC_INTERVAL",
    "SAMPLE_RATE",
    "WIDEBAND_SAMPLE_RATE",
    "AudioFormatError",
    "WavSpoolWriter",
    "encode_wav",
    "load_audio",
    "load_audio_channels",
    "load_recording_channels",
    "load_wav",
    "recover_wav",
    "resample",
]

SAMPLE_RATE: Final = 8000
"""Sautikit's internal sample rate in Hz (G.711 narrowband)."""
WIDEBAND_SAMPLE_RATE: Final = 16000
"""The rate of wideband legs (G.722, Opus) and of the recordings of calls that had one."""
FRAME_SAMPLES: Final = 160
"""Samples in one 20 ms media frame at :data:`SAMPLE_RATE`."""
FRAME_DURATION: Final = FRAME_SAMPLES / SAMPLE_RATE
"""Duration of one media frame in seconds (0.020)."""

Int16Array = npt.NDArray[np.int16]
FloatArray = npt.NDArray[np.float64]


class AudioFormatError(ValueError):
    """Audio bytes that Sautikit cannot decode: not a WAV/MP3, or an unsupported encoding."""


# --- resampling ---------------------------------------------------------------------------

# Half-width of the interpolation kernel, in zero crossings of the low-pass sinc. 32 gives a
# transition band of about 600 Hz at an 8 kHz output: the passband reaches ~3.3 kHz, past
# the 3.4 kHz telephone band edge within the -3 dB point, and the stopband starts below the
# 4 kHz Nyquist frequency.
_ZERO_CROSSINGS: Final = 32
# Kaiser window shape: ~80 dB stopband attenuation.
_KAISER_BETA: Final = 8.6
# The cutoff as a fraction of the lower of the two Nyquist frequencies.
_CUTOFF: Final = 0.92
# Output samples computed per vectorised block; bounds the gather matrix's memory.
_BLOCK_ELEMENTS: Final = 1 << 20
# Most fractional positions tabulated; bounds the table for odd rates such as 44101 Hz,
# whose exact polyphase form would need thousands of phases.
_MAX_PHASES: Final = 512


@functools.lru_cache(maxsize=4)
def _polyphase_kernel(phases: int, up: int, down: int) -> tuple[FloatArray, int]:
    """Kaiser-windowed sinc taps for ``phases`` fractional positions, and the half-width.

    Row ``p`` interpolates at input time ``base + p / phases``:
    ``y = sum_k x[base + k] * taps[p, k + half]``.
    """
    cutoff = 0.5 * _CUTOFF * min(1.0, up / down)  # cycles per input sample
    reach = _ZERO_CROSSINGS / (2.0 * cutoff)  # kernel half-width in input samples
    half = math.ceil(reach) + 1
    offsets = np.arange(-half, half + 1, dtype=np.float64)
    tau = np.arange(phases, dtype=np.float64)[:, None] / phases - offsets[None, :]
    inside = np.abs(tau) < reach
    ratio = np.where(inside, tau / reach, 0.0)
    window = np.i0(_KAISER_BETA * np.sqrt(1.0 - ratio * ratio)) / np.i0(_KAISER_BETA)
    taps = np.where(inside, 2.0 * cutoff * np.sinc(2.0 * cutoff * tau) * window, 0.0)
    # Unity gain at DC for every phase, so silence stays silence and levels do not ripple.
    taps /= taps.sum(axis=1, keepdims=True)
    return taps, half


def _resample_float(samples: FloatArray, from_rate: int, to_rate: int) -> FloatArray:
    """Output sample n sits at input time n * down / up; it is interpolated there exactly
    when ``up`` is at most _MAX_PHASES, else at the nearest of _MAX_PHASES positions."""
    divisor = math.gcd(from_rate, to_rate)
    up, down = to_rate // divisor, from_rate // divisor
    out_len = -(-len(samples) * up // down)
    if up == down or out_len == 0:
        return samples.astype(np.float64, copy=True)
    phases = min(up, _MAX_PHASES)
    taps, half = _polyphase_kernel(phases, up, down)
    padded = np.concatenate([np.zeros(half), samples, np.zeros(half + 1)])
    offsets = np.arange(2 * half + 1)
    out = np.empty(out_len, dtype=np.float64)
    block = max(1, _BLOCK_ELEMENTS // len(offsets))
    for start in range(0, out_len, block):
        positions = np.arange(start, min(start + block, out_len), dtype=np.int64) * down
        base, remainder = np.divmod(positions, up)
        phase = remainder * phases // up
        window = padded[base[:, None] + offsets[None, :]]
        out[start : start + len(positions)] = np.einsum("ij,ij->i", window, taps[phase])
    return out


def _to_int16(samples: FloatArray) -> Int16Array:
    """Float samples in [-1, 1) to int16, rounded and clipped."""
    return np.clip(np.rint(samples * 32768.0), -32768, 32767).astype(np.int16)


def resample(
    samples: npt.NDArray[np.integer] | npt.NDArray[np.floating],
    from_rate: int,
    to_rate: int = SAMPLE_RATE,
) -> npt.NDArray[np.int16] | FloatArray:
    """Convert mono audio from ``from_rate`` to ``to_rate`` Hz with a band-limited filter.

    ``int16`` input gives ``int16`` output (rounded and clipped); float input, taken as
    full scale ±1.0, gives ``float64`` output. The output has ``ceil(len * to / from)``
    samples and is aligned with the input (no filter delay).
    """
    if from_rate <= 0 or to_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {from_rate} -> {to_rate}")
    array = np.asarray(samples)
    if array.ndim != 1:
        raise ValueError(f"resample() takes mono audio, got an array of shape {array.shape}")
    if np.issubdtype(array.dtype, np.floating):
        return _resample_float(array.astype(np.float64), from_rate, to_rate)
    return _to_int16(_resample_float(array.astype(np.float64) / 32768.0, from_rate, to_rate))


# --- WAV reading --------------------------------------------------------------------------

_WAVE_FORMAT_PCM: Final = 0x0001
_WAVE_FORMAT_IEEE_FLOAT: Final = 0x0003
_WAVE_FORMAT_ALAW: Final = 0x0006
_WAVE_FORMAT_MULAW: Final = 0x0007
_WAVE_FORMAT_EXTENSIBLE: Final = 0xFFFE
# The tail shared by the KSDATAFORMAT_SUBTYPE_* GUIDs; the first two bytes are the format.
_EXTENSIBLE_GUID_TAIL: Final = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
_MAX_CHANNELS: Final = 64
_MAX_SAMPLE_RATE: Final = 768_000


def _chunks(data: bytes) -> list[tuple[bytes, int, int]]:
    """Top-level RIFF chunks as (id, payload offset, declared size); the last may run short."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioFormatError("not a WAV file: missing the RIFF/WAVE header")
    found = []
    offset = 12
    while offset + 8 <= len(data):
        chunk_id = data[offset : offset + 4]
        (size,) = struct.unpack_from("<I", data, offset + 4)
        found.append((chunk_id, offset + 8, size))
        offset += 8 + size + (size & 1)
    return found


def _decode_wav(data: bytes) -> tuple[FloatArray, int]:
    """Decode WAV bytes to (mono float samples in [-1, 1), sample rate)."""
    samples, rate = _decode_wav_channels(data)
    return samples.mean(axis=1), rate


def _decode_wav_channels(data: bytes) -> tuple[FloatArray, int]:
    """Decode WAV bytes to (float samples in [-1, 1) of shape (frames, channels), rate)."""
    chunks = _chunks(data)
    fmt = next(((off, size) for cid, off, size in chunks if cid == b"fmt "), None)
    body = next(((off, size) for cid, off, size in chunks if cid == b"data"), None)
    if fmt is None:
        raise AudioFormatError("WAV file has no 'fmt ' chunk")
    if body is None:
        raise AudioFormatError("WAV file has no 'data' chunk")
    fmt_offset, fmt_size = fmt
    if fmt_size < 16 or fmt_offset + fmt_size > len(data):
        raise AudioFormatError(f"WAV 'fmt ' chunk is truncated ({fmt_size} bytes)")
    format_tag, channels, rate, _, block_align, bits = struct.unpack_from(
        "<HHIIHH", data, fmt_offset
    )
    if format_tag == _WAVE_FORMAT_EXTENSIBLE:
        if fmt_size < 40:
            raise AudioFormatError("WAVE_FORMAT_EXTENSIBLE header is truncated")
        guid = data[fmt_offset + 24 : fmt_offset + 40]
        if guid[2:] != _EXTENSIBLE_GUID_TAIL:
            raise AudioFormatError("WAV sub-format GUID is not a standard audio format")
        (format_tag,) = struct.unpack_from("<H", guid)
    if not 1 <= channels <= _MAX_CHANNELS:
        raise AudioFormatError(f"WAV declares {channels} channels")
    if not 1 <= rate <= _MAX_SAMPLE_RATE:
        raise AudioFormatError(f"WAV declares an unsupported sample rate of {rate} Hz")
    width = bits // 8
    if bits == 0 or bits % 8 or block_align != width * channels:
        raise AudioFormatError(
            f"WAV block alignment {block_align} does not match {channels} x {bits}-bit samples"
        )

    body_offset, body_size = body
    # Streamed files (e.g. ``espeak-ng --stdout``) declare a size larger than what follows.
    available = min(body_size, len(data) - body_offset)
    raw = data[body_offset : body_offset + available - available % block_align]
    samples = _decode_samples(raw, format_tag, bits)
    return samples.reshape(-1, channels), rate


def _decode_samples(raw: bytes, format_tag: int, bits: int) -> FloatArray:
    """Interleaved sample bytes to float samples in [-1, 1)."""
    if format_tag == _WAVE_FORMAT_PCM:
        if bits == 8:  # 8-bit WAV is unsigned
            return (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128.0) / 128.0
        if bits == 16:
            return np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768.0
        if bits == 24:
            triples = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
            value = triples[:, 0] | (triples[:, 1] << 8) | (triples[:, 2] << 16)
            value = np.where(value >= 1 << 23, value - (1 << 24), value)
            return value.astype(np.float64) / float(1 << 23)
        if bits == 32:
            return np.frombuffer(raw, dtype="<i4").astype(np.float64) / float(1 << 31)
        raise AudioFormatError(f"unsupported PCM sample size: {bits} bits")
    if format_tag == _WAVE_FORMAT_IEEE_FLOAT:
        if bits not in (32, 64):
            raise AudioFormatError(f"unsupported float sample size: {bits} bits")
        floats = np.frombuffer(raw, dtype="<f4" if bits == 32 else "<f8").astype(np.float64)
        return np.clip(np.nan_to_num(floats), -1.0, 1.0)
    if format_tag in (_WAVE_FORMAT_MULAW, _WAVE_FORMAT_ALAW):
        if bits != 8:
            raise AudioFormatError(f"G.711 WAV must use 8-bit samples, not {bits}")
        decode = ulaw_decode if format_tag == _WAVE_FORMAT_MULAW else alaw_decode
        return decode(raw).astype(np.float64) / 32768.0
    raise AudioFormatError(f"unsupported WAV encoding (format tag 0x{format_tag:04x})")


def _read_source(source: str | os.PathLike[str] | bytes | bytearray | memoryview) -> bytes:
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source)
    try:
        return Path(source).read_bytes()
    except OSError as exc:
        raise AudioFormatError(f"cannot read audio file {os.fspath(source)!r}: {exc}") from exc


def load_wav(source: str | os.PathLike[str] | bytes | bytearray | memoryview) -> Int16Array:
    """Read a WAV file (a path or its bytes) as 8 kHz mono int16 samples."""
    samples, rate = _decode_wav(_read_source(source))
    return _to_int16(_resample_float(samples, rate, SAMPLE_RATE))


# --- MP3 and content-type dispatch --------------------------------------------------------

_WAV_TYPES: Final = frozenset({"audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave"})
_MP3_TYPES: Final = frozenset({"audio/mpeg", "audio/mp3", "audio/mpeg3", "audio/x-mpeg-3"})


def _looks_like_mp3(data: bytes) -> bool:
    return data[:3] == b"ID3" or (len(data) >= 2 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0)


def _decode_mp3(data: bytes) -> Int16Array:
    mono: Int16Array = _decode_mp3_channels(data)[0].mean(axis=1).astype(np.int16)
    return mono


def _decode_mp3_channels(data: bytes, rate: int | None = SAMPLE_RATE) -> tuple[Int16Array, int]:
    """MP3 bytes as int16 samples of shape (frames, channels) at ``rate`` (None: the
    recording's own, brought to 16 kHz if higher), and that rate."""
    try:
        import miniaudio
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise AudioFormatError("MP3 playback needs the 'miniaudio' package") from exc
    try:
        decoded = miniaudio.mp3_read_s16(data)
    except miniaudio.DecodeError as exc:
        raise AudioFormatError(f"cannot decode MP3: {exc}") from exc
    samples = np.frombuffer(decoded.samples, dtype=np.int16).astype(np.float64) / 32768.0
    if decoded.nchannels < 1 or decoded.sample_rate < 1 or samples.size == 0:
        raise AudioFormatError("MP3 holds no audio frames")
    frames = samples[: samples.size - samples.size % decoded.nchannels]
    frames = frames.reshape(-1, decoded.nchannels)
    to_rate = _recording_rate(decoded.sample_rate) if rate is None else rate
    channels = [
        _to_int16(_resample_float(frames[:, channel], decoded.sample_rate, to_rate))
        for channel in range(decoded.nchannels)
    ]
    frames_by_channel: Int16Array = np.stack(channels, axis=1)
    return frames_by_channel, to_rate


def _recording_rate(native: int) -> int:
    """The rate a recording is worked on at: 16 kHz if it has that much, else 8 kHz."""
    return WIDEBAND_SAMPLE_RATE if native >= WIDEBAND_SAMPLE_RATE else SAMPLE_RATE


def load_audio(data: bytes, content_type: str | None = None) -> Int16Array:
    """Decode a WAV or MP3 file (e.g. a ``play`` URL's body) as 8 kHz mono int16 samples.

    The bytes decide when they are recognisable (servers often mislabel audio); otherwise
    the content type (parameters ignored) does. Anything else raises AudioFormatError.
    """
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if data[:4] == b"RIFF" or (media_type in _WAV_TYPES and not _looks_like_mp3(data)):
        return load_wav(data)
    if _looks_like_mp3(data) or media_type in _MP3_TYPES:
        return _decode_mp3(data)
    raise AudioFormatError(
        f"unsupported audio: content type {content_type or 'missing'!r} and unrecognised bytes"
    )


def load_audio_channels(data: bytes, content_type: str | None = None) -> list[Int16Array]:
    """Like :func:`load_audio`, but one 8 kHz ``int16`` array per channel, first (left)
    channel first: a dual-channel call recording keeps its two parties apart."""
    return _load_channels(data, content_type, SAMPLE_RATE)[1]


def load_recording_channels(
    data: bytes, content_type: str | None = None
) -> tuple[int, list[Int16Array]]:
    """:func:`load_audio_channels` at the recording's own rate where it is wideband: 16 kHz
    for a file of 16 kHz or more (a call with a wideband leg), else 8 kHz; and that rate."""
    return _load_channels(data, content_type, None)


def _load_channels(
    data: bytes, content_type: str | None, to_rate: int | None
) -> tuple[int, list[Int16Array]]:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if data[:4] == b"RIFF" or (media_type in _WAV_TYPES and not _looks_like_mp3(data)):
        samples, rate = _decode_wav_channels(data)
        out_rate = _recording_rate(rate) if to_rate is None else to_rate
        return out_rate, [
            _to_int16(_resample_float(samples[:, channel], rate, out_rate))
            for channel in range(samples.shape[1])
        ]
    if _looks_like_mp3(data) or media_type in _MP3_TYPES:
        frames, out_rate = _decode_mp3_channels(data, to_rate)
        channels = [np.ascontiguousarray(frames[:, channel]) for channel in range(frames.shape[1])]
        return out_rate, channels
    raise AudioFormatError(
        f"unsupported audio: content type {content_type or 'missing'!r} and unrecognised bytes"
    )


# --- WAV writing --------------------------------------------------------------------------

_HEADER_SIZE: Final = 44
_RIFF_SIZE_OFFSET: Final = 4
_DATA_SIZE_OFFSET: Final = 40

FSYNC_INTERVAL: Final = 10.0
"""Seconds of audio between a recording spool's fsyncs (see :class:`WavSpoolWriter`)."""


def _pcm16_header(channels: int, sample_rate: int, data_bytes: int) -> bytes:
    """The canonical 44-byte header of a 16-bit PCM WAV file."""
    block_align = 2 * channels
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + data_bytes,
        b"WAVE",
        b"fmt ",
        16,
        _WAVE_FORMAT_PCM,
        channels,
        sample_rate,
        sample_rate * block_align,
        block_align,
        16,
        b"data",
        data_bytes,
    )


def _interleave(samples: npt.ArrayLike, channels: int) -> bytes:
    array = np.asarray(samples)
    expected = (array.shape[0], channels) if channels > 1 else (array.shape[0],)
    if array.shape != expected:
        raise ValueError(f"expected samples of shape {expected}, got {array.shape}")
    if array.dtype != np.int16:
        raise ValueError(f"expected int16 samples, got {array.dtype}")
    return array.astype("<i2", copy=False).tobytes()


def encode_wav(
    samples: npt.NDArray[np.int16], sample_rate: int = SAMPLE_RATE, channels: int = 1
) -> bytes:
    """A complete 16-bit PCM WAV file; ``samples`` is 1-D (mono) or shaped (n, channels)."""
    payload = _interleave(samples, channels)
    return _pcm16_header(channels, sample_rate, len(payload)) + payload


class WavSpoolWriter:
    """Appends 16-bit PCM to a WAV file that stays readable if the process dies.

    Every ``sync_interval`` seconds of audio (and on :meth:`flush`) the buffered audio is
    handed to the operating system and the header is patched with the true sizes: a process
    that is killed after that leaves all of it in the file, since the kernel's page cache
    outlives the process. Every ``fsync_interval`` seconds of audio (and on :meth:`sync`
    and :meth:`close`) the file is also fsynced, which is what a machine that loses power
    keeps. fsync is the costly part (a journal commit each time, about 0.1 ms of CPU and a
    millisecond of waiting on this machine's ext4): once a second per recording it was the
    recording thread's largest cost at hundreds of calls. The file must not exist yet
    (FileExistsError otherwise). Audio written after the last flush is on disk but not yet
    counted by the header: :func:`recover_wav` counts it from the file length.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        channels: int = 1,
        sample_rate: int = SAMPLE_RATE,
        sync_interval: float = 1.0,
        fsync_interval: float = FSYNC_INTERVAL,
    ) -> None:
        if channels not in (1, 2):
            raise ValueError(f"recordings are mono or two-channel, not {channels} channels")
        self.path = Path(path)
        self.channels = channels
        self.sample_rate = sample_rate
        self._sync_every = max(1, round(sync_interval * sample_rate))
        self._fsync_every = max(self._sync_every, round(fsync_interval * sample_rate))
        self._frames = 0
        self._frames_at_sync = 0
        self._frames_at_fsync = 0
        # "x": never overwrite a recording that may still await recovery.
        self._file: BinaryIO = open(self.path, "xb")  # noqa: SIM115 - owned until close()
        self._file.write(_pcm16_header(channels, sample_rate, 0))
        self.flush()
        self.sync()  # the file itself survives a power cut from the start

    @property
    def frames_written(self) -> int:
        """Sample frames written (one per channel group, i.e. per 1/8000 s at 8 kHz)."""
        return self._frames

    @property
    def duration(self) -> float:
        """Seconds of audio written."""
        return self._frames / self.sample_rate

    @property
    def closed(self) -> bool:
        return self._file.closed

    def write(self, samples: npt.NDArray[np.int16]) -> None:
        """Append int16 samples: 1-D for mono, shaped (n, 2) for two channels."""
        if self._file.closed:
            raise ValueError(f"write to closed recording {self.path}")
        payload = _interleave(samples, self.channels)
        self._file.write(payload)
        self._frames += len(payload) // (2 * self.channels)
        if self._frames - self._frames_at_sync >= self._sync_every:
            self.flush()
            if self._frames - self._frames_at_fsync >= self._fsync_every:
                self.sync()

    def flush(self) -> None:
        """Hand the audio written so far to the OS and patch the header to its size."""
        data_bytes = self._frames * 2 * self.channels
        file = self._file
        file.flush()
        # pwrite leaves the file position at the end, where the next audio goes.
        descriptor = file.fileno()
        os.pwrite(descriptor, struct.pack("<I", 36 + data_bytes), _RIFF_SIZE_OFFSET)
        os.pwrite(descriptor, struct.pack("<I", data_bytes), _DATA_SIZE_OFFSET)
        self._frames_at_sync = self._frames

    def sync(self) -> None:
        """fsync the file as of the last :meth:`flush`: on disk even if the power goes."""
        os.fsync(self._file.fileno())
        self._frames_at_fsync = self._frames_at_sync

    def close(self) -> None:
        """Flush the final sizes and close the file; closing twice is harmless."""
        if not self._file.closed:
            try:
                self.flush()
                self.sync()
            finally:
                self._file.close()

    def __enter__(self) -> WavSpoolWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def recover_wav(path: str | os.PathLike[str]) -> int:
    """Repair the header sizes of a WAV whose writer died; returns the sample frames in it.

    The ``data`` chunk is taken to run to the end of the file (as :class:`WavSpoolWriter`
    writes it); a partly written trailing sample frame is cut off.
    """
    with open(path, "r+b") as file:
        head = file.read(4096)
        size = file.seek(0, os.SEEK_END)
        chunks = _chunks(head)
        fmt = next(((off, sz) for cid, off, sz in chunks if cid == b"fmt "), None)
        body = next((off for cid, off, _ in chunks if cid == b"data"), None)
        if fmt is None or body is None or fmt[1] < 16 or fmt[0] + 16 > len(head):
            raise AudioFormatError(f"{os.fspath(path)} has no WAV 'fmt ' and 'data' chunks")
        block_align: int = struct.unpack_from("<H", head, fmt[0] + 12)[0]
        if block_align == 0:
            raise AudioFormatError(f"{os.fspath(path)} declares a block alignment of 0")
        data_bytes = max(0, size - body)
        data_bytes -= data_bytes % block_align
        file.truncate(body + data_bytes)
        file.seek(_RIFF_SIZE_OFFSET)
        file.write(struct.pack("<I", body + data_bytes - 8))
        file.seek(body - 4)
        file.write(struct.pack("<I", data_bytes))
        file.flush()
        os.fsync(file.fileno())
    return data_bytes // block_align
