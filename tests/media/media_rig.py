"""A loopback rig for the media engine tests: far-end phones, tick drivers, audio measures.

A :class:`Phone` is a plain :class:`RtpSession` on 127.0.0.1 standing in for a device at the
far end of a call leg: it says a known tone and keeps every frame it hears. Tests either
run the engine's real clock (and the phones' own clock) for a second or two, or drive both
by hand with :func:`run_ticks`, which lets the loopback datagrams land between steps, so
many seconds of audio take a fraction of that.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import wave
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import pytest

from sautikit.media.audio import FRAME_SAMPLES, SAMPLE_RATE
from sautikit.media.channel import MediaChannel
from sautikit.media.engine import MediaEngine
from sautikit.media.player import tone
from sautikit.media.session import RtpSession
from sautikit.media.tts import TextToSpeech

HOST = "127.0.0.1"
# A slice of 41000-44999 per test process: a port another test run just let go may still
# get its phone's packets, and symmetric RTP would latch onto that stranger.
_SLICE = 100
PORT_RANGE = (41000 + os.getpid() % 40 * _SLICE, 41000 + os.getpid() % 40 * _SLICE + _SLICE - 1)

Int16Array = npt.NDArray[np.int16]
T = TypeVar("T")


class Phone:
    """The far end of a call leg: says ``voice`` (looped, or silence) and records what it hears."""

    def __init__(self, session: RtpSession, voice: Int16Array | None) -> None:
        self.session = session
        self.voice = voice
        self.speaking = voice is not None
        self._position = 0
        self.heard: list[Int16Array] = []

    @classmethod
    async def open(cls, voice: Int16Array | None = None) -> Phone:
        return cls(await RtpSession.open(HOST, 0, rtcp_port=0), voice)

    @classmethod
    async def dial(cls, channel: MediaChannel, voice: Int16Array | None = None) -> Phone:
        """A phone whose media is connected to ``channel`` both ways, as after SDP."""
        phone = await cls.open(voice)
        host, port = phone.session.local_address
        channel.configure(host, port, "PCMU", 0, 101)
        phone.session.set_remote(channel.local_address)
        return phone

    def speak(self) -> None:
        if self.voice is None or not self.speaking:
            self.session.send_frame(np.zeros(FRAME_SAMPLES, np.int16))
            return
        indexes = np.arange(self._position, self._position + FRAME_SAMPLES)
        self.session.send_frame(np.take(self.voice, indexes, mode="wrap"))
        self._position += FRAME_SAMPLES

    def listen(self) -> None:
        self.heard.append(self.session.read_frame())

    def on_tick(self, tick: int) -> None:
        self.listen()
        self.speak()

    def heard_since(self, frame: int) -> Int16Array:
        """What the phone heard from its ``frame``-th tick on, as one array."""
        return np.concatenate(self.heard[frame:]) if self.heard[frame:] else np.zeros(0, np.int16)

    def close(self) -> None:
        self.session.close()


class Rig:
    """An engine ticked by hand, and the phones at the far end of its channels."""

    def __init__(self, engine: MediaEngine) -> None:
        self.engine = engine
        self.phones: list[Phone] = []

    async def call(self, voice: Int16Array | None = None) -> tuple[MediaChannel, Phone]:
        """A new channel with a phone connected to it, saying ``voice``."""
        channel = await self.engine.open_channel()
        phone = await Phone.dial(channel, voice)
        self.phones.append(phone)
        return channel, phone

    async def run(self, ticks: int) -> None:
        await run_ticks(self.engine, self.phones, ticks)

    async def run_until(self, work: Awaitable[T], max_ticks: int = 1000) -> T:
        return await run_until(self.engine, self.phones, work, max_ticks)


@contextlib.asynccontextmanager
async def open_rig(tts: TextToSpeech | None = None) -> AsyncIterator[Rig]:
    rig = Rig(MediaEngine(HOST, PORT_RANGE, tts))
    try:
        yield rig
    finally:
        await rig.engine.close()
        for phone in rig.phones:
            phone.close()


def voice(frequency: float, seconds: float = 1.0) -> Int16Array:
    """A loud steady tone to loop as a phone's voice (no fades, so loops join cleanly)."""
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return np.rint(0.3 * 32767 * np.sin(2 * np.pi * frequency * t)).astype(np.int16)


async def settle() -> None:
    """Let loopback datagrams and woken futures run (each socket reads one per loop turn)."""
    for _ in range(4):
        await asyncio.sleep(0)


async def run_ticks(engine: MediaEngine, phones: list[Phone], count: int) -> None:
    """``count`` ticks of the engine by hand, the phones speaking before and listening after."""
    for _ in range(count):
        for phone in phones:
            phone.speak()
        await settle()
        engine.on_tick(engine.tick + 1)
        await settle()
        for phone in phones:
            phone.listen()


async def run_until(
    engine: MediaEngine, phones: list[Phone], work: Awaitable[T], max_ticks: int = 1000
) -> T:
    """Tick by hand until ``work`` is done (failing after ``max_ticks``); returns its result.

    Each tick also yields a millisecond of real time: work that waits on a thread (speech
    synthesis) must not lose the race against a loop spinning ticks on a loaded machine."""
    task = asyncio.ensure_future(work)
    for _ in range(max_ticks):
        if task.done():
            return task.result()
        await run_ticks(engine, phones, 1)
        await asyncio.sleep(0.001)
    task.cancel()
    pytest.fail(f"not done after {max_ticks} ticks")


async def until(condition: Callable[[], bool], what: str, tries: int = 3000) -> None:
    """Wait (bounded, on real time) for something the running clocks will make happen."""
    for _ in range(tries):
        if condition():
            return
        await asyncio.sleep(0.001)
    pytest.fail(f"never happened: {what}")


def amplitude_at(samples: Int16Array, frequency: float) -> float:
    """Peak amplitude (in int16 units) of the ``frequency`` component of ``samples``."""
    if len(samples) == 0:
        return 0.0
    t = np.arange(len(samples)) / SAMPLE_RATE
    component = np.dot(samples.astype(np.float64), np.exp(-2j * np.pi * frequency * t))
    return float(2 * abs(component) / len(samples))


def dominant_frequency(samples: Int16Array) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64) * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / SAMPLE_RATE)[np.argmax(spectrum)])


def rms(samples: Int16Array) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if len(samples) else 0.0


def read_wav_channels(path: Path) -> tuple[int, list[Int16Array]]:
    """A 16-bit WAV's sample rate and each channel's samples, not downmixed."""
    with wave.open(str(path), "rb") as wav:
        rate, channels = wav.getframerate(), wav.getnchannels()
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    return rate, [data[index::channels].astype(np.int16) for index in range(channels)]


def prompt(frequency: float, seconds: float) -> Int16Array:
    """A prompt for a channel to play: a tone with soft ends."""
    return tone(frequency, seconds)
