"""An adaptive jitter buffer for one incoming RTP audio stream, and packet-loss concealment.

The buffer sits between the socket and the media clock. Packets go in as they arrive
(:meth:`JitterBuffer.push`); once per 20 ms tick the clock takes one frame out
(:meth:`JitterBuffer.pop`), which is either the next payload in sequence order or ``None``,
the concealment marker, when that packet is missing.

* Order: packets are keyed by extended sequence number, the 16-bit RTP sequence unwrapped
  against the highest seen so far (the idea of RFC 3550 App. A.1).
* Depth: playout starts once ``target_depth`` frames are buffered. A packet arriving after
  its slot was played out (late) raises the target by one frame, up to ``max_depth``; five
  seconds without a late packet lower it by one, down to ``min_depth``. When more frames
  pile up than the target allows (after a network stall flushes), the oldest are discarded
  to win the latency back.
* Gaps in arrival with no gap in sequence (silence suppression, hold) are underruns, not
  losses: playout waits at the same sequence number and buffers up again.
* Resynchronisation: a new SSRC, or a sequence jump too big to be reordering or loss (App.
  A.1's MAX_DROPOUT / MAX_MISORDER) confirmed by the packet after it, restarts the buffer
  on the new numbering.

:func:`conceal` is the matching loss concealment: repeat the last good frame, halving it each
lost frame, and fall silent after a few.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sautikit.media.audio import FRAME_SAMPLES

__all__ = ["CONCEAL_FRAMES", "JitterBuffer", "JitterStats", "conceal"]

#: Lost frames covered by a fading repeat before concealment falls silent.
CONCEAL_FRAMES = 4

_SEQ_MOD = 1 << 16
_HALF_SEQ = 1 << 15
_MAX_DROPOUT = 3000
_MAX_MISORDER = 100
# Frames the buffer may hold beyond its target before discarding the oldest.
_SLACK = 4
# Pops (20 ms each) without a late packet before the target depth shrinks by one.
_SHRINK_AFTER = 250
# Played sequence numbers remembered, so a repeat of one is told from a late packet.
_PLAYED_MEMORY = 64


@dataclass(slots=True)
class JitterStats:
    """Counters since the buffer was made; all survive resynchronisation."""

    received: int = 0
    lost: int = 0
    late: int = 0
    duplicate: int = 0
    discarded: int = 0
    underruns: int = 0
    resyncs: int = 0


class JitterBuffer:
    """Reorders one stream's payloads and hands out one per tick (see the module notes)."""

    def __init__(self, min_depth: int = 2, max_depth: int = 8, capacity: int = 64) -> None:
        if not 1 <= min_depth <= max_depth < capacity:
            raise ValueError("need 1 <= min_depth <= max_depth < capacity")
        self.min_depth = min_depth
        self.max_depth = max_depth
        self.capacity = capacity
        self.target_depth = min_depth
        self.stats = JitterStats()
        self.ssrc: int | None = None
        self._packets: dict[int, bytes] = {}
        self._played: deque[int] = deque(maxlen=_PLAYED_MEMORY)
        self._highest: int | None = None
        self._next: int | None = None
        self._playing = False
        self._hold = 0
        self._since_late = 0
        self._confirm_seq: int | None = None

    def _restart(self, ssrc: int | None) -> None:
        self.ssrc = ssrc
        self._packets.clear()
        self._played.clear()
        self._highest = None
        self._next = None
        self._playing = False
        self._hold = 0
        self._confirm_seq = None

    def reset(self) -> None:
        """Forget every packet and the numbering (statistics stay): the stream went by
        another path (the relay) meanwhile, so what comes next starts playout afresh."""
        self._restart(None)
        self.target_depth = self.min_depth

    def __len__(self) -> int:
        """Frames buffered now."""
        return len(self._packets)

    def push(self, sequence: int, ssrc: int, payload: bytes) -> bool:
        """Offer one packet; True if it was buffered, False if dropped (counted in stats)."""
        if ssrc != self.ssrc:
            if self.ssrc is not None:
                self.stats.resyncs += 1
            self._restart(ssrc)
        if self._highest is None:
            extended = sequence
        else:
            delta = (sequence - self._highest + _HALF_SEQ) % _SEQ_MOD - _HALF_SEQ
            extended = self._highest + delta
            if self._is_jump(extended, delta):
                if sequence != self._confirm_seq:
                    # One stray packet is not enough to renumber the stream: wait for the next.
                    self._confirm_seq = (sequence + 1) % _SEQ_MOD
                    self.stats.discarded += 1
                    return False
                self.stats.resyncs += 1
                self._restart(ssrc)
                extended = sequence
        self._confirm_seq = None
        if self._next is not None and extended < self._next:
            if extended in self._played:
                self.stats.duplicate += 1
            else:
                self._on_late()
            return False
        if extended in self._packets:
            self.stats.duplicate += 1
            return False
        self._packets[extended] = payload
        if self._highest is None or extended > self._highest:
            self._highest = extended
        self.stats.received += 1
        return True

    def _is_jump(self, extended: int, delta: int) -> bool:
        if delta > _MAX_DROPOUT or delta < -_MAX_MISORDER:
            return True
        return self._next is not None and extended >= self._next + self.capacity

    def _on_late(self) -> None:
        self.stats.late += 1
        self._since_late = 0
        if self.target_depth < self.max_depth:
            self.target_depth += 1
            if self._playing:
                # Hold playout one tick so the buffer actually deepens by a frame.
                self._hold += 1

    def pop(self) -> bytes | None:
        """The next frame's payload, or None when there is nothing to play for this tick.

        None covers a lost packet (counted in ``stats.lost``), the start-up and refill wait,
        and an underrun; the caller conceals all alike (see :func:`conceal`).
        """
        if not self._playing:
            if len(self._packets) < self.target_depth:
                return None
            self._playing = True
            first = min(self._packets)
            if self._next is None or first > self._next:
                if self._next is not None:
                    self.stats.lost += first - self._next
                self._next = first
        if self._hold:
            self._hold -= 1
            return None
        if not self._packets:
            # Nothing arrived in time: wait at the same sequence number and buffer up again.
            self._playing = False
            self.stats.underruns += 1
            return None
        assert self._next is not None
        while len(self._packets) > self.target_depth + _SLACK:
            oldest = min(self._packets)
            del self._packets[oldest]
            self.stats.discarded += 1
            self.stats.lost += max(0, oldest - self._next)
            self._next = max(self._next, oldest + 1)
        payload = self._packets.pop(self._next, None)
        if payload is None:
            self.stats.lost += 1
        else:
            self._played.append(self._next)
        self._next += 1
        self._since_late += 1
        if self._since_late >= _SHRINK_AFTER and self.target_depth > self.min_depth:
            self.target_depth -= 1
            self._since_late = 0
        return payload


def conceal(
    last_frame: npt.NDArray[np.int16] | None,
    consecutive_losses: int,
    frame_samples: int = FRAME_SAMPLES,
) -> npt.NDArray[np.int16]:
    """The frame to play for the ``consecutive_losses``-th lost frame in a row (1-based).

    Repeats ``last_frame`` at half the amplitude for each loss, then silence after
    :data:`CONCEAL_FRAMES`; silence (``frame_samples`` long) too when there is no frame to
    repeat yet.
    """
    if last_frame is None or consecutive_losses > CONCEAL_FRAMES:
        return np.zeros(frame_samples if last_frame is None else len(last_frame), np.int16)
    return (last_frame.astype(np.int32) >> consecutive_losses).astype(np.int16)
