"""Helpers for the recording tests: spool files as the PBX writes them, a fake call leg."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

import numpy as np

from sautikit.media.audio import SAMPLE_RATE, WavSpoolWriter
from sautikit.voice.control import CallControl

__all__ = ["fake_call", "tone", "write_spool"]


def tone(seconds: float, *, frequency: float = 440.0, level: int = 8000) -> np.ndarray:
    """A sine loud enough to count as speech for the silence detector."""
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (level * np.sin(2 * np.pi * frequency * t)).astype(np.int16)


def write_spool(
    path: Path,
    seconds: float,
    *,
    channels: int = 1,
    lead_silence: float = 0.0,
    tail_silence: float = 0.0,
) -> None:
    """A spool file like the PBX's: optional silence, a tone, optional silence."""
    mono = np.concatenate(
        [
            np.zeros(round(lead_silence * SAMPLE_RATE), np.int16),
            tone(seconds),
            np.zeros(round(tail_silence * SAMPLE_RATE), np.int16),
        ]
    )
    with WavSpoolWriter(path, channels=channels) as writer:
        if channels == 2:
            # Caller left, callee right: a different pitch on each side.
            right = tone(len(mono) / SAMPLE_RATE, frequency=660.0)
            writer.write(np.stack([mono, right[: len(mono)]], axis=1))
        else:
            writer.write(mono)


@dataclass
class _CallFields:
    """The few CallControl fields the recording sink reads."""

    call_id: str
    workspace_id: str
    from_: str = "+254700000001"
    to: str = "+254722000001"
    direction: Literal["inbound", "outbound"] = "inbound"
    status: str = "answered"


def fake_call(call_id: str, workspace_id: str) -> CallControl:
    """A call leg as the sink sees it: its ids and SPEC §3 fields, no media."""
    return cast(CallControl, _CallFields(call_id, workspace_id))
