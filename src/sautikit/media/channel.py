"""One call leg's media, as call logic sees it: play, say, record, listen for silence, DTMF.

A :class:`MediaChannel` wraps one :class:`~sautikit.media.session.RtpSession` and is driven
by its :class:`~sautikit.media.engine.MediaEngine`, which calls it three times per 20 ms
tick: :meth:`MediaChannel.receive` (take the frame the far end said, deliver DTMF, feed
silence detectors, expire timeouts), then the bridge or conference the leg is in sets
:attr:`MediaChannel.feed`, then :meth:`MediaChannel.transmit` (add the prompt playing to
this leg, queue the frame, write recordings); the next tick starts with
:meth:`MediaChannel.flush`, which sends it. Nothing here awaits on the tick and nothing
here runs timers of its own: every timeout is counted in media-clock ticks, so it moves
with the audio and a test can run it with ticks driven by hand. Recordings only queue
frames on the tick; the engine's recording thread does the file I/O.

Every ``await`` of the call-logic API ends when the channel closes (hangup), with an
outcome that says so: :attr:`PlayEnd.CLOSED`, :attr:`DigitsEnd.CLOSED`,
:attr:`SilenceEnd.CLOSED`, or ``None`` from :meth:`MediaChannel.next_digit`. Call logic
never hangs on a call that is gone.

DTMF digits that arrive while nobody waits for one are kept (up to
:data:`DIGIT_BUFFER_SIZE`), so a key pressed during a prompt is the first digit collected
after it. A prompt played with ``interrupt_on_dtmf`` stops at a key press and reports that
digit, which still stays queued for the collector.

A prompt plays over whatever the leg hears: alone it hears just the prompt, in a bridge or
conference the prompt is mixed into the other parties' audio for this leg only.

Wideband legs (G.722, Opus) carry 16 kHz audio. Everything call logic and mixers see stays
8 kHz (:attr:`MediaChannel.inbound`: prompts, silence detection, conferences, taps), and
the 16 kHz frame rides beside it (:attr:`MediaChannel.inbound_wide`): a bridge between two
wideband legs hands it across (:attr:`MediaChannel.feed_wide`), and a leg's own recording
keeps it. What a wideband leg hears otherwise is converted up from 8 kHz on the way out.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol

import numpy as np
import numpy.typing as npt

from sautikit.media.audio import (
    FRAME_DURATION,
    FRAME_SAMPLES,
    SAMPLE_RATE,
    AudioFormatError,
    WavSpoolWriter,
    load_audio,
)
from sautikit.media.codecs import WIDEBAND_RATE, StreamResampler, format_by_name
from sautikit.media.mixer import mix
from sautikit.media.player import Player
from sautikit.media.ports import RtpPortPair
from sautikit.media.quality import LegQuality, mos_estimate
from sautikit.media.recorder import Recorder, RecorderState
from sautikit.media.session import RtpSession
from sautikit.media.silence import SilenceDetector, VoiceActivity
from sautikit.media.srtp import SrtpContext
from sautikit.media.tts import TtsError

if TYPE_CHECKING:
    from sautikit.media.engine import MediaEngine

__all__ = [
    "DIGIT_BUFFER_SIZE",
    "RECORDING_BATCH_TICKS",
    "SILENT_FRAME",
    "ChannelClosed",
    "ChannelInUse",
    "DigitsEnd",
    "DigitsResult",
    "MediaChannel",
    "MediaTap",
    "Mixer",
    "PlayEnd",
    "PlayOutcome",
    "RecordingHandle",
    "SilenceEnd",
]

log = logging.getLogger(__name__)

Int16Array = npt.NDArray[np.int16]
Address = tuple[str, int]

DIGIT_BUFFER_SIZE: Final = 64
"""Digits kept for a later collector; older ones are dropped beyond this."""

RECORDING_BATCH_TICKS: Final = 25
"""Ticks of audio a recording queues before handing them to the recording thread (0.5 s)."""

SILENT_FRAME: Final = np.zeros(FRAME_SAMPLES, dtype=np.int16)
"""One frame of silence, shared and read-only."""
SILENT_FRAME.flags.writeable = False
SILENT_WIDE_FRAME: Final = np.zeros(2 * FRAME_SAMPLES, dtype=np.int16)
"""One 16 kHz frame of silence, shared and read-only."""
SILENT_WIDE_FRAME.flags.writeable = False


class ChannelClosed(Exception):
    """The channel was closed (the call hung up); it cannot join a bridge or conference."""


class ChannelInUse(Exception):
    """The channel is already in a bridge or conference; a leg is in at most one at a time."""


class MediaTap(Protocol):
    """Something beside call logic that hears a leg live and may speak into it (the
    ``stream`` verb's WebSocket). Called on the tick: it must only queue, never block."""

    def next_frame(self) -> Int16Array | None:
        """Audio to mix into what the leg hears on this tick, or None for none."""

    def on_frame(self, inbound: Int16Array, outbound: Int16Array) -> None:
        """This tick's audio: what the far end said, and what the leg hears (with the
        tap's own audio in it)."""

    def on_digit(self, digit: str) -> None:
        """The far end pressed a key (it is also queued for call logic as usual)."""


class Mixer(Protocol):
    """A bridge or conference: sets what its channels hear, once per tick."""

    def mix(self) -> None:
        """Set ``feed`` of every member from the members' ``inbound`` frames."""

    def discard(self, channel: MediaChannel) -> None:
        """Forget ``channel``, which is closing."""

    def on_digit(self, channel: MediaChannel, digit: str) -> None:
        """``channel`` received a DTMF digit (it is also queued for its own call logic)."""

    def close(self) -> float | None:
        """Let every channel go and stop any recording (at engine shutdown, or on a fault)."""

    def reconsider(self, channel: MediaChannel) -> None:
        """What ``channel`` needs changed (a prompt, a recording, hold, a codec): a bridge
        chooses between relaying packets and mixing on the clock again."""


class PlayEnd(enum.Enum):
    """Why a :meth:`MediaChannel.play` ended."""

    FINISHED = "finished"
    """Played to the end, every loop."""
    DIGIT = "digit"
    """A DTMF key interrupted it (``interrupt_on_dtmf``)."""
    STOPPED = "stopped"
    """:meth:`MediaChannel.stop_playback`, or another prompt replaced it."""
    CLOSED = "closed"
    """The channel closed."""


@dataclass(frozen=True, slots=True)
class PlayOutcome:
    end: PlayEnd
    digit: str | None = None
    """The key that interrupted the prompt, for :attr:`PlayEnd.DIGIT`."""
    played: float = 0.0
    """Seconds of audio played, across loops."""


class DigitsEnd(enum.Enum):
    """Why a :meth:`MediaChannel.collect_digits` ended."""

    KEY = "key"
    """A finish key was pressed (it is not part of the digits)."""
    MAX_DIGITS = "max-digits"
    TIMEOUT = "timeout"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class DigitsResult:
    digits: str
    finished_by: DigitsEnd
    key: str | None = None
    """The finish key pressed, for :attr:`DigitsEnd.KEY`."""


class SilenceEnd(enum.Enum):
    """How a :meth:`MediaChannel.wait_for_silence` ended."""

    AFTER_SPEECH = "after-speech"
    """The caller spoke, then was quiet for the whole duration."""
    NO_SPEECH = "no-speech"
    """Quiet from the start for the whole duration."""
    CLOSED = "closed"


class RecordingHandle:
    """A recording in progress: pause, resume, stop, then :meth:`finished`.

    Its owner (a channel, bridge or conference) calls :meth:`write` once per tick, which only
    queues the frame: the file is created, written and synced by the engine's recording
    thread in batches of :data:`RECORDING_BATCH_TICKS`, so disk latency never delays a tick.
    A disk error (including an already existing ``path``) ends the recording; it is kept in
    :attr:`error` and raised by :meth:`finished`.

    ``sample_rate`` is the file's: 16 kHz where a wideband leg is recorded. A frame of the
    other rate (the leg changed codec meanwhile) is converted to it.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        channels: int,
        disk: Executor,
        on_stop: Callable[[RecordingHandle], None] | None = None,
        sample_rate: int = SAMPLE_RATE,
    ) -> None:
        if channels not in (1, 2):
            raise ValueError(f"recordings are mono or two-channel, not {channels} channels")
        if sample_rate not in (SAMPLE_RATE, WIDEBAND_RATE):
            raise ValueError(f"recordings are 8 or 16 kHz, not {sample_rate} Hz")
        self.path = Path(path)
        self.channels = channels
        self.sample_rate = sample_rate
        self._frame_samples = sample_rate * FRAME_SAMPLES // SAMPLE_RATE
        # Per side, the conversion of frames at the other rate (made when first needed).
        self._converters: list[StreamResampler | None] = [None, None]
        self.error: OSError | None = None
        """The error that broke the recording, if one did (set by the recording thread)."""
        self._disk = disk
        self._on_stop = on_stop
        self._state = RecorderState.RECORDING
        self._samples = 0
        # Frames not yet handed to the recording thread (right: two-channel only).
        self._left: list[Int16Array] = []
        self._right: list[Int16Array] = []
        self._recorder: Recorder | None = None
        self._last_job: Future[None] = disk.submit(self._open)

    @property
    def state(self) -> RecorderState:
        return self._state

    @property
    def duration(self) -> float:
        """Seconds recorded (paused time excluded), counting frames not yet on disk."""
        return self._samples / self.sample_rate

    def write(self, frame: Int16Array, other: Int16Array | None = None) -> None:
        """Queue one tick's frame: ``frame`` is mono or left, ``other`` right (None: silence)."""
        if self._state is not RecorderState.RECORDING or self.error is not None:
            return
        frame = self._fit(0, frame)
        self._left.append(frame)
        if self.channels == 2:
            self._right.append(
                np.zeros(len(frame), np.int16) if other is None else self._fit(1, other)
            )
        self._samples += len(frame)
        if len(self._left) >= RECORDING_BATCH_TICKS:
            self._submit_queued()

    def _fit(self, side: int, frame: Int16Array) -> Int16Array:
        """``frame`` at the file's rate: one 20 ms frame of the other rate is converted."""
        if len(frame) == self._frame_samples:
            return frame
        rate = len(frame) * SAMPLE_RATE // FRAME_SAMPLES
        if rate not in (SAMPLE_RATE, WIDEBAND_RATE):
            return frame  # a frame of another length at this rate (the clock skipped)
        converter = self._converters[side]
        if converter is None or converter.from_rate != rate:
            converter = self._converters[side] = StreamResampler(rate, self.sample_rate)
        return converter.process(frame)

    def pause(self) -> None:
        """Leave out what is said until :meth:`resume`."""
        if self._state is RecorderState.RECORDING:
            self._state = RecorderState.PAUSED

    def resume(self) -> None:
        if self._state is RecorderState.PAUSED:
            self._state = RecorderState.RECORDING

    def stop(self) -> float:
        """End the recording; returns the seconds recorded. Idempotent.

        The file gets its final sizes shortly after, on the recording thread: await
        :meth:`finished` before reading it.
        """
        if self._state is not RecorderState.STOPPED:
            self._state = RecorderState.STOPPED
            self._submit_queued()
            self._last_job = self._disk.submit(self._close)
            if self._on_stop is not None:
                self._on_stop(self)
        return self.duration

    async def finished(self) -> None:
        """Wait until everything submitted so far is on disk (after :meth:`stop`: the whole,
        closed file); raises the OSError that broke the recording, if one did."""
        await asyncio.wrap_future(self._last_job)
        if self.error is not None:
            raise self.error

    def _submit_queued(self) -> None:
        if self._left:
            left, right = self._left, self._right
            self._left, self._right = [], []
            self._last_job = self._disk.submit(self._write, left, right)

    # The three steps below run on the recording thread, in submission order.

    def _open(self) -> None:
        try:
            self._recorder = Recorder(
                WavSpoolWriter(self.path, channels=self.channels, sample_rate=self.sample_rate)
            )
        except OSError as exc:
            self._fail(exc)

    def _write(self, left: list[Int16Array], right: list[Int16Array]) -> None:
        if self._recorder is None or self.error is not None:
            return
        # One write per batch: this thread then holds the GIL too briefly to delay a tick.
        try:
            self._recorder.write(np.concatenate(left), np.concatenate(right) if right else None)
        except OSError as exc:
            self._fail(exc)

    def _close(self) -> None:
        if self._recorder is None:
            return
        try:
            self._recorder.stop()
        except OSError as exc:
            self._fail(exc)

    def _fail(self, exc: OSError) -> None:
        log.error("recording to %s failed: %s", self.path, exc)
        if self.error is None:
            self.error = exc


def seconds_to_ticks(seconds: float) -> int:
    """Whole media-clock ticks covering ``seconds`` (at least 0)."""
    return max(0, math.ceil(seconds / FRAME_DURATION - 1e-9))


@dataclass(slots=True)
class _Playback:
    player: Player
    interrupt_on_dtmf: bool
    done: asyncio.Future[PlayOutcome]


@dataclass(slots=True)
class _DigitWaiter:
    future: asyncio.Future[str | None]
    ticks_left: int | None
    """Ticks until the wait times out; None waits for ever (until a digit or hangup)."""


@dataclass(slots=True)
class _SilenceWaiter:
    detector: SilenceDetector
    future: asyncio.Future[SilenceEnd]


class MediaChannel:
    """One call leg's media. Made by :meth:`MediaEngine.open_channel`, not directly.

    Call logic uses :attr:`local_address`, :meth:`configure`, :meth:`set_direction`,
    :meth:`play`, :meth:`play_file`, :meth:`say`, :meth:`stop_playback`,
    :meth:`start_recording`, :meth:`wait_for_silence`, :meth:`next_digit`,
    :meth:`collect_digits`, :meth:`send_dtmf`, :meth:`clear_digits` and :meth:`close`.
    The engine drives :meth:`flush`, :meth:`receive` and :meth:`transmit`; bridges and
    conferences use :attr:`inbound`, :attr:`feed`, :meth:`attach` and :meth:`detach`.
    """

    def __init__(self, engine: MediaEngine, session: RtpSession, ports: RtpPortPair) -> None:
        self.engine = engine
        self.session = session
        self._ports = ports
        self.inbound: Int16Array = SILENT_FRAME
        """What the far end said on the current tick (silence while not receiving)."""
        self.feed: Int16Array | None = None
        """What the bridge or conference gives this leg to hear on the current tick."""
        self.inbound_wide: Int16Array | None = None
        """The far end's frame of this tick at 16 kHz, when the leg is wideband (else None)."""
        self.feed_wide: Int16Array | None = None
        """A 16 kHz version of :attr:`feed`, from a bridge to a wideband leg: sent in its
        place when nothing else is mixed in for this leg."""
        # A wideband leg's conversions: what it receives down to 8 kHz, what it hears up.
        self._downsample: StreamResampler | None = None
        self._upsample: StreamResampler | None = None
        self.sending = True
        self.receiving = True
        self._closed = False
        self._mixer: Mixer | None = None
        self._playback: _Playback | None = None
        self._digits: deque[str] = deque(maxlen=DIGIT_BUFFER_SIZE)
        self._digit_waiters: deque[_DigitWaiter] = deque()
        self._silence_waiters: list[_SilenceWaiter] = []
        self._recordings: list[RecordingHandle] = []
        self.ptime = 20
        """The packet time in milliseconds the peer asked for (SDP ``a=ptime``)."""
        self._taps: list[MediaTap] = []
        self.one_way_audio = False
        """The far end sent nothing for the engine's one-way audio time while we expected
        audio from it (set once, for the call's record)."""
        self.on_one_way_audio: Callable[[MediaChannel, float], None] | None = None
        """Called with the seconds of silence when one-way audio is detected."""
        self._media_expected_since: float | None = None
        self._silence_reported = False

    # --- signalling-facing ----------------------------------------------------------------

    @property
    def local_address(self) -> Address:
        """Where this leg receives RTP, for the SDP we send."""
        return self._ports.host, self._ports.rtp_port

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def wideband(self) -> bool:
        """Whether the leg's codec carries 16 kHz audio (G.722, Opus)."""
        return self._downsample is not None

    @property
    def mixer(self) -> Mixer | None:
        """The bridge or conference this leg is in, if any."""
        return self._mixer

    def configure(
        self,
        remote_address: str,
        remote_port: int,
        codec_name: str = "PCMU",
        payload_type: int | None = None,
        dtmf_payload_type: int | None = 101,
        ptime: int = 20,
        srtp: SrtpContext | None = None,
    ) -> None:
        """Apply the negotiated SDP (again on every re-INVITE).

        ``payload_type`` defaults to the codec's static number; ``dtmf_payload_type`` is
        the negotiated telephone-event number, None when the peer offered none; ``ptime``
        the packet time the peer asked for; ``srtp`` the SDES keys when the stream is SRTP.
        """
        codec = format_by_name(codec_name)
        session = self.session
        session.set_srtp(srtp)
        session.codec = codec
        if not codec.wideband:
            self._downsample = self._upsample = None
            self.inbound_wide = None
        elif self._downsample is None or self._downsample.from_rate != codec.sample_rate:
            self._downsample = StreamResampler(codec.sample_rate, SAMPLE_RATE)
            self._upsample = StreamResampler(SAMPLE_RATE, codec.sample_rate)
        session.payload_type = codec.payload_type if payload_type is None else payload_type
        session.dtmf_payload_type = dtmf_payload_type
        session.set_remote((remote_address, remote_port))
        self.ptime = ptime
        self._media_expected_since = time.monotonic()
        self._reconsider()

    def set_direction(self, send: bool, receive: bool) -> None:
        """Hold and resume: without ``send`` no RTP goes out (its timestamps still advance);
        without ``receive`` what arrives is heard, recorded and mixed as silence."""
        self.sending = send
        self.receiving = receive
        self._reconsider()

    # --- playback -------------------------------------------------------------------------

    async def play(
        self,
        audio: Int16Array | Sequence[Int16Array],
        loop: int = 0,
        interrupt_on_dtmf: bool = False,
    ) -> PlayOutcome:
        """Play 8 kHz int16 audio (or a playlist) to this leg and wait until it ends.

        A prompt already playing is stopped first. With ``interrupt_on_dtmf``, a key
        pressed before or during the prompt ends it with :attr:`PlayEnd.DIGIT`; the key
        stays queued for :meth:`collect_digits`. Cancelling the await stops the prompt.
        """
        player = Player(audio, loop)
        if self._closed:
            return PlayOutcome(PlayEnd.CLOSED)
        if interrupt_on_dtmf and self._digits:
            return PlayOutcome(PlayEnd.DIGIT, self._digits[0])
        self.stop_playback()
        playback = _Playback(player, interrupt_on_dtmf, asyncio.get_running_loop().create_future())
        self._playback = playback
        self._reconsider()
        try:
            return await playback.done
        finally:
            if self._playback is playback:
                self._end_playback(PlayEnd.STOPPED)

    async def play_file(
        self,
        path: str | os.PathLike[str],
        loop: int = 0,
        interrupt_on_dtmf: bool = False,
    ) -> PlayOutcome:
        """Play a WAV (any rate) or MP3 file; raises AudioFormatError for anything else."""
        audio = await asyncio.to_thread(_load_file, Path(path))
        return await self.play(audio, loop, interrupt_on_dtmf)

    async def say(
        self,
        text: str,
        language: str = "en-US",
        voice: str | None = None,
        loop: int = 0,
        interrupt_on_dtmf: bool = False,
    ) -> PlayOutcome:
        """Speak ``text`` with the engine's text-to-speech; raises TtsError if it cannot."""
        tts = self.engine.tts
        if tts is None:
            raise TtsError("this media engine has no text-to-speech configured")
        audio = await tts.synthesize(text, language, voice)
        return await self.play(audio, loop, interrupt_on_dtmf)

    def stop_playback(self) -> None:
        """Stop the prompt playing, if any; its :meth:`play` returns :attr:`PlayEnd.STOPPED`."""
        self._end_playback(PlayEnd.STOPPED)

    @property
    def playing(self) -> bool:
        return self._playback is not None

    def _end_playback(self, end: PlayEnd, digit: str | None = None) -> None:
        playback, self._playback = self._playback, None
        if playback is None:
            return
        playback.player.stop()
        if not playback.done.done():
            playback.done.set_result(PlayOutcome(end, digit, playback.player.position))
        self._reconsider()

    # --- recording ------------------------------------------------------------------------

    def start_recording(self, path: str | os.PathLike[str], channels: int = 1) -> RecordingHandle:
        """Record this leg to a new WAV file at ``path``, independently of playback.

        Mono holds what the far end says; two channels hold it on the left and what this
        leg hears (the other parties and prompts) on the right. A wideband leg is recorded
        at 16 kHz, a narrowband one at 8 kHz.
        """
        if self._closed:
            raise ChannelClosed("cannot record a closed channel")
        rate = WIDEBAND_RATE if self.wideband else SAMPLE_RATE
        handle = self.engine.open_recording(path, channels, self._recording_stopped, rate)
        self._recordings.append(handle)
        self._reconsider()
        return handle

    def _recording_stopped(self, handle: RecordingHandle) -> None:
        self._recordings.remove(handle)
        self._reconsider()

    # --- taps -----------------------------------------------------------------------------

    def add_tap(self, tap: MediaTap) -> None:
        """Let ``tap`` hear this leg and speak into it from the next tick on."""
        if self._closed:
            raise ChannelClosed("cannot tap a closed channel")
        if tap not in self._taps:
            self._taps.append(tap)
            self._reconsider()  # a relayed leg goes back on the clock to be heard

    def remove_tap(self, tap: MediaTap) -> None:
        """Stop feeding ``tap``; idempotent."""
        if tap in self._taps:
            self._taps.remove(tap)
            self._reconsider()

    # --- silence --------------------------------------------------------------------------

    async def wait_for_silence(
        self, threshold_dbfs: float = -40.0, duration: float = 5.0
    ) -> SilenceEnd:
        """Wait until the far end has been quieter than ``threshold_dbfs`` for ``duration``
        seconds, counted from now or from the last speech (the ``record`` verb's timeout)."""
        if self._closed:
            return SilenceEnd.CLOSED
        detector = SilenceDetector(threshold_dbfs, duration)
        waiter = _SilenceWaiter(detector, asyncio.get_running_loop().create_future())
        self._silence_waiters.append(waiter)
        self._reconsider()
        try:
            return await waiter.future
        finally:
            if waiter in self._silence_waiters:
                self._silence_waiters.remove(waiter)
            self._reconsider()

    # --- DTMF -----------------------------------------------------------------------------

    # The timeouts below are deadlines in media-clock ticks, not asyncio timers: they follow
    # the audio (and ticks driven by hand in tests), so asyncio.timeout would be wrong here.
    async def next_digit(self, timeout: float | None = None) -> str | None:  # noqa: ASYNC109
        """The next DTMF digit (a queued one first); None on timeout or once closed."""
        if self._digits:
            return self._digits.popleft()
        if self._closed:
            return None
        ticks = None if timeout is None else seconds_to_ticks(timeout)
        waiter = _DigitWaiter(asyncio.get_running_loop().create_future(), ticks)
        self._digit_waiters.append(waiter)
        if ticks is not None:
            self._reconsider()  # a timeout counted in ticks needs the clock
        try:
            return await waiter.future
        except asyncio.CancelledError:
            # Cancelled just after a digit was handed over: keep it for the next reader.
            future = waiter.future
            digit = future.result() if future.done() and not future.cancelled() else None
            if digit is not None:
                self._digits.appendleft(digit)
            raise
        finally:
            if waiter in self._digit_waiters:
                self._digit_waiters.remove(waiter)
            if ticks is not None:
                self._reconsider()

    async def collect_digits(
        self,
        max_digits: int = 0,
        finish_on_key: str = "#",
        timeout: float = 5.0,  # noqa: ASYNC109
        first_digit_timeout: float | None = None,
    ) -> DigitsResult:
        """Collect digits until a finish key, ``max_digits`` (0: no limit), or ``timeout``
        seconds without a key (``first_digit_timeout`` for the first, default ``timeout``).

        ``finish_on_key`` is a set of keys ("" for none); the finish key is not returned
        among the digits. Digits queued before the call count.
        """
        digits = ""
        wait = timeout if first_digit_timeout is None else first_digit_timeout
        while True:
            digit = await self.next_digit(wait)
            if digit is None:
                end = DigitsEnd.CLOSED if self._closed else DigitsEnd.TIMEOUT
                return DigitsResult(digits, end)
            if digit in finish_on_key:
                return DigitsResult(digits, DigitsEnd.KEY, digit)
            digits += digit
            if max_digits and len(digits) >= max_digits:
                return DigitsResult(digits, DigitsEnd.MAX_DIGITS)
            wait = timeout

    def send_dtmf(self, digits: str, duration_ms: int = 100) -> None:
        """Send each digit as RFC 4733 events, in place of audio on the coming ticks.

        Raises ValueError for a bad digit, or when DTMF was not negotiated.
        """
        for digit in digits:
            self.session.send_dtmf(digit, duration_ms)
        self._reconsider()  # the events go out on the clock

    def clear_digits(self) -> None:
        """Forget queued digits (e.g. before a ``getDigits`` that wants fresh input)."""
        self._digits.clear()

    def deliver_relayed_digit(self, digit: str) -> None:
        """A digit detected on the relay path, as it arrived (the leg is off the clock)."""
        self._deliver_digit(digit)

    def _deliver_digit(self, digit: str) -> None:
        while self._digit_waiters:
            waiter = self._digit_waiters.popleft()
            if not waiter.future.done():
                waiter.future.set_result(digit)
                break
        else:
            self._digits.append(digit)
        if self._mixer is not None:
            self._mixer.on_digit(self, digit)
        for tap in self._taps:
            tap.on_digit(digit)
        playback = self._playback
        if playback is not None and playback.interrupt_on_dtmf:
            self._end_playback(PlayEnd.DIGIT, digit)

    # --- the tick, driven by the engine ---------------------------------------------------

    def receive(self, elapsed: int = 1) -> None:
        """Phase 1: take this tick's frame from the far end; DTMF, silence and timeouts.

        ``elapsed`` is the ticks since the last call: more than one when the clock skipped
        ticks in a stall, which then still count towards timeouts and RTP timestamps.
        """
        session = self.session
        if elapsed > 1:
            session.skip(elapsed - 1)
        frame = session.read_frame()
        downsample = self._downsample
        if downsample is not None:
            wide = frame if self.receiving else SILENT_WIDE_FRAME
            # Converted even when on hold, so the filter's memory follows the stream.
            frame = downsample.process(wide)
            self.inbound_wide = wide
        self.inbound = frame if self.receiving else SILENT_FRAME
        digits = session.digits
        while not digits.empty():
            self._deliver_digit(digits.get_nowait())
        if self._digit_waiters:
            self._expire_digit_waiters(elapsed)
        if self._silence_waiters:
            self._feed_silence_waiters()

    def flush(self) -> None:
        """Phase 0, first thing on a tick: send the frame :meth:`transmit` queued on the last
        (not once the leg went on hold meanwhile)."""
        if self.sending:
            self.session.flush()

    def transmit(self) -> None:
        """Phase 3: queue what this leg hears this tick (sent by :meth:`flush` at the start
        of the next), and record both directions."""
        heard = self.feed
        heard_wide = self.feed_wide
        self.feed = self.feed_wide = None
        playback = self._playback
        if playback is not None:
            prompt = playback.player.next_frame()
            if prompt is not None:
                heard = prompt if heard is None else mix(np.stack((heard, prompt)))
                heard_wide = None
            if playback.player.done:
                self._end_playback(PlayEnd.FINISHED)
        for tap in self._taps:
            spoken = tap.next_frame()
            if spoken is not None:
                heard = spoken if heard is None else mix(np.stack((heard, spoken)))
                heard_wide = None
        if heard is None:
            heard = SILENT_FRAME
        for tap in self._taps:
            tap.on_frame(self.inbound, heard)
        upsample = self._upsample
        if upsample is not None:
            # The 8 kHz mix is converted even when a 16 kHz one is sent, so that the filter's
            # memory is current when a prompt starts.
            converted = upsample.process(heard)
            heard_wide = converted if heard_wide is None else heard_wide
        outgoing = heard if heard_wide is None else heard_wide
        if self.sending:
            session = self.session
            sending_dtmf = session.sending_dtmf
            session.queue_frame(outgoing)
            if sending_dtmf and not session.sending_dtmf:
                self._reconsider()
        else:
            self.session.skip(1)
        inbound = self.inbound if self.inbound_wide is None else self.inbound_wide
        for recording in self._recordings:
            if recording.channels == 1:
                recording.write(inbound)
            else:
                recording.write(inbound, outgoing)

    def _expire_digit_waiters(self, elapsed: int) -> None:
        for waiter in list(self._digit_waiters):
            if waiter.ticks_left is None:
                continue
            waiter.ticks_left -= elapsed
            if waiter.ticks_left <= 0:
                self._digit_waiters.remove(waiter)
                if not waiter.future.done():
                    waiter.future.set_result(None)

    def _feed_silence_waiters(self) -> None:
        for waiter in list(self._silence_waiters):
            if waiter.detector.feed(self.inbound) is VoiceActivity.SILENCE:
                self._silence_waiters.remove(waiter)
                if not waiter.future.done():
                    heard = waiter.detector.heard_speech
                    waiter.future.set_result(
                        SilenceEnd.AFTER_SPEECH if heard else SilenceEnd.NO_SPEECH
                    )

    # --- quality --------------------------------------------------------------------------

    def quality(self) -> LegQuality:
        """The leg's audio so far: packets, loss and jitter as RTCP reports them, a MOS."""
        session = self.session
        packets, lost, jitter = session.reception_figures()
        round_trip = session.round_trip
        expected = packets + lost
        loss_percent = 100.0 * lost / expected if expected else 0.0
        round_trip_ms = None if round_trip is None else round_trip * 1000
        return LegQuality(
            packets=packets,
            lost=lost,
            jitter_ms=jitter * 1000,
            mos_estimate=mos_estimate(loss_percent, jitter * 1000, round_trip_ms, self.ptime),
            round_trip_ms=round_trip_ms,
            one_way_audio=self.one_way_audio,
        )

    def check_inbound(self, now: float, after: float) -> bool:
        """The engine's one-way audio watch: True when the far end has been silent (no RTP
        at all) for ``after`` seconds since the SDP was agreed or its last packet, while
        the leg is meant to receive. Reported once per silence."""
        since = self._media_expected_since
        if since is None or self._closed or not self.receiving:
            return False
        last = self.session.last_received
        if last is not None and last > since:
            since = last
            self._silence_reported = False
        silent = now - since
        if silent < after or self._silence_reported:
            return False
        self._silence_reported = True
        self.one_way_audio = True
        log.warning("%r: no RTP from the far end for %.1f s (one-way audio)", self, silent)
        callback = self.on_one_way_audio
        if callback is not None:
            callback(self, silent)
        return True

    # --- bridges and conferences ----------------------------------------------------------

    @property
    def needs_clock(self) -> bool:
        """Whether this leg's media needs the tick: a prompt, its own recording, a tap, silence
        detection, a digit timeout, DTMF to send, or hold. Otherwise a bridge may relay
        its packets as they come."""
        return (
            self._closed
            or self._playback is not None
            or bool(self._recordings)
            or bool(self._taps)
            or bool(self._silence_waiters)
            or any(waiter.ticks_left is not None for waiter in self._digit_waiters)
            or self.session.sending_dtmf
            or not (self.sending and self.receiving)
        )

    def _reconsider(self) -> None:
        mixer = self._mixer
        if mixer is not None:
            mixer.reconsider(self)

    def attach(self, mixer: Mixer) -> None:
        """Called by a bridge or conference taking this leg in."""
        if self._closed:
            raise ChannelClosed("the channel is closed")
        if self._mixer is not None and self._mixer is not mixer:
            raise ChannelInUse(f"the channel is already in {self._mixer!r}")
        self._mixer = mixer

    def detach(self, mixer: Mixer) -> None:
        """Called by a bridge or conference letting this leg go; it hears its prompts again."""
        if self._mixer is mixer:
            self._mixer = None
            self.feed = None
            self.engine.set_clocked(self, True)

    # --- life -----------------------------------------------------------------------------

    async def close(self) -> None:
        """Hang up the media: idempotent; wakes every waiter with a "closed" outcome."""
        self.close_now()

    def close_now(self) -> None:
        """:meth:`close` for synchronous callers (the engine, on a failing channel)."""
        if self._closed:
            return
        self._closed = True
        if self._mixer is not None:
            self._mixer.discard(self)
            self._mixer = None
        self._end_playback(PlayEnd.CLOSED)
        while self._digit_waiters:
            waiter = self._digit_waiters.popleft()
            if not waiter.future.done():
                waiter.future.set_result(None)
        for silence in self._silence_waiters:
            if not silence.future.done():
                silence.future.set_result(SilenceEnd.CLOSED)
        self._silence_waiters.clear()
        for recording in list(self._recordings):
            recording.stop()
        self._taps.clear()
        self.session.close()
        self.engine.forget(self, self._ports)

    def __repr__(self) -> str:
        host, port = self.local_address
        state = "closed" if self._closed else "open"
        return f"<MediaChannel {host}:{port} {state}>"


def _load_file(path: Path) -> Int16Array:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AudioFormatError(f"cannot read audio file {os.fspath(path)!r}: {exc}") from exc
    return load_audio(data)
