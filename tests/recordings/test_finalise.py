"""Finalising spool files: header repair, format checks, trimming, MP3."""

from __future__ import annotations

import contextlib
import hashlib
import io
import struct
import tempfile
import wave
from pathlib import Path

import miniaudio
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.recordings.support import tone, write_spool

from sautikit.media.audio import SAMPLE_RATE, encode_wav
from sautikit.recordings.finalise import FinaliseError, finalise_recording


def _frames(path: Path) -> tuple[int, int]:
    with wave.open(str(path), "rb") as reader:
        return reader.getnchannels(), reader.getnframes()


def test_a_clean_spool_is_stored_as_it_is(tmp_path: Path) -> None:
    spool = tmp_path / "rec.wav"
    write_spool(spool, 3.0)

    result = finalise_recording(spool, format="wav", trim=False)

    assert result.path == spool
    assert (result.channels, result.frames, result.duration_seconds) == (1, 3 * SAMPLE_RATE, 3)
    assert result.size_bytes == spool.stat().st_size
    assert result.sha256 == hashlib.sha256(spool.read_bytes()).hexdigest()
    assert result.content_type == "audio/wav"


def test_a_spool_cut_off_by_a_crash_gets_its_header_repaired(tmp_path: Path) -> None:
    spool = tmp_path / "rec.wav"
    write_spool(spool, 2.0, channels=2)
    data = bytearray(spool.read_bytes())
    struct.pack_into("<I", data, 40, 0)  # the sizes a writer killed before its flush left
    struct.pack_into("<I", data, 4, 36)
    spool.write_bytes(bytes(data) + b"\x01")  # and half a sample frame

    result = finalise_recording(spool, format="wav", trim=False)

    assert _frames(spool) == (2, 2 * SAMPLE_RATE)
    assert result.frames == 2 * SAMPLE_RATE
    assert result.channels == 2


def test_trim_silence_cuts_leading_and_trailing_silence(tmp_path: Path) -> None:
    spool = tmp_path / "rec.wav"
    write_spool(spool, 2.0, lead_silence=1.5, tail_silence=3.0)

    result = finalise_recording(spool, format="wav", trim=True)

    assert result.path != spool
    assert _frames(result.path) == (1, 2 * SAMPLE_RATE)
    assert result.duration_seconds == 2


def test_mp3_is_encoded_at_8_khz_and_decodes_to_the_same_length(tmp_path: Path) -> None:
    spool = tmp_path / "rec.wav"
    write_spool(spool, 4.0, channels=2)

    result = finalise_recording(spool, format="mp3", trim=False)

    assert result.path.suffix == ".mp3" and result.content_type == "audio/mpeg"
    decoded = miniaudio.mp3_read_s16(result.path.read_bytes())
    assert (decoded.sample_rate, decoded.nchannels) == (SAMPLE_RATE, 2)
    assert decoded.duration == pytest.approx(4.0, abs=0.2)
    assert result.size_bytes < spool.stat().st_size / 6  # 32 kbit/s against 256


def test_audio_in_another_format_is_refused(tmp_path: Path) -> None:
    spool = tmp_path / "rec.wav"
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(44100)
        writer.writeframes(tone(0.5).tobytes())
    spool.write_bytes(buffer.getvalue())

    with pytest.raises(FinaliseError, match="44100 Hz"):
        finalise_recording(spool, format="wav", trim=False)


@pytest.mark.parametrize("format", ["wav", "mp3"])
def test_a_wideband_call_s_16_khz_spool_stays_16_khz(tmp_path: Path, format: str) -> None:
    """A call with an Opus or G.722 leg is spooled at 16 kHz: trimmed and encoded as such."""
    spool = tmp_path / "rec.wav"
    t = np.arange(16000 * 2) / 16000
    speech = (8000 * np.sin(2 * np.pi * 6000 * t)).astype(np.int16)  # beyond 8 kHz's reach
    audio = np.concatenate([np.zeros(8000, np.int16), speech, np.zeros(8000, np.int16)])
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(16000)
        writer.writeframes(audio.tobytes())
    spool.write_bytes(buffer.getvalue())

    result = finalise_recording(spool, format=format, trim=True)  # type: ignore[arg-type]
    assert result.sample_rate == 16000
    assert result.duration == pytest.approx(2.0, abs=0.05)  # the half seconds of silence went
    if format == "mp3":
        decoded = miniaudio.mp3_read_s16(result.path.read_bytes())
        assert (decoded.sample_rate, decoded.nchannels) == (16000, 1)
    else:
        with wave.open(str(result.path)) as reader:
            assert reader.getframerate() == 16000


def test_only_silence_trims_to_nothing(tmp_path: Path) -> None:
    spool = tmp_path / "rec.wav"
    spool.write_bytes(encode_wav(np.zeros(SAMPLE_RATE, np.int16)))

    result = finalise_recording(spool, format="wav", trim=True)

    assert result.frames == 0 and result.duration_seconds == 0


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.booleans())
def test_any_bytes_finalise_or_raise_finalise_error(data: bytes, as_wav: bool) -> None:
    payload = encode_wav(np.zeros(4, np.int16))[:44] + data if as_wav else data
    with tempfile.TemporaryDirectory() as folder:
        spool = Path(folder) / "rec.wav"
        spool.write_bytes(payload)
        with contextlib.suppress(FinaliseError):
            finalise_recording(spool, format="mp3", trim=True)
