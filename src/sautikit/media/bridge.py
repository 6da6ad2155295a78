"""Two call legs that hear each other (the ``dial`` verb), with an optional recording.

A :class:`Bridge` is a mixer of the :class:`~sautikit.media.engine.MediaEngine`: on each
tick, after every channel has received, it gives each leg the other's frame of the same
tick. Prompts played to a bridged leg are mixed over the other party for that leg only.

The recording is two-channel by default (``dial``'s ``recordingChannels: dual``): left is
what ``a`` says, right what ``b`` says; mono mixes the two. It holds the parties' voices,
not the prompts played to each.

DTMF a leg receives is sent on to the other (RFC 4733 both ways), so a caller can work an
IVR at the far end; the digit stays queued on the leg that received it too, for its own
call logic (``hangupOnStar``).

The bridge ends with :meth:`Bridge.unbridge` or when either leg closes; each leg then hears
its own prompts again (or silence), and :meth:`Bridge.wait` returns.
"""

from __future__ import annotations

import asyncio
import logging
import os

import numpy as np

from sautikit.media.channel import MediaChannel, RecordingHandle
from sautikit.media.mixer import mix

__all__ = ["Bridge"]

log = logging.getLogger(__name__)


class Bridge:
    """``a`` hears ``b`` and ``b`` hears ``a`` from the next tick until unbridged.

    Raises ChannelInUse when a leg is already bridged or in a conference, ChannelClosed
    when one has hung up, and ValueError for the same leg twice or legs of two engines.
    """

    def __init__(
        self,
        a: MediaChannel,
        b: MediaChannel,
        recording_path: str | os.PathLike[str] | None = None,
        recording_channels: int = 2,
        relay_dtmf: bool = True,
    ) -> None:
        if a is b:
            raise ValueError("a channel cannot be bridged to itself")
        if a.engine is not b.engine:
            raise ValueError("bridged channels must belong to the same media engine")
        self.a = a
        self.b = b
        self.relay_dtmf = relay_dtmf
        self._ended = asyncio.Event()
        a.attach(self)
        try:
            b.attach(self)
        except BaseException:
            a.detach(self)
            raise
        try:
            self.recording: RecordingHandle | None = (
                None
                if recording_path is None
                else a.engine.open_recording(recording_path, recording_channels)
            )
        except BaseException:
            a.detach(self)
            b.detach(self)
            raise
        a.engine.add_mixer(self)

    @property
    def active(self) -> bool:
        return not self._ended.is_set()

    def mix(self) -> None:
        if self._ended.is_set():
            return
        a, b = self.a, self.b
        a.feed = b.inbound
        b.feed = a.inbound
        recording = self.recording
        if recording is not None:
            if recording.channels == 2:
                recording.write(a.inbound, b.inbound)
            else:
                recording.write(mix(np.stack((a.inbound, b.inbound))))

    def on_digit(self, channel: MediaChannel, digit: str) -> None:
        if not self.relay_dtmf or self._ended.is_set():
            return
        other = self.b if channel is self.a else self.a
        try:
            other.send_dtmf(digit)
        except ValueError:
            log.debug("%r negotiated no telephone-event; digit %s not relayed", other, digit)

    def unbridge(self) -> float | None:
        """End the bridge; returns the seconds recorded, None without a recording.

        Idempotent. Each leg goes back to its own prompts, or silence.
        """
        if not self._ended.is_set():
            self._ended.set()
            self.a.engine.remove_mixer(self)
            self.a.detach(self)
            self.b.detach(self)
        return None if self.recording is None else self.recording.stop()

    def discard(self, channel: MediaChannel) -> None:
        """A leg closed: the bridge ends."""
        self.unbridge()

    def close(self) -> float | None:
        """:meth:`unbridge`, under the name every mixer shares."""
        return self.unbridge()

    async def wait(self) -> None:
        """Return once the bridge ended: unbridged, or a leg hung up."""
        await self._ended.wait()

    def __repr__(self) -> str:
        state = "active" if self.active else "ended"
        return f"<Bridge {self.a!r} <-> {self.b!r} {state}>"
