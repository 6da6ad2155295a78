"""Frame-level audio playback: prompts in, one 20 ms frame per media-clock tick out.

A :class:`Player` holds a prompt or a playlist of prompts (8 kHz mono int16, e.g. from
:mod:`sautikit.media.tts` or :func:`sautikit.media.audio.load_audio`) and yields
:data:`~sautikit.media.audio.FRAME_SAMPLES`-sample frames from :meth:`Player.next_frame`,
which the call's media session calls once per tick. Prompts of a playlist follow each other
seamlessly; only the very last frame is padded with silence.

``loop`` follows the ``say``/``play`` verbs of Sautikit's voice actions: ``loop=0`` (the
default) and ``loop=1`` play once, ``loop=n`` plays the whole playlist ``n`` times.

The module also makes the tones the PBX needs: :func:`beep` before a ``record``,
:func:`join_tone` and :func:`leave_tone` for conferences, and :func:`silence` for ``pause``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from sautikit.media.audio import FRAME_SAMPLES, SAMPLE_RATE

__all__ = ["Player", "beep", "join_tone", "leave_tone", "silence", "tone"]

Int16Array = npt.NDArray[np.int16]

_FADE_SECONDS = 0.005  # ramps at both ends of a tone, so it starts and ends without a click


class Player:
    """Plays a prompt or playlist frame by frame, ``loop`` times, until done or stopped."""

    def __init__(self, audio: Int16Array | Sequence[Int16Array], loop: int = 0) -> None:
        if loop < 0:
            raise ValueError(f"loop must be 0 or more, got {loop}")
        prompts = [audio] if isinstance(audio, np.ndarray) else list(audio)
        for prompt in prompts:
            if prompt.ndim != 1 or prompt.dtype != np.int16:
                raise ValueError(f"prompts are 1-D int16 arrays, got {prompt.dtype} {prompt.shape}")
        self._audio: Int16Array = (
            np.concatenate(prompts) if prompts else np.zeros(0, dtype=np.int16)
        )
        self.plays = max(1, loop)
        self._total = len(self._audio) * self.plays
        self._position = 0
        self._interrupted = False
        self._finished = asyncio.Event()
        if self._total == 0:
            self._finished.set()

    @property
    def done(self) -> bool:
        """True once the last frame was handed out or the player was stopped."""
        return self._finished.is_set()

    @property
    def interrupted(self) -> bool:
        """True if :meth:`stop` ended playback before the end."""
        return self._interrupted

    @property
    def position(self) -> float:
        """Seconds of audio played so far, across loops."""
        return self._position / SAMPLE_RATE

    @property
    def duration(self) -> float:
        """Seconds the whole playback lasts, all loops included."""
        return self._total / SAMPLE_RATE

    def next_frame(self) -> Int16Array | None:
        """The next 20 ms frame, silence-padded at the very end; None once done."""
        if self.done:
            return None
        count = min(FRAME_SAMPLES, self._total - self._position)
        indexes = np.arange(self._position, self._position + count)
        frame = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        frame[:count] = np.take(self._audio, indexes, mode="wrap")
        self._position += count
        if self._position >= self._total:
            self._finished.set()
        return frame

    def stop(self) -> None:
        """Interrupt playback (barge-in, hangup, redirect); no frame follows."""
        if not self.done:
            self._interrupted = True
            self._finished.set()

    async def wait(self) -> bool:
        """Wait until playback ends; True if it played to the end, False if stopped."""
        await self._finished.wait()
        return not self._interrupted


def silence(duration: float) -> Int16Array:
    """``duration`` seconds of silence."""
    return np.zeros(round(duration * SAMPLE_RATE), dtype=np.int16)


def tone(frequency: float, duration: float, amplitude: float = 0.3) -> Int16Array:
    """A sine tone, ``amplitude`` of full scale, with 5 ms fades so it does not click."""
    if not 0 < frequency < SAMPLE_RATE / 2:
        raise ValueError(f"tone frequency must be between 0 and 4000 Hz, got {frequency}")
    if not 0 <= amplitude <= 1:
        raise ValueError(f"tone amplitude must be between 0 and 1, got {amplitude}")
    count = round(duration * SAMPLE_RATE)
    wave = amplitude * np.sin(2 * np.pi * frequency * np.arange(count) / SAMPLE_RATE)
    fade = min(round(_FADE_SECONDS * SAMPLE_RATE), count // 2)
    if fade:
        ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(fade) / fade)
        wave[:fade] *= ramp
        wave[count - fade :] *= ramp[::-1]
    return np.rint(wave * 32767).astype(np.int16)


def beep(duration: float = 0.5) -> Int16Array:
    """The 1 kHz beep played before a recording starts (``record`` with ``playBeep``)."""
    return tone(1000.0, duration)


def join_tone() -> Int16Array:
    """A rising two-note chime: someone joined the conference."""
    return np.concatenate([tone(523.25, 0.12), silence(0.03), tone(783.99, 0.18)])


def leave_tone() -> Int16Array:
    """A falling two-note chime: someone left the conference."""
    return np.concatenate([tone(783.99, 0.12), silence(0.03), tone(523.25, 0.18)])
