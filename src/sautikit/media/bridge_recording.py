"""A bridge's recording, fed by the relay path's packets or by the clock's frames.

While a bridge relays, no frame is decoded on the event loop: each audio packet a leg
sends is tapped as it is forwarded (its bytes and a position in the recording, worked out
from its RTP timestamp) and queued. The recording thread decodes the batch and places each
packet at its position in a reorder buffer of :data:`REORDER_SAMPLES`, so packets that
arrived out of order land in order and a lost one leaves silence, and writes out what has
settled behind it. While the bridge mixes on the clock (a prompt to one leg), the frames
of each tick go into the same buffer at the tick's position, so the two paths join in one
file.

Positions: sample 0 is the first tick after the bridge began; a tick is 160 samples at
8 kHz, 320 in a 16 kHz recording (a bridge with a wideband leg: the clock's frames of
the other leg are converted up; such a bridge is recorded from the clock, not relayed). Each
leg's stream is anchored when its first packet arrives (the tick of its arrival plus the
time since that tick began), then follows its RTP timestamps, so the two channels stay
aligned to within the arrival jitter of those first packets, and audio is not stretched
or squeezed by the jitter of the ones after. A stream that restarts (new SSRC) or whose
timestamps stray more than :data:`REANCHOR_SAMPLES` from the clock is anchored again.

The duration is the bridge's time on the clock, paused time excluded, as for every other
recording; the file holds exactly that many samples.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Final

import numpy as np

from sautikit.media.audio import FRAME_SAMPLES, SAMPLE_RATE
from sautikit.media.channel import Int16Array, RecordingHandle
from sautikit.media.mixer import mix
from sautikit.media.recorder import RecorderState

if TYPE_CHECKING:
    from sautikit.media.engine import MediaEngine

__all__ = ["REANCHOR_SAMPLES", "REORDER_SAMPLES", "BridgeRecording"]

log = logging.getLogger(__name__)

REORDER_SAMPLES: Final = SAMPLE_RATE // 2
"""How far behind the newest audio the recording thread waits for late packets (0.5 s)."""

REANCHOR_SAMPLES: Final = SAMPLE_RATE // 2
"""How far a stream's timestamps may stray from the clock before it is anchored again."""

_BATCH_ITEMS: Final = 50
"""Packets or frames queued on the loop before they go to the recording thread (~0.5 s)."""

_Item = tuple[int, int, "bytes | Int16Array"]
"""(side, position in samples, G.711 payload or decoded frame)."""


class _StreamAnchor:
    """Where one leg's RTP timestamps fall in the recording."""

    __slots__ = ("position", "ssrc", "timestamp")

    def __init__(self) -> None:
        self.ssrc: int | None = None
        self.timestamp = 0
        self.position = 0


