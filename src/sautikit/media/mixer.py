"""Vectorised audio mixing for bridges, conferences and two-channel recordings.

All audio is 8 kHz mono int16 in 20 ms frames of 160 samples. Sums are taken in int32 so
that several loud talkers saturate at the int16 limits instead of wrapping round.

* :func:`mix_minus` gives each conference participant the sum of everyone else (the
  classic "N-1" mix), for all participants in one pass: the total minus one's own row.
* :func:`mix` is the whole room, for a conference recording.
* :func:`interleave_stereo` puts two legs side by side (left, right) for a two-channel
  recording of a bridged call.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["interleave_stereo", "mix", "mix_minus"]

_INT16_MIN = np.iinfo(np.int16).min
_INT16_MAX = np.iinfo(np.int16).max


def _contributions(
    frames: npt.NDArray[np.int16], muted: npt.NDArray[np.bool_] | None
) -> npt.NDArray[np.int32]:
    wide = frames.astype(np.int32)
    if muted is not None:
        wide[np.asarray(muted, dtype=bool)] = 0
    return wide


def _saturate(total: npt.NDArray[np.int32]) -> npt.NDArray[np.int16]:
    saturated: npt.NDArray[np.int16] = np.clip(total, _INT16_MIN, _INT16_MAX).astype(np.int16)
    return saturated


def mix_minus(
    frames: npt.NDArray[np.int16], muted: npt.NDArray[np.bool_] | None = None
) -> npt.NDArray[np.int16]:
    """For frames of shape (n, samples), row i of the result is the sum of every other row.

    Rows flagged in ``muted`` (shape (n,)) are heard by nobody, yet still hear everyone.
    """
    wide = _contributions(frames, muted)
    return _saturate(wide.sum(axis=0, dtype=np.int32) - wide)


def mix(
    frames: npt.NDArray[np.int16], muted: npt.NDArray[np.bool_] | None = None
) -> npt.NDArray[np.int16]:
    """The sum of all unmuted rows of ``frames`` (n, samples), clipped to int16."""
    return _saturate(_contributions(frames, muted).sum(axis=0, dtype=np.int32))


def interleave_stereo(
    left: npt.NDArray[np.int16], right: npt.NDArray[np.int16]
) -> npt.NDArray[np.int16]:
    """Two mono signals as one (samples, 2) int16 array; ``.tobytes()`` is L R L R … PCM.

    The shorter side is padded with silence, so a leg that ended early still lines up.
    """
    length = max(len(left), len(right))
    stereo = np.zeros((length, 2), dtype=np.int16)
    stereo[: len(left), 0] = left
    stereo[: len(right), 1] = right
    return stereo
