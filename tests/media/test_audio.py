"""Tests for sautikit.media.audio: WAV/MP3 decoding, resampling and the recording spool."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sautikit.media.audio import (
    FRAME_SAMPLES,
    SAMPLE_RATE,
    AudioFormatError,
    WavSpoolWriter,
    encode_wav,
    load_audio,
    load_audio_channels,
    load_wav,
    recover_wav,
    resample,
)

FIXTURES = Path(__file__).parent / "fixtures"


def wav_bytes(
    payload: bytes,
    *,
    format_tag: int = 1,
    channels: int = 1,
    rate: int = 8000,
    bits: int = 16,
    data_size: int | None = None,
    extra_chunks: bytes = b"",
) -> bytes:
    """A WAV file built field by field, so tests can describe exactly what is on disk."""
    block_align = channels * bits // 8
    fmt = struct.pack("<HHIIHH", format_tag, channels, rate, rate * block_align, block_align, bits)
    size = len(payload) if data_size is None else data_size
    body = (
        b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + extra_chunks
        + b"data"
        + struct.pack("<I", size)
        + payload
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body


def sine(frequency: float, rate: int, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(round(rate * seconds)) / rate
    return amplitude * np.sin(2 * np.pi * frequency * t)


def dominant_frequency(samples: np.ndarray, rate: int = SAMPLE_RATE) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64) * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * rate / len(samples))


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


# --- reading WAV --------------------------------------------------------------------------


def test_8khz_16bit_mono_round_trips_exactly() -> None:
    samples = np.array([0, 1, -1, 32767, -32768, 1234], dtype=np.int16)
    decoded = load_wav(encode_wav(samples))
    assert decoded.dtype == np.int16
    np.testing.assert_array_equal(decoded, samples)


def test_reads_a_path(tmp_path: Path) -> None:
    path = tmp_path / "prompt.wav"
    path.write_bytes(encode_wav(np.arange(320, dtype=np.int16)))
    np.testing.assert_array_equal(load_wav(path), np.arange(320, dtype=np.int16))
    np.testing.assert_array_equal(load_wav(str(path)), np.arange(320, dtype=np.int16))


def test_missing_file_is_an_audio_format_error(tmp_path: Path) -> None:
    with pytest.raises(AudioFormatError, match="cannot read"):
        load_wav(tmp_path / "absent.wav")


def test_8bit_pcm_is_unsigned() -> None:
    decoded = load_wav(wav_bytes(bytes([128, 255, 0, 192]), bits=8))
    np.testing.assert_array_equal(decoded, [0, 32512, -32768, 16384])


@pytest.mark.parametrize(
    ("bits", "encode"),
    [
        (24, lambda v: b"".join(int(x).to_bytes(3, "little", signed=True) for x in v << 8)),
        (32, lambda v: (v.astype("<i4") << 16).tobytes()),
    ],
)
def test_wide_pcm_matches_16bit(bits: int, encode: object) -> None:
    reference = np.array([0, 100, -100, 32767, -32768], dtype=np.int16)
    decoded = load_wav(wav_bytes(encode(reference.astype(np.int32)), bits=bits))  # type: ignore[operator]
    np.testing.assert_array_equal(decoded, reference)


def test_float32_is_read_and_clipped() -> None:
    payload = np.array([0.0, 0.5, -0.5, 2.0, np.nan], dtype="<f4").tobytes()
    decoded = load_wav(wav_bytes(payload, format_tag=3, bits=32))
    np.testing.assert_array_equal(decoded, [0, 16384, -16384, 32767, 0])


def test_mulaw_and_alaw_wavs_expand_to_linear() -> None:
    mulaw = load_wav(wav_bytes(bytes([0xFF, 0x00, 0x80, 0x7F]), format_tag=7, bits=8))
    np.testing.assert_array_equal(mulaw, [0, -32124, 32124, 0])
    alaw = load_wav(wav_bytes(bytes([0xD5, 0x55, 0xAA, 0x2A]), format_tag=6, bits=8))
    np.testing.assert_array_equal(alaw, [8, -8, 32256, -32256])


def test_channels_can_be_kept_apart() -> None:
    left = np.array([1000, 2000, -4000], dtype=np.int16)
    stereo = np.stack([left, -left], axis=1)
    channels = load_audio_channels(encode_wav(stereo, channels=2), "audio/wav")
    assert len(channels) == 2
    np.testing.assert_array_equal(channels[0], left)
    np.testing.assert_array_equal(channels[1], -left)
    mp3 = load_audio_channels((FIXTURES / "tone-440hz-22050-stereo.mp3").read_bytes())
    assert len(mp3) == 2 and len(mp3[0]) == len(mp3[1]) > 0
    with pytest.raises(AudioFormatError, match="unsupported audio"):
        load_audio_channels(b"neither", "text/plain")


def test_stereo_is_downmixed() -> None:
    left = np.array([1000, 2000, -4000], dtype=np.int16)
    same = np.stack([left, left], axis=1)
    np.testing.assert_array_equal(load_wav(encode_wav(same, channels=2)), left)
    opposite = np.stack([left, -left], axis=1)
    np.testing.assert_array_equal(load_wav(encode_wav(opposite, channels=2)), [0, 0, 0])


def test_extensible_header_with_six_channels() -> None:
    channels = 6
    frames = np.tile(np.array([[600]], dtype="<i2"), (4, channels))
    fmt = struct.pack("<HHIIHHHHI", 0xFFFE, channels, 8000, 8000 * 12, 12, 16, 22, 16, 0x3F)
    fmt += b"\x01\x00" + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", frames.nbytes) + frames.tobytes()
    data = b"RIFF" + struct.pack("<I", len(body)) + body
    np.testing.assert_array_equal(load_wav(data), [600] * 4)


def test_streamed_file_with_oversized_data_length_reads_what_is_there() -> None:
    # espeak-ng --stdout writes 0x7ffff000 as the data size: the stream's length is unknown.
    samples = np.array([5, 6, 7], dtype="<i2")
    data = wav_bytes(samples.tobytes() + b"\x01", data_size=0x7FFFF000)
    np.testing.assert_array_equal(load_wav(data), samples)


def test_other_chunks_and_their_pad_byte_are_skipped() -> None:
    odd_chunk = b"LIST" + struct.pack("<I", 3) + b"abc" + b"\x00"
    data = wav_bytes(np.array([42, -42], dtype="<i2").tobytes(), extra_chunks=odd_chunk)
    np.testing.assert_array_equal(load_wav(data), [42, -42])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "RIFF/WAVE"),
        (b"ID3\x04" + bytes(100), "RIFF/WAVE"),
        (b"RIFF\x04\x00\x00\x00WAVE", "'fmt '"),
        (b"RIFF\x10\x00\x00\x00WAVEdata\x00\x00\x00\x00", "'fmt '"),
        (wav_bytes(b"")[:36], "'data'"),
        (wav_bytes(b"\x00" * 6, bits=12), "block alignment"),
        (wav_bytes(b"\x00" * 8, format_tag=0x55, bits=16), "format tag 0x0055"),
        (wav_bytes(b"\x00" * 4, channels=0), "0 channels"),
        (wav_bytes(b"\x00" * 4, rate=0), "sample rate"),
        (wav_bytes(b"\x00" * 4, bits=0), "block alignment"),
        (wav_bytes(b"\x00" * 8, format_tag=3, bits=16), "float sample size"),
        (wav_bytes(b"\x00" * 8, format_tag=7, bits=16), "8-bit"),
    ],
)
def test_bad_wav_raises_audio_format_error(data: bytes, message: str) -> None:
    with pytest.raises(AudioFormatError, match=message):
        load_wav(data)


def _decodes_or_rejects(data: bytes, content_type: str | None = None) -> None:
    try:
        decoded = load_audio(data, content_type) if content_type else load_wav(data)
    except AudioFormatError:
        return
    assert decoded.dtype == np.int16
    assert decoded.ndim == 1


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    _decodes_or_rejects(data)
    _decodes_or_rejects(b"RIFF\x00\x00\x00\x00WAVE" + data)


@settings(max_examples=300, deadline=None)
@given(
    format_tag=st.sampled_from([1, 3, 6, 7, 0xFFFE, 0x55, 0]),
    channels=st.integers(0, 70),
    rate=st.integers(0, 800_000),
    bits=st.integers(0, 72),
    payload=st.binary(max_size=64),
    data_size=st.none() | st.integers(0, 2**32 - 1),
)
def test_generated_headers_decode_or_raise(
    format_tag: int, channels: int, rate: int, bits: int, payload: bytes, data_size: int | None
) -> None:
    data = wav_bytes(
        payload,
        format_tag=format_tag,
        channels=channels,
        rate=rate,
        bits=bits,
        data_size=data_size,
    )
    _decodes_or_rejects(data)


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=400), content_type=st.sampled_from(["audio/mpeg", "audio/wav"]))
def test_arbitrary_bytes_as_declared_audio_never_crash(data: bytes, content_type: str) -> None:
    _decodes_or_rejects(data, content_type)
    _decodes_or_rejects(b"\xff\xfb" + data, content_type)


# --- resampling ---------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [11025, 16000, 22050, 44100, 48000])
def test_prompts_at_common_rates_keep_pitch_and_duration(rate: int) -> None:
    source = (sine(1000, rate, 1.0) * 32767).astype(np.int16)
    decoded = load_wav(encode_wav(source, sample_rate=rate))
    assert len(decoded) == SAMPLE_RATE
    assert dominant_frequency(decoded) == pytest.approx(1000, abs=2)
    assert rms(decoded[400:-400]) == pytest.approx(rms(source), rel=0.01)


@pytest.mark.parametrize(("rate", "frequency"), [(16000, 5000), (44100, 6000), (48000, 7000)])
def test_tones_above_the_telephone_band_do_not_alias(rate: int, frequency: float) -> None:
    # Naive decimation would fold these into audible 1-3 kHz tones.
    resampled = resample(sine(frequency, rate, 1.0), rate)
    assert rms(resampled[400:-400]) < 1e-3 * rms(sine(frequency, rate, 1.0))


def test_passband_edge_is_kept() -> None:
    resampled = resample(sine(3300, 48000, 1.0), 48000)
    assert rms(resampled[400:-400]) == pytest.approx(0.5 / np.sqrt(2), rel=0.05)


def test_resample_keeps_dtype_and_alignment() -> None:
    impulse = np.zeros(4800, dtype=np.int16)
    impulse[2400] = 30000
    out = resample(impulse, 48000)
    assert out.dtype == np.int16
    assert int(np.argmax(out)) == 400  # no filter delay: 2400 / 6
    floats = resample(np.ones(44100), 44100)
    assert floats.dtype == np.float64
    np.testing.assert_allclose(floats[100:-100], 1.0, atol=1e-9)  # DC gain is exactly 1


def test_upsampling_works_too() -> None:
    up = resample(sine(500, 8000, 0.5), 8000, 48000)
    assert len(up) == 24000
    assert dominant_frequency(up, 48000) == pytest.approx(500, abs=3)


def test_resample_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="positive"):
        resample(np.zeros(10), 0)
    with pytest.raises(ValueError, match="mono"):
        resample(np.zeros((10, 2)), 16000)


@settings(max_examples=50, deadline=None)
@given(
    length=st.integers(0, 2000),
    from_rate=st.sampled_from([8000, 11025, 16000, 22050, 32000, 44100, 48000, 12345]),
    to_rate=st.sampled_from([8000, 16000, 7999]),
)
def test_resampled_length_is_ceil_of_ratio(length: int, from_rate: int, to_rate: int) -> None:
    out = resample(np.zeros(length, dtype=np.int16), from_rate, to_rate)
    assert len(out) == -(-length * to_rate // from_rate)
    assert not out.any()


@pytest.mark.parametrize("rate", [44101, 8001])
def test_odd_rates_are_converted_cleanly(rate: int) -> None:
    resampled = resample(sine(1000, rate, 1.0), rate)
    ideal = sine(1000, SAMPLE_RATE, 1.0)
    assert rms((resampled - ideal)[400:-400]) < 1e-3


# --- MP3 and content types ----------------------------------------------------------------


def test_mp3_prompt_decodes_to_8khz() -> None:
    pytest.importorskip("miniaudio")
    data = (FIXTURES / "tone-440hz-22050-stereo.mp3").read_bytes()
    decoded = load_audio(data, "audio/mpeg")
    assert decoded.dtype == np.int16
    assert 0.55 < len(decoded) / SAMPLE_RATE < 0.75  # 0.6 s plus encoder padding
    assert dominant_frequency(decoded[1000:4000]) == pytest.approx(440, abs=5)
    # The bytes are recognised even when a server labels them badly.
    np.testing.assert_array_equal(load_audio(data, "application/octet-stream"), decoded)


def test_wav_served_as_anything_is_read_as_wav() -> None:
    data = encode_wav(np.array([1, 2, 3], dtype=np.int16))
    for content_type in ("audio/wav; charset=binary", "audio/mpeg", None):
        np.testing.assert_array_equal(load_audio(data, content_type), [1, 2, 3])


def test_unrecognised_audio_is_rejected() -> None:
    with pytest.raises(AudioFormatError, match="unsupported audio"):
        load_audio(b"<html>not audio</html>", "text/html")
    with pytest.raises(AudioFormatError, match="MP3"):
        load_audio(b"definitely not an mp3", "audio/mpeg")


# --- the recording spool -------------------------------------------------------------------


def read_with_wave_module(path: Path) -> tuple[int, int, np.ndarray]:
    with wave.open(str(path), "rb") as reader:
        frames = reader.readframes(reader.getnframes())
        return reader.getnchannels(), reader.getframerate(), np.frombuffer(frames, "<i2")


def test_spool_header_is_valid_after_each_flush(tmp_path: Path) -> None:
    path = tmp_path / "rec.wav"
    frame = np.full(FRAME_SAMPLES, 1000, dtype=np.int16)
    with WavSpoolWriter(path, sync_interval=0.1) as writer:
        assert len(load_wav(path)) == 0
        for _ in range(5):  # 100 ms: the automatic flush happens on the fifth frame
            writer.write(frame)
        assert len(load_wav(path)) == 5 * FRAME_SAMPLES
        writer.write(frame)
        writer.flush()
        assert len(load_wav(path)) == 6 * FRAME_SAMPLES
        assert writer.duration == pytest.approx(0.12)
    channels, rate, samples = read_with_wave_module(path)
    assert (channels, rate, len(samples)) == (1, 8000, 6 * FRAME_SAMPLES)
    assert writer.closed


def test_spool_is_handed_to_the_os_each_sync_interval_and_fsynced_more_rarely(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "rec.wav"
    fsynced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (fsynced.append(fd), real_fsync(fd))[1])
    frame = np.full(FRAME_SAMPLES, 1000, dtype=np.int16)
    with WavSpoolWriter(path, sync_interval=0.1, fsync_interval=1.0) as writer:
        assert len(fsynced) == 1  # the new file itself
        for count in range(1, 101):  # 2 s of audio
            writer.write(frame)
            if count % 5 == 0:  # each 100 ms the header counts everything written
                assert len(load_wav(path)) == count * FRAME_SAMPLES
        assert len(fsynced) == 1 + 2  # once per second of audio, not once per flush
    assert len(fsynced) == 4  # and on close
    assert len(load_wav(path)) == 100 * FRAME_SAMPLES


def test_two_channel_spool_keeps_parties_apart(tmp_path: Path) -> None:
    path = tmp_path / "dual.wav"
    left = np.full(FRAME_SAMPLES, 111, dtype=np.int16)
    right = np.full(FRAME_SAMPLES, -222, dtype=np.int16)
    with WavSpoolWriter(path, channels=2) as writer:
        writer.write(np.stack([left, right], axis=1))
        assert writer.frames_written == FRAME_SAMPLES
    channels, _, samples = read_with_wave_module(path)
    assert channels == 2
    np.testing.assert_array_equal(samples[0::2], left)
    np.testing.assert_array_equal(samples[1::2], right)


def test_spool_rejects_wrong_shapes_and_closed_writes(tmp_path: Path) -> None:
    writer = WavSpoolWriter(tmp_path / "x.wav", channels=2)
    with pytest.raises(ValueError, match="shape"):
        writer.write(np.zeros(FRAME_SAMPLES, dtype=np.int16))
    with pytest.raises(ValueError, match="int16"):
        writer.write(np.zeros((4, 2), dtype=np.float32))  # type: ignore[arg-type]
    writer.close()
    writer.close()
    with pytest.raises(ValueError, match="closed"):
        writer.write(np.zeros((4, 2), dtype=np.int16))
    with pytest.raises(ValueError, match="mono or two-channel"):
        WavSpoolWriter(tmp_path / "y.wav", channels=3)
    with pytest.raises(FileExistsError):  # an existing recording is never overwritten
        WavSpoolWriter(tmp_path / "x.wav")


def test_recording_left_by_a_killed_process_is_recovered(tmp_path: Path) -> None:
    path = tmp_path / "killed.wav"
    script = (
        "import os, numpy as np\n"
        "from sautikit.media.audio import WavSpoolWriter\n"
        f"w = WavSpoolWriter({str(path)!r}, sync_interval=1.0)\n"
        "for i in range(80):\n"
        "    w.write(np.full(160, i, dtype=np.int16))\n"
        "w._file.flush()\n"  # the OS has the bytes; the header still says 50 frames
        "os._exit(9)\n"
    )
    subprocess.run([sys.executable, "-c", script], check=False)
    with wave.open(str(path), "rb") as reader:
        assert reader.getnframes() == 50 * FRAME_SAMPLES  # as of the last automatic flush
    assert recover_wav(path) == 80 * FRAME_SAMPLES
    _, _, samples = read_with_wave_module(path)
    np.testing.assert_array_equal(samples[-FRAME_SAMPLES:], np.full(FRAME_SAMPLES, 79))


def test_recover_cuts_a_torn_sample_frame(tmp_path: Path) -> None:
    path = tmp_path / "torn.wav"
    path.write_bytes(wav_bytes(b"", channels=2) + b"\x01\x00\x02\x00\x03")
    assert recover_wav(path) == 1
    assert path.stat().st_size == 44 + 4
    np.testing.assert_array_equal(load_wav(path), [2])


def test_recover_rejects_non_wav(tmp_path: Path) -> None:
    path = tmp_path / "junk.wav"
    path.write_bytes(b"hello")
    with pytest.raises(AudioFormatError):
        recover_wav(path)


def test_recordings_of_wideband_calls_load_at_16_khz() -> None:
    from sautikit.media.audio import load_recording_channels

    t = np.arange(16000) / 16000
    left = (8000 * np.sin(2 * np.pi * 6000 * t)).astype(np.int16)
    stereo = np.stack([left, left // 2], axis=1)
    rate, (first, second) = load_recording_channels(encode_wav(stereo, 16000, 2), "audio/wav")
    assert rate == 16000 and len(first) == len(second) == 16000
    assert np.abs(first).max() > 7000  # 6 kHz kept: an 8 kHz copy could not hold it
    narrow_rate, (narrow,) = load_recording_channels(encode_wav(left[::2], 8000), "audio/wav")
    assert (narrow_rate, len(narrow)) == (8000, 8000)