class BridgeRecording(RecordingHandle):
    """A two-party bridge's recording: left ``a``, right ``b`` (or both mixed, mono).

    The bridge feeds it with :meth:`tap` (relay path, per packet) or :meth:`write` (clock
    path, per tick). ``decode`` turns each side's payloads into samples (the legs' codec).
    ``sample_rate`` is the file's (16000 when a leg is wideband).
    """

    def __init__(
        self,
        engine: MediaEngine,
        path: str | os.PathLike[str],
        channels: int,
        disk: Executor,
        decode: tuple[Callable[[bytes], Int16Array], Callable[[bytes], Int16Array]],
        on_stop: Callable[[RecordingHandle], None] | None = None,
        sample_rate: int = SAMPLE_RATE,
    ) -> None:
        super().__init__(path, channels, disk, on_stop, sample_rate)
        # Samples per tick, and the reorder window, at the file's rate.
        self._tick_samples = FRAME_SAMPLES * sample_rate // SAMPLE_RATE
        self._reorder_samples = REORDER_SAMPLES * sample_rate // SAMPLE_RATE
        self._engine = engine
        self._decode = decode
        self._start_tick = engine.tick
        self._paused_at: int | None = None
        self._paused_samples = 0
        self._items: list[_Item] = []
        self._anchors = (_StreamAnchor(), _StreamAnchor())
        # The recording thread's reorder buffer: samples from ``_settled`` on.
        self._buffer = np.zeros((2, 4 * self._reorder_samples), np.int16)
        self._settled = 0
        self._newest = 0

    # --- the loop's side ------------------------------------------------------------------

    def _clock_position(self, now: float) -> int:
        """The recording's position of time ``now`` (between two ticks)."""
        engine = self._engine
        tick = self._tick_samples
        within = round((now - engine.tick_started) * self.sample_rate)
        within = min(max(within, 0), tick - 1)
        return (engine.tick - self._start_tick) * tick + within - self._paused_samples

    @property
    def duration(self) -> float:
        """Seconds on the clock since the bridge began, paused time excluded."""
        if self._state is RecorderState.STOPPED:
            return self._samples / self.sample_rate
        ticks = self._engine.tick if self._paused_at is None else self._paused_at
        samples = (ticks - self._start_tick) * self._tick_samples - self._paused_samples
        return max(0, samples) / self.sample_rate

    def tap(self, side: int, ssrc: int, timestamp: int, payload: bytes, now: float) -> None:
        """One audio packet leg ``side`` (0: a, 1: b) sent, as the relay forwarded it."""
        if self._state is not RecorderState.RECORDING or self.error is not None:
            return
        anchor = self._anchors[side]
        clock = self._clock_position(now)
        if anchor.ssrc == ssrc:
            position = anchor.position + (
                ((timestamp - anchor.timestamp + 0x8000_0000) & 0xFFFF_FFFF) - 0x8000_0000
            )
            if abs(position - clock) > REANCHOR_SAMPLES:
                position = clock
                anchor.timestamp, anchor.position = timestamp, clock
        else:
            anchor.ssrc, anchor.timestamp, anchor.position = ssrc, timestamp, clock
            position = clock
        items = self._items
        items.append((side, position, payload))
        if len(items) >= _BATCH_ITEMS:
            self._submit_queued()

    def write(self, frame: Int16Array, other: Int16Array | None = None) -> None:
        """The clock path: this tick's frame of ``a`` (and of ``b``, two channels or mono)."""
        if self._state is not RecorderState.RECORDING or self.error is not None:
            return
        tick = self._tick_samples
        position = (self._engine.tick - self._start_tick - 1) * tick - self._paused_samples
        self._items.append((0, position, self._fit(0, frame)))
        if other is not None:
            self._items.append((1, position, self._fit(1, other)))
        if len(self._items) >= _BATCH_ITEMS:
            self._submit_queued()

    def pause(self) -> None:
        if self._state is RecorderState.RECORDING:
            self._state = RecorderState.PAUSED
            self._paused_at = self._engine.tick

    def resume(self) -> None:
        if self._state is RecorderState.PAUSED and self._paused_at is not None:
            self._paused_samples += (self._engine.tick - self._paused_at) * self._tick_samples
            self._paused_at = None
            self._state = RecorderState.RECORDING
            for anchor in self._anchors:  # what comes next starts at the resumed position
                anchor.ssrc = None

    def stop(self) -> float:
        if self._state is not RecorderState.STOPPED:
            self._samples = round(self.duration * self.sample_rate)
            self._state = RecorderState.STOPPED
            self._submit_queued()
            self._last_job = self._disk.submit(self._finish, self._samples)
            self._last_job = self._disk.submit(self._close)
            if self._on_stop is not None:
                self._on_stop(self)
        return self._samples / self.sample_rate

    def _submit_queued(self) -> None:
        if self._items:
            items, self._items = self._items, []
            self._last_job = self._disk.submit(self._place, items)

    # --- the recording thread's side ------------------------------------------------------

    def _place(self, items: list[_Item]) -> None:
        if self._recorder is None or self.error is not None:
            return
        # Runs of packets are placed together (one decode per side, not one per packet);
        # a clocked frame ends a run, so whatever came later still lands on top.
        run: tuple[list[bytes], list[bytes]] = ([], [])
        positions: tuple[list[int], list[int]] = ([], [])
        for side, position, data in items:
            if isinstance(data, bytes):
                run[side].append(data)
                positions[side].append(position)
                continue
            self._place_run(run, positions)
            self._place_samples(side, position, data)
        self._place_run(run, positions)
        self._write_out(self._newest - self._reorder_samples)

    def _place_run(
        self, run: tuple[list[bytes], list[bytes]], positions: tuple[list[int], list[int]]
    ) -> None:
        for side in (0, 1):
            payloads = run[side]
            if not payloads:
                continue
            at = positions[side]
            decode = self._decode[side]
            length = len(payloads[0])
            # G.711 (the only narrowband format) is stateless, one sample per octet: a run
            # of packets of one size decodes at once and splits back into packets; in
            # order and back to back, one slice takes it. Wideband decoders predict from
            # the stream before, so they take one packet at a time.
            if self.sample_rate == SAMPLE_RATE and all(
                len(payload) == length for payload in payloads
            ):
                samples = decode(b"".join(payloads))
                first = at[0]
                if all(p == first + i * length for i, p in enumerate(at)):
                    self._place_samples(side, first, samples)
                else:
                    for index, position in enumerate(at):
                        piece = samples[index * length : (index + 1) * length]
                        self._place_samples(side, position, piece)
            else:
                for payload, position in zip(payloads, at, strict=True):
                    self._place_samples(side, position, decode(payload))
            payloads.clear()
            at.clear()

    def _place_samples(self, side: int, position: int, samples: Int16Array) -> None:
        start = position - self._settled
        if start < 0:  # later than the reorder buffer waits: only its tail is new
            samples = samples[-start:]
            start = 0
        end = start + len(samples)
        if end > self._buffer.shape[1]:
            grown = np.zeros((2, max(end, 2 * self._buffer.shape[1])), np.int16)
            grown[:, : self._buffer.shape[1]] = self._buffer
            self._buffer = grown
        self._buffer[side, start:end] = samples
        self._newest = max(self._newest, self._settled + end)

    def _finish(self, total: int) -> None:
        if self._recorder is None or self.error is not None:
            return
        self._write_out(total)

    def _write_out(self, upto: int) -> None:
        """Write the samples before position ``upto`` (silence where nothing came)."""
        count = upto - self._settled
        if count <= 0 or self._recorder is None:
            return
        buffer = self._buffer
        width = buffer.shape[1]
        if count > width:
            buffer = np.zeros((2, count), np.int16)
            buffer[:, :width] = self._buffer
        left, right = buffer[0, :count], buffer[1, :count]
        try:
            if self.channels == 2:
                self._recorder.write(left.copy(), right.copy())
            else:
                self._recorder.write(mix(np.stack((left, right))))
        except OSError as exc:
            self._fail(exc)
            return
        if count < width:  # what is left moves to the front, in place
            self._buffer[:, : width - count] = self._buffer[:, count:]
            self._buffer[:, width - count :] = 0
        else:
            self._buffer = np.zeros_like(self._buffer)
        self._settled = upto
