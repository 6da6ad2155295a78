"""Frame-level recording into a crash-safe WAV spool file.

A :class:`Recorder` takes the frames a call's media session hears on each tick and appends
them to a :class:`~sautikit.media.audio.WavSpoolWriter`:

* mono — the ``record`` verb (the caller's voice), or a mix made by the caller;
* two channels — ``dial`` and API-call recordings with ``recordingChannels: dual``: left
  is one party (the caller), right the other (the callee). A party that sent nothing on a
  tick is written as silence, so both channels stay aligned in time.

:meth:`Recorder.pause` and :meth:`Recorder.resume` implement ``"recording": "paused"`` /
``"resumed"`` on a live call: paused time is not written at all. :meth:`Recorder.stop`
closes the file with its final header and reports the recorded duration.
"""

from __future__ import annotations

import enum

import numpy as np
import numpy.typing as npt

from sautikit.media.audio import FRAME_SAMPLES, WavSpoolWriter
from sautikit.media.mixer import interleave_stereo

__all__ = ["Recorder", "RecorderState"]

Int16Array = npt.NDArray[np.int16]


class RecorderState(enum.Enum):
    RECORDING = "recording"
    PAUSED = "paused"
    STOPPED = "stopped"


_NOTHING = np.zeros(0, dtype=np.int16)
_SILENT_FRAME = np.zeros(FRAME_SAMPLES, dtype=np.int16)


class Recorder:
    """Writes frames to a WAV spool, mono or two-channel, with pause/resume/stop."""

    def __init__(self, writer: WavSpoolWriter) -> None:
        self.writer = writer
        self._state = RecorderState.RECORDING

    @property
    def state(self) -> RecorderState:
        return self._state

    @property
    def channels(self) -> int:
        return self.writer.channels

    @property
    def duration(self) -> float:
        """Seconds recorded (paused time excluded)."""
        return self.writer.duration

    def write(self, frame: Int16Array | None, other: Int16Array | None = None) -> None:
        """Record one tick of audio; ignored while paused or after stop.

        Mono: ``frame`` only. Two channels: ``frame`` goes left, ``other`` right. None is a
        tick of silence (nothing arrived); a shorter frame is padded to the longer one.
        """
        if self._state is not RecorderState.RECORDING:
            return
        for part in (frame, other):
            if part is not None and (part.ndim != 1 or part.dtype != np.int16):
                raise ValueError(f"frames are 1-D int16 arrays, got {part.dtype} {part.shape}")
        if self.channels == 1:
            if other is not None:
                raise ValueError("a mono recording takes one frame per tick; mix parties first")
            self.writer.write(_SILENT_FRAME if frame is None else frame)
        elif frame is None and other is None:
            self.writer.write(interleave_stereo(_SILENT_FRAME, _SILENT_FRAME))
        else:
            # A missing side is padded with silence to the other side's length.
            left = _NOTHING if frame is None else frame
            right = _NOTHING if other is None else other
            self.writer.write(interleave_stereo(left, right))

    def pause(self) -> None:
        """Stop writing until :meth:`resume`; the audio meanwhile is not recorded."""
        if self._state is RecorderState.RECORDING:
            self._state = RecorderState.PAUSED
            self.writer.flush()

    def resume(self) -> None:
        """Continue writing after :meth:`pause`."""
        if self._state is RecorderState.PAUSED:
            self._state = RecorderState.RECORDING

    def stop(self) -> float:
        """Close the file with its final sizes; returns the seconds recorded."""
        if self._state is not RecorderState.STOPPED:
            self._state = RecorderState.STOPPED
            self.writer.close()
        return self.duration
