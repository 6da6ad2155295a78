"""Two call legs that hear each other (the ``dial`` verb), with an optional recording.

A :class:`Bridge` carries its legs' audio one of two ways, and changes between them as the
legs' needs change, without a gap:

* **Relay** (the usual case: same codec and packet time, nothing played to either leg):
  each packet a leg sends is forwarded to the other the moment it arrives, renumbered into
  the stream that leg hears (SSRC, sequence and timestamp rewritten, the marker bit set
  where the stream jumps; RFC 3550 §7's translator). Nothing is decoded and there is no
  jitter buffer on the path: the far end's own buffer deals with jitter, once. The legs
  are off the media clock, so a relayed call costs the tick nothing. RFC 4733 events are
  relayed as they are, so a digit crosses intact, and are detected on the way for the
  leg's own call logic. RTCP is terminated per leg: each leg gets sender reports about the
  stream it hears and receiver reports with the loss and jitter measured on what it sends.
* **Mix** (a prompt to a leg, a leg's own recording or silence detection, hold, DTMF to
  send, different codecs or packet times): on each tick, after every channel has received,
  each leg is given the other's frame of the same tick, and prompts are mixed over the
  other party for that leg only. This is where codecs are transcoded: each leg decodes
  what it receives and encodes what it sends in its own codec. Between two wideband legs
  (G.722, Opus) the 16 kHz frames cross as they are; between a wideband and a G.711 leg
  the audio is 8 kHz on the way.

Switching to the clock is make-before-break: the relay goes on until the clock's first
frame goes out on the stream, which continues the relayed numbering. Switching back, the
frame the clock queued is withdrawn and relayed packets take over at the next sequence
number.

The recording (:class:`~sautikit.media.bridge_recording.BridgeRecording`) is two-channel by
default (``dial``'s ``recordingChannels: dual``): left is what ``a`` says, right what ``b``
says; mono mixes the two. It holds the parties' voices, not the prompts played to each.
When relaying it taps the packets off the forwarding path and reorders them on the
recording thread, so it never delays them.

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

from sautikit.media.audio import SAMPLE_RATE
from sautikit.media.bridge_recording import BridgeRecording
from sautikit.media.channel import MediaChannel
from sautikit.media.codecs import WIDEBAND_RATE
from sautikit.media.session import RelayTap

__all__ = ["Bridge"]

log = logging.getLogger(__name__)


class Bridge:
    """``a`` hears ``b`` and ``b`` hears ``a`` from now until unbridged.

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
        self._relaying = False
        self._mixing = False
        a.attach(self)
        try:
            b.attach(self)
        except BaseException:
            a.detach(self)
            raise
        try:
            self.recording: BridgeRecording | None = (
                None
                if recording_path is None
                else a.engine.open_bridge_recording(
                    recording_path,
                    recording_channels,
                    # The recording thread's own decoders: the legs' keep their streams' state.
                    (a.session.codec.new_decoder().decode, b.session.codec.new_decoder().decode),
                    WIDEBAND_RATE if a.wideband or b.wideband else SAMPLE_RATE,
                )
            )
        except BaseException:
            a.detach(self)
            b.detach(self)
            raise
        self._choose_path()

    @property
    def active(self) -> bool:
        return not self._ended.is_set()

    @property
    def relaying(self) -> bool:
        """Whether packets are relayed as they come (True) or mixed on the clock."""
        return self._relaying

    # --- choosing the path ----------------------------------------------------------------

    def _can_relay(self) -> bool:
        a, b = self.a, self.b
        return (
            not a.needs_clock
            and not b.needs_clock
            and a.session.codec is b.session.codec
            and a.ptime == b.ptime
            # The relay's recording taps place packets by their 8 kHz timestamps; a
            # wideband leg's recording is made from the clock's frames.
            and (self.recording is None or not a.session.codec.wideband)
        )

    def reconsider(self, channel: MediaChannel) -> None:
        """A leg's needs changed: relay or mix, whichever they now allow."""
        if not self._ended.is_set():
            self._choose_path()

    def _choose_path(self) -> None:
        if self._can_relay():
            if not self._relaying:
                self._start_relay()
        elif not self._mixing:
            self._start_mixing()

    def _start_relay(self) -> None:
        a, b = self.a, self.b
        engine = a.engine
        if self._mixing:
            engine.remove_mixer(self)
            self._mixing = False
        recording = self.recording
        for side, (source, target) in enumerate(((a, b), (b, a))):
            target.session.begin_relay_out()
            tap = None
            if recording is not None:
                tap = _side_tap(recording, side)
            source.session.relay_to(
                target.session,
                tap=tap,
                on_digit=source.deliver_relayed_digit,
                forward_dtmf=self.relay_dtmf,
            )
            engine.set_clocked(source, False)
            source.feed = None
        self._relaying = True

    def _start_mixing(self) -> None:
        a, b = self.a, self.b
        if self._relaying:
            for source, target in ((a, b), (b, a)):
                source.session.hand_over_to_clock()
                target.session.end_relay_out(hand_over=target.sending)
                a.engine.set_clocked(source, True)
            self._relaying = False
        a.engine.add_mixer(self)
        self._mixing = True

    def _stop_relay(self) -> None:
        for source, target in ((self.a, self.b), (self.b, self.a)):
            source.session.relay_to(None)
            target.session.end_relay_out(hand_over=not target.closed and target.sending)
        self._relaying = False

    # --- the clock path -------------------------------------------------------------------

    def mix(self) -> None:
        if self._ended.is_set():
            return
        a, b = self.a, self.b
        a.feed = b.inbound
        b.feed = a.inbound
        if a.wideband:
            a.feed_wide = b.inbound_wide
        if b.wideband:
            b.feed_wide = a.inbound_wide
        recording = self.recording
        if recording is not None:
            # A wideband leg's own 16 kHz frame; the recording converts an 8 kHz one.
            recording.write(
                a.inbound if a.inbound_wide is None else a.inbound_wide,
                b.inbound if b.inbound_wide is None else b.inbound_wide,
            )

    def on_digit(self, channel: MediaChannel, digit: str) -> None:
        # Relaying, the digit's own packets crossed already.
        if not self.relay_dtmf or self._ended.is_set() or self._relaying:
            return
        other = self.b if channel is self.a else self.a
        try:
            other.send_dtmf(digit)
        except ValueError:
            log.debug("%r negotiated no telephone-event; digit %s not relayed", other, digit)

    # --- the end --------------------------------------------------------------------------

    def unbridge(self) -> float | None:
        """End the bridge; returns the seconds recorded, None without a recording.

        Idempotent. Each leg goes back to its own prompts, or silence.
        """
        if not self._ended.is_set():
            self._ended.set()
            self._stop_relay()
            if self._mixing:
                self.a.engine.remove_mixer(self)
                self._mixing = False
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
        state = "ended" if not self.active else "relaying" if self._relaying else "mixing"
        return f"<Bridge {self.a!r} <-> {self.b!r} {state}>"


def _side_tap(recording: BridgeRecording, side: int) -> RelayTap:
    def tap(ssrc: int, timestamp: int, payload: bytes, now: float) -> None:
        recording.tap(side, ssrc, timestamp, payload, now)

    return tap
