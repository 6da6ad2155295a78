"""A conference room: N call legs, each hearing everyone but itself.

A :class:`Conference` is a mixer of the :class:`~sautikit.media.engine.MediaEngine`. On
each tick it stacks its members' inbound frames into one (members + 1, 160) array, the
last row carrying the room's join/leave chimes, and computes every member's mix-minus in
one vectorised pass (:func:`~sautikit.media.mixer.mix_minus`). A muted member is heard by
nobody and still hears everyone. The chimes are heard by every member; the room recording,
when on, holds the whole room: every unmuted member and the chimes.

A member whose channel closes leaves the room (with the leave chime) by itself.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from sautikit.media.audio import FRAME_SAMPLES
from sautikit.media.channel import SILENT_FRAME, MediaChannel, RecordingHandle
from sautikit.media.engine import MediaEngine
from sautikit.media.mixer import mix, mix_minus
from sautikit.media.player import Player, join_tone, leave_tone

__all__ = ["Conference"]


class Conference:
    """A named room on ``engine``. With ``beep``, joins and leaves are announced by chimes."""

    def __init__(self, name: str, engine: MediaEngine, beep: bool = True) -> None:
        self.name = name
        self.engine = engine
        self.beep = beep
        self.recording: RecordingHandle | None = None
        self._members: list[MediaChannel] = []
        self._chimes: list[Player] = []
        self._closed = False
        self._layout(np.zeros(0, dtype=bool))
        engine.add_mixer(self)

    # --- membership -----------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True after :meth:`close`, by call logic, engine shutdown or a mixing fault."""
        return self._closed

    @property
    def members(self) -> tuple[MediaChannel, ...]:
        return tuple(self._members)

    def __len__(self) -> int:
        return len(self._members)

    def __contains__(self, channel: object) -> bool:
        return channel in self._members

    def join(self, channel: MediaChannel, muted: bool = False) -> None:
        """Add a leg; everyone (it too) hears the join chime.

        Raises ChannelInUse when the leg is bridged or in another room, ChannelClosed when
        it hung up, RuntimeError when the room is closed, ValueError for another engine's leg.
        """
        if self._closed:
            raise RuntimeError(f"conference {self.name!r} is closed")
        if channel.engine is not self.engine:
            raise ValueError("a conference takes only channels of its own media engine")
        if channel in self._members:
            return
        channel.attach(self)
        self._members.append(channel)
        self._layout(np.append(self._muted[:-1], muted))
        self._chime(join_tone)

    def leave(self, channel: MediaChannel) -> None:
        """Take a leg out (it hears its own prompts again); the others hear the leave chime."""
        if channel not in self._members:
            return
        index = self._members.index(channel)
        self._members.pop(index)
        self._layout(np.delete(self._muted[:-1], index))
        channel.detach(self)
        if self._members:
            self._chime(leave_tone)

    def discard(self, channel: MediaChannel) -> None:
        """A member hung up."""
        self.leave(channel)

    def on_digit(self, channel: MediaChannel, digit: str) -> None:
        """Keys pressed in a room are for the member's own call logic, not the room."""

    def reconsider(self, channel: MediaChannel) -> None:
        """A room always mixes on the clock."""

    def mute(self, channel: MediaChannel, muted: bool = True) -> None:
        """Stop (or resume) letting the others hear ``channel``; KeyError if not a member."""
        if channel not in self._members:
            raise KeyError(f"{channel!r} is not in conference {self.name!r}")
        self._muted[self._members.index(channel)] = muted

    def is_muted(self, channel: MediaChannel) -> bool:
        if channel not in self._members:
            raise KeyError(f"{channel!r} is not in conference {self.name!r}")
        return bool(self._muted[self._members.index(channel)])

    # --- recording ------------------------------------------------------------------------

    def start_recording(self, path: str | os.PathLike[str]) -> RecordingHandle:
        """Record the whole room, mono, to a new WAV file; one recording at a time."""
        if self.recording is not None:
            raise RuntimeError(f"conference {self.name!r} is already being recorded")
        self.recording = self.engine.open_recording(path, 1, self._recording_stopped)
        return self.recording

    def _recording_stopped(self, handle: RecordingHandle) -> None:
        if self.recording is handle:
            self.recording = None

    # --- the tick -------------------------------------------------------------------------

    def _layout(self, member_muted: npt.NDArray[np.bool_]) -> None:
        """Size the per-tick arrays for the members, plus the chime row (never muted)."""
        rows = len(self._members) + 1
        self._frames = np.zeros((rows, FRAME_SAMPLES), dtype=np.int16)
        self._muted = np.append(member_muted, False)

    def _chime(self, make_tone: Callable[[], npt.NDArray[np.int16]]) -> None:
        if self.beep:
            self._chimes.append(Player(make_tone()))

    def mix(self) -> None:
        members = self._members
        if not members and self.recording is None:
            return
        frames = self._frames
        for row, channel in enumerate(members):
            frames[row] = channel.inbound
        frames[-1] = self._next_chime_frame()
        heard = mix_minus(frames, self._muted)
        for row, channel in enumerate(members):
            channel.feed = heard[row]
        recording = self.recording
        if recording is not None:
            recording.write(mix(frames, self._muted))

    def _next_chime_frame(self) -> npt.NDArray[np.int16]:
        if not self._chimes:
            return SILENT_FRAME
        frames = [player.next_frame() for player in self._chimes]
        self._chimes = [player for player in self._chimes if not player.done]
        return mix(np.stack([frame for frame in frames if frame is not None]))

    # --- life -----------------------------------------------------------------------------

    def close(self) -> float | None:
        """Let every member go (no chimes), stop the recording; returns its seconds."""
        duration = None if self.recording is None else self.recording.stop()
        if not self._closed:
            self._closed = True
            self.engine.remove_mixer(self)
            for channel in self._members:
                channel.detach(self)
            self._members.clear()
            self._layout(np.zeros(0, dtype=bool))
            self._chimes.clear()
        return duration

    def __repr__(self) -> str:
        return f"<Conference {self.name!r} with {len(self._members)} members>"
