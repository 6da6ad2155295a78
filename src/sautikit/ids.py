"""Identifiers: UUIDv7 (RFC 9562), time-ordered so that ``ORDER BY id`` is creation order."""

from __future__ import annotations

import os
import threading
import time
import uuid

__all__ = ["new_id", "uuid7"]

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def uuid7() -> uuid.UUID:
    """A UUIDv7 that is monotonic within this process.

    The 12-bit ``rand_a`` field carries a counter that restarts at a random point each
    millisecond (RFC 9562 §6.2, method 1), so ids made in the same millisecond still sort
    in creation order — cursor pagination relies on that.
    """
    global _last_ms, _counter
    with _lock:
        now_ms = time.time_ns() // 1_000_000
        if now_ms > _last_ms:
            _last_ms = now_ms
            _counter = int.from_bytes(os.urandom(2), "big") & 0x3FF
        else:
            _counter += 1
            if _counter > 0xFFF:  # counter exhausted: borrow the next millisecond
                _last_ms += 1
                _counter = 0
        ms, counter = _last_ms, _counter
    rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms << 80) | (0x7 << 76) | (counter << 64) | (0b10 << 62) | rand_b
    return uuid.UUID(int=value)


def new_id() -> str:
    """A new UUIDv7 in its canonical string form, as used for every Sautikit id."""
    return str(uuid7())
