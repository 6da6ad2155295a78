"""The media engine: every call leg, bridge and conference of the process on one clock.

:class:`MediaEngine` owns the process's :class:`~sautikit.media.clock.MediaClock` and its
:class:`~sautikit.media.ports.RtpPortAllocator`, and is the clock's only subscriber. Each
20 ms tick runs in phases over all media at once, so audio crosses a bridge or a
conference within the tick it arrived in (no one-tick skew) and no call keeps a timer:

0. flush: every channel sends the packet it queued on the previous tick, first thing, so
   packets leave at the tick itself, 20 ms apart, whatever the rest of the work costs
   (sending at the end of each channel's work spread a leg's send intervals by the
   variation of all the work before it: milliseconds at a hundred calls). The price is
   one frame (20 ms) of send latency;
1. receive: every channel takes its inbound frame from its RTP session (and its DTMF
   digits, silence detection and timeouts);
2. mix: every bridge and conference sets what each of its channels hears (a conference
   mixes all its members in one vectorised mix-minus);
3. transmit: every channel adds its prompt, encodes and queues its frame, and writes its
   recordings.

Nothing awaits inside a tick: waiters are woken through futures. A channel whose tick work
raises is logged and closed, so one broken call never stops the clock for the others.

The clock the engine makes sleeps on :class:`PunctualSleep`, whose timer thread wakes the
loop within tens of microseconds of each deadline (the loop's own timers are
millisecond-grained), so every leg's packets leave 20 ms apart.

Call logic opens a :class:`~sautikit.media.channel.MediaChannel` per call leg with
:meth:`MediaEngine.open_channel`; tests may leave the clock stopped and call
:meth:`MediaEngine.on_tick` themselves.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from sautikit.media.audio import SAMPLE_RATE
from sautikit.media.bridge_recording import BridgeRecording
from sautikit.media.channel import Int16Array, MediaChannel, Mixer, RecordingHandle
from sautikit.media.clock import ClockStats, MediaClock
from sautikit.media.codecs import format_by_name
from sautikit.media.ports import RtpPortAllocator, RtpPortPair
from sautikit.media.quality import LegQuality
from sautikit.media.session import RtpSession
from sautikit.media.tts import TextToSpeech

__all__ = [
    "GIL_SWITCH_INTERVAL",
    "JITTER_BUCKETS",
    "MOS_BUCKETS",
    "EngineStats",
    "MediaEngine",
    "PunctualSleep",
    "QualityTotals",
]

log = logging.getLogger(__name__)

GIL_SWITCH_INTERVAL: Final = 0.0005
"""Seconds a thread may hold the GIL while another waits for it, once an engine runs."""

_WORK_WINDOW: Final = 3000
"""Ticks (a minute) over which the tick-work percentile is taken."""


@dataclass(frozen=True, slots=True)
class EngineStats:
    """What the engine carries and how long its ticks take, for /metrics and benchmarks."""

    clock: ClockStats
    channels: int
    relayed_channels: int
    """Channels whose packets a bridge relays as they arrive, off the tick."""
    mixers: int
    ports_in_use: int
    tick_work_mean: float
    """Mean seconds of work per tick (all three phases)."""
    tick_work_p99: float
    """99th percentile of the work per tick over the recent window."""
    tick_work_max: float
    """Longest tick's work in seconds."""
    failed_channels: int
    """Channels closed because their tick work raised."""


_WATCH_TICKS: Final = 50
"""Ticks (a second) between the one-way audio watch's rounds."""

_MOS_BUCKETS: Final = (1.0, 2.0, 2.5, 3.0, 3.5, 3.8, 4.0, 4.2, 4.4)
_JITTER_BUCKETS: Final = (1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 50.0, 100.0)


