"""G.711 µ-law and A-law against known code values, a reference implementation and a sine."""

import importlib
import warnings
from collections.abc import Callable

import numpy as np
import pytest

from sautikit.media.g711 import (
    Samples,
    alaw_decode,
    alaw_encode,
    ulaw_decode,
    ulaw_encode,
)

EVERY_SAMPLE = np.arange(-32768, 32768).astype(np.int16)
EVERY_CODE = bytes(range(256))


@pytest.mark.parametrize(
    ("code", "sample"),
    [(0xFF, 0), (0x7F, 0), (0x00, -32124), (0x80, 32124), (0x8F, 16764), (0x70, -120)],
)
def test_ulaw_decode_known_values(code: int, sample: int) -> None:
    assert ulaw_decode(bytes([code]))[0] == sample


@pytest.mark.parametrize(
    ("code", "sample"), [(0xD5, 8), (0x55, -8), (0xAA, 32256), (0x2A, -32256), (0xD4, 24)]
)
def test_alaw_decode_known_values(code: int, sample: int) -> None:
    assert alaw_decode(bytes([code]))[0] == sample


def test_encode_known_values() -> None:
    samples = np.array([0, 32767, -32768, 100], dtype=np.int16)
    assert ulaw_encode(samples) == bytes([0xFF, 0x80, 0x00, 0xF2])
    assert alaw_encode(samples) == bytes([0xD5, 0xAA, 0x2A, 0xD3])


def test_silence_encodes_to_the_idle_codes() -> None:
    frame = np.zeros(160, dtype=np.int16)
    assert ulaw_encode(frame) == b"\xff" * 160
    assert alaw_encode(frame) == b"\xd5" * 160


def test_every_code_survives_decode_then_encode() -> None:
    codes = np.arange(256)
    ulaw = np.frombuffer(ulaw_encode(ulaw_decode(EVERY_CODE)), dtype=np.uint8)
    # 0x7F is µ-law's "negative zero": it decodes to 0, which encodes as 0xFF.
    assert np.array_equal(np.delete(ulaw, 0x7F), np.delete(codes, 0x7F))
    alaw = np.frombuffer(alaw_encode(alaw_decode(EVERY_CODE)), dtype=np.uint8)
    assert np.array_equal(alaw, codes)


@pytest.mark.parametrize(
    ("encode", "decode"), [(ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)]
)
def test_quantisation_error_is_bounded_for_every_sample(
    encode: Callable[[Samples], bytes], decode: Callable[[bytes], Samples]
) -> None:
    error = np.abs(decode(encode(EVERY_SAMPLE)).astype(np.int32) - EVERY_SAMPLE)
    # Logarithmic companding: the step grows with amplitude, about 1/16 of it at most.
    assert np.all(error <= np.abs(EVERY_SAMPLE.astype(np.int32)) / 16 + 8)


@pytest.mark.parametrize(
    ("encode", "decode"), [(ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)]
)
def test_sine_round_trip_keeps_g711_quality(
    encode: Callable[[Samples], bytes], decode: Callable[[bytes], Samples]
) -> None:
    t = np.arange(8000) / 8000
    sine = (16000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    payload = encode(sine)
    assert len(payload) == 8000
    decoded = decode(payload)
    assert decoded.dtype == np.int16
    noise = decoded.astype(np.float64) - sine
    snr_db = 10 * np.log10(np.mean(sine.astype(np.float64) ** 2) / np.mean(noise**2))
    # G.711 gives roughly 38 dB SNR for a loud sine.
    assert snr_db > 33


def test_matches_the_reference_implementation_bit_for_bit() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            audioop = importlib.import_module("audioop")
        except ImportError:
            pytest.skip("audioop left the standard library in Python 3.13")
    pcm = EVERY_SAMPLE.tobytes()
    assert ulaw_encode(EVERY_SAMPLE) == audioop.lin2ulaw(pcm, 2)
    assert alaw_encode(EVERY_SAMPLE) == audioop.lin2alaw(pcm, 2)
    assert ulaw_decode(EVERY_CODE).tobytes() == audioop.ulaw2lin(EVERY_CODE, 2)
    assert alaw_decode(EVERY_CODE).tobytes() == audioop.alaw2lin(EVERY_CODE, 2)