@dataclass(slots=True)
class QualityTotals:
    """The quality of every leg that ended, summed for /metrics."""

    legs: int = 0
    packets: int = 0
    lost: int = 0
    one_way_audio_legs: int = 0
    one_way_audio_events: int = 0
    mos_sum: float = 0.0
    jitter_ms_sum: float = 0.0
    jitter_buckets: list[int] = field(default_factory=lambda: [0] * len(_JITTER_BUCKETS))
    """Legs whose mean jitter (ms) was at most each of :data:`JITTER_BUCKETS`."""
    mos_buckets: list[int] = field(default_factory=lambda: [0] * len(_MOS_BUCKETS))
    """Legs whose MOS was at most each of :data:`MOS_BUCKETS` (cumulative, as Prometheus)."""

    def add(self, quality: LegQuality) -> None:
        if not quality.packets:
            return  # a leg that carried no audio (refused, cancelled) says nothing of quality
        self.legs += 1
        self.packets += quality.packets
        self.lost += quality.lost
        self.one_way_audio_legs += quality.one_way_audio
        self.mos_sum += quality.mos_estimate
        self.jitter_ms_sum += quality.jitter_ms
        for index, bound in enumerate(_JITTER_BUCKETS):
            if quality.jitter_ms <= bound:
                self.jitter_buckets[index] += 1
        for index, bound in enumerate(_MOS_BUCKETS):
            if quality.mos_estimate <= bound:
                self.mos_buckets[index] += 1


MOS_BUCKETS: Final = _MOS_BUCKETS
JITTER_BUCKETS: Final = _JITTER_BUCKETS


_WakeRequest = tuple[float, asyncio.AbstractEventLoop, "asyncio.Future[None]"]


class PunctualSleep:
    """An awaitable sleep for the media clock, ended by a timer thread at the deadline.

    uvloop (libuv) keeps its timers in whole milliseconds and fires them up to a
    millisecond late: on this alone, 20 ms send intervals spread by about 1.6 ms at the
    99th percentile, most of a 2 ms budget. ``time.sleep`` in a thread wakes within tens
    of microseconds and hands the wake-up to the loop; spinning the loop instead would be
    as punctual but burn a tenth of a core on an idle server. Requests are served one at a
    time, in order, as one clock makes them. Call :meth:`close` when done.
    """

    def __init__(self) -> None:
        self._requests: queue.SimpleQueue[_WakeRequest | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    async def __call__(self, delay: float) -> None:
        if delay <= 0:
            await asyncio.sleep(0)
            return
        loop = asyncio.get_running_loop()
        woken: asyncio.Future[None] = loop.create_future()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="media-clock-timer", daemon=True)
            self._thread.start()
        self._requests.put((time.monotonic() + delay, loop, woken))
        await woken

    def close(self) -> None:
        """Let the timer thread end (after any wake-up it is waiting for)."""
        if self._thread is not None:
            self._requests.put(None)
            self._thread = None

    def _run(self) -> None:
        while (request := self._requests.get()) is not None:
            deadline, loop, woken = request
            delay = deadline - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            # A loop that has closed meanwhile has nobody waiting any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_wake, woken)


def _wake(woken: asyncio.Future[None]) -> None:
    if not woken.done():  # not cancelled meanwhile
        woken.set_result(None)


class MediaEngine:
    """All RTP media of one process, paced by one clock.

    ``host`` is the address literal RTP binds to (and that goes into SDP); ``port_range``
    the inclusive range RTP/RTCP pairs come from; ``tts`` speaks for
    :meth:`MediaChannel.say`. Pass ``clock`` to share one; otherwise the engine makes its
    own, which :meth:`start` runs and :meth:`close` stops. ``one_way_audio_after`` seconds
    without a packet from a leg (after its SDP was agreed) report one-way audio on it.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port_range: tuple[int, int] = (20000, 29999),
        tts: TextToSpeech | None = None,
        clock: MediaClock | None = None,
        one_way_audio_after: float = 0.0,
    ) -> None:
        self.host = host
        self.one_way_audio_after = one_way_audio_after
        """Seconds without RTP from a leg that count as one-way audio (0: not watched)."""
        self.totals = QualityTotals()
        self.tts = tts
        self.ports = RtpPortAllocator(*port_range)
        self._owns_clock = clock is None
        self._sleep: PunctualSleep | None = None
        if clock is None:
            self._sleep = PunctualSleep()
            clock = MediaClock(sleep=self._sleep)
        self.clock = clock
        self.clock.subscribe(self)
        self.tick = -1
        """Index of the clock's last tick run (-1 before the first)."""
        self.tick_started = 0.0
        """When (time.monotonic) the last tick began."""
        self._channels: dict[MediaChannel, None] = {}
        # Channels whose packets are relayed (see Bridge): off the tick, which then costs
        # O(clocked channels), not O(all of them).
        self._relayed: set[MediaChannel] = set()
        self._mixers: dict[Mixer, None] = {}
        self._channel_snapshot: tuple[MediaChannel, ...] | None = ()
        self._mixer_snapshot: tuple[Mixer, ...] | None = ()
        self._ticks_run = 0
        self._work_total = 0.0
        self._work_max = 0.0
        self._failed_channels = 0
        self._recent_work: collections.deque[float] = collections.deque(maxlen=_WORK_WINDOW)
        # One thread does every recording's file I/O, in order, off the event loop.
        self._disk = ThreadPoolExecutor(max_workers=1, thread_name_prefix="media-recordings")
        self._closed = False

    # --- life -----------------------------------------------------------------------------

    def start(self) -> None:
        """Run the clock on the current event loop, unless it already runs.

        Also shortens the interpreter's GIL switch interval to :data:`GIL_SWITCH_INTERVAL`
        (process-wide): when the recording thread holds the GIL, the loop's thread waits a
        whole switch interval (5 ms by default) to take it back, and that wait lands in
        the send intervals of every leg sent after it.
        """
        if sys.getswitchinterval() > GIL_SWITCH_INTERVAL:
            sys.setswitchinterval(GIL_SWITCH_INTERVAL)
        if not self.clock.running:
            self.clock.start()

    async def close(self) -> None:
        """Close every channel, stop the clock if the engine made it, release all ports."""
        if self._closed:
            return
        self._closed = True
        for channel in list(self._channels):
            channel.close_now()
        for mixer in list(self._mixers):
            mixer.close()
        self.clock.unsubscribe(self)
        if self._owns_clock:
            await self.clock.close()
        if self._sleep is not None:
            self._sleep.close()
        await asyncio.sleep(0)  # the channels' transports finish closing their sockets
        self.ports.close()
        # Let the last recordings reach the disk.
        await asyncio.get_running_loop().run_in_executor(None, self._disk.shutdown)

    async def __aenter__(self) -> MediaEngine:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- channels and mixers --------------------------------------------------------------

    async def open_channel(
        self,
        codec_name: str = "PCMU",
        payload_type: int | None = None,
        dtmf_payload_type: int | None = 101,
    ) -> MediaChannel:
        """A new call leg on a fresh RTP/RTCP port pair; raises PortsExhausted when full.

        The codec may change later with :meth:`MediaChannel.configure`, once SDP is agreed.
        """
        if self._closed:
            raise RuntimeError("the media engine is closed")
        codec = format_by_name(codec_name)
        pair = self.ports.allocate(self.host)
        try:
            session = await RtpSession.open(
                sock=pair.rtp_socket,
                rtcp_sock=pair.rtcp_socket,
                codec=codec,
                payload_type=payload_type,
                dtmf_payload_type=dtmf_payload_type,
            )
        except BaseException:
            self.ports.release(pair)
            raise
        channel = MediaChannel(self, session, pair)
        self._channels[channel] = None
        self._channel_snapshot = None
        return channel

    @property
    def channels(self) -> tuple[MediaChannel, ...]:
        return tuple(self._channels)

    def set_clocked(self, channel: MediaChannel, clocked: bool) -> None:
        """Take a channel off the tick while a bridge relays its packets, or back on."""
        if clocked:
            if channel in self._relayed:
                self._relayed.discard(channel)
                self._channel_snapshot = None
        elif channel in self._channels and channel not in self._relayed:
            self._relayed.add(channel)
            self._channel_snapshot = None

    @property
    def relayed_channels(self) -> int:
        """Channels off the tick, their packets relayed."""
        return len(self._relayed)

    def forget(self, channel: MediaChannel, ports: RtpPortPair) -> None:
        """Called by a closing channel: stop ticking it and give its ports back."""
        if self._channels.pop(channel, False) is not False:
            self._channel_snapshot = None
            self.totals.add(channel.quality())
        self._relayed.discard(channel)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.ports.release(ports)
        else:
            # After the transports' own close, which the loop runs next: the sockets must
            # outlive the transports that use them.
            loop.call_soon(self.ports.release, ports)

    def open_recording(
        self,
        path: str | os.PathLike[str],
        channels: int = 1,
        on_stop: Callable[[RecordingHandle], None] | None = None,
        sample_rate: int = SAMPLE_RATE,
    ) -> RecordingHandle:
        """A recording to a new WAV file at ``path``, written by the recording thread.

        Channels, bridges and conferences record through this; ``on_stop`` is called when
        the recording is stopped. ``sample_rate`` is 8000, or 16000 for a wideband leg.
        """
        return RecordingHandle(path, channels, self._disk, on_stop, sample_rate)

    def open_bridge_recording(
        self,
        path: str | os.PathLike[str],
        channels: int,
        decode: tuple[Callable[[bytes], Int16Array], Callable[[bytes], Int16Array]],
        sample_rate: int = SAMPLE_RATE,
    ) -> BridgeRecording:
        """A bridge's recording at ``path``, fed by relayed packets or clocked frames;
        ``sample_rate`` 16000 keeps a wideband leg's audio."""
        return BridgeRecording(self, path, channels, self._disk, decode, sample_rate=sample_rate)

    def add_mixer(self, mixer: Mixer) -> None:
        """Called by a bridge or conference: mix it on every tick from the next one."""
        self._mixers[mixer] = None
        self._mixer_snapshot = None

    def remove_mixer(self, mixer: Mixer) -> None:
        if self._mixers.pop(mixer, False) is not False:
            self._mixer_snapshot = None

    # --- the tick -------------------------------------------------------------------------

    def on_tick(self, tick: int) -> None:
        """One 20 ms step of all media; called by the clock, or by tests directly."""
        started = time.perf_counter()
        self.tick_started = time.monotonic()
        if self._channel_snapshot is None:
            relayed = self._relayed
            self._channel_snapshot = tuple(c for c in self._channels if c not in relayed)
        if self._mixer_snapshot is None:
            self._mixer_snapshot = tuple(self._mixers)
        channels = self._channel_snapshot
        # More than one when the clock skipped ticks in a stall (never before the first tick).
        elapsed = max(1, tick - self.tick) if self._ticks_run else 1
        self.tick = tick
        for channel in channels:
            try:
                channel.flush()
            except Exception:
                self._fail(channel)
        for channel in channels:
            if channel.closed:
                continue
            try:
                channel.receive(elapsed)
            except Exception:
                self._fail(channel)
        for mixer in self._mixer_snapshot:
            try:
                mixer.mix()
            except Exception:
                log.exception("mixing %r failed; closing it", mixer)
                self.remove_mixer(mixer)
                try:
                    mixer.close()
                except Exception:
                    log.exception("closing %r failed too", mixer)
        for channel in channels:
            if channel.closed:
                continue
            try:
                channel.transmit()
            except Exception:
                self._fail(channel)
        if self.one_way_audio_after > 0 and tick % _WATCH_TICKS == 0:
            self._watch_inbound()
        work = time.perf_counter() - started
        self._ticks_run += 1
        self._work_total += work
        self._work_max = max(self._work_max, work)
        self._recent_work.append(work)

    def _watch_inbound(self) -> None:
        # Once a second over every channel, relayed ones too: a few microseconds per
        # hundred calls, amortised over 50 ticks.
        now = time.monotonic()
        after = self.one_way_audio_after
        for channel in tuple(self._channels):
            if channel.check_inbound(now, after):
                self.totals.one_way_audio_events += 1

    def _fail(self, channel: MediaChannel) -> None:
        log.exception("media of %r failed on the clock; closing it", channel)
        self._failed_channels += 1
        try:
            channel.close_now()
        except Exception:
            log.exception("closing %r failed too", channel)

    # --- statistics -----------------------------------------------------------------------

    def stats(self) -> EngineStats:
        return EngineStats(
            clock=self.clock.stats(),
            channels=len(self._channels),
            relayed_channels=len(self._relayed),
            mixers=len(self._mixers),
            ports_in_use=self.ports.in_use,
            tick_work_mean=self._work_total / self._ticks_run if self._ticks_run else 0.0,
            tick_work_p99=float(np.percentile(self._recent_work, 99)) if self._recent_work else 0.0,
            tick_work_max=self._work_max,
            failed_channels=self._failed_channels,
        )
