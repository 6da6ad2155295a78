"""The ``stream`` verb: a call's audio, live, to the app's WebSocket — and the app's back.

A :class:`MediaStream` taps one call leg (:meth:`CallControl.add_media_tap`): on every
20 ms media tick it is handed what the caller said (``inbound``) and what the caller hears
(``outbound``), queues them without blocking the tick, and a sender task writes them to
the WebSocket as they come. A receiver task reads what the app sends: audio to play to the
caller (bidirectional streams), ``mark`` and ``clear``.

Two wire formats (:class:`TwilioWire`, :class:`DrachtioWire`):

* **Twilio media streams** (the default): JSON text messages ``connected``, ``start``
  (``streamSid``, ``callSid``, ``tracks``, ``customParameters`` and ``mediaFormat``
  ``audio/x-mulaw`` 8000 Hz mono), one ``media`` message per 20 ms frame and track (base64
  µ-law, ``track``, ``chunk``, ``timestamp`` in ms from the start, a ``sequenceNumber`` over
  all messages), ``dtmf``, ``mark`` and ``stop``. The app sends ``media`` (base64 µ-law),
  ``mark`` (echoed once the audio sent before it has played) and ``clear`` (playback stops
  at once; marks not reached yet are echoed).
* **``audio.drachtio.org``** (``subprotocol``; jambonz's ``listen``): the WebSocket
  subprotocol must be accepted by the server, or the stream is refused. One JSON text frame
  of metadata first, then one binary frame per 20 ms of 16-bit little-endian PCM at 8 kHz
  (``track: both``: stereo, caller left). The app sends binary L16 audio to play, and text
  ``{"type": "mark", "data": {"name": …}}`` (echoed with ``"event": "playout"``) or
  ``{"type": "killAudio"}`` (clear). Keys pressed go as ``{"type": "dtmf", "data":
  {"digit": …}}``.

Audio from the app plays in the order it came, mixed into what the caller hears (over a
prompt or a bridged party, so a call recording holds it too). A stream that cannot be
connected (refused address, no answer, subprotocol refused) raises :class:`StreamError`;
once streaming, nothing is retried: when the connection drops the stream ends, the status
callback says ``stream-error`` and the call goes on (documented reconnect policy: none —
the app's server should answer the next stream).

Backlog: when the app reads more slowly than the call speaks, at most
:data:`MAX_BACKLOG_FRAMES` frames wait; older ones are dropped and counted.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import enum
import json
import logging
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol
from urllib.parse import urlsplit

import numpy as np

from sautikit.media.audio import FRAME_SAMPLES, SAMPLE_RATE
from sautikit.media.g711 import ulaw_decode, ulaw_encode
from sautikit.net import OutboundAddressRefused, connect_outbound_tcp
from sautikit.voice.control import CallControl, Int16Array

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

__all__ = [
    "DRACHTIO_SUBPROTOCOL",
    "MAX_BACKLOG_FRAMES",
    "DrachtioWire",
    "MediaStream",
    "StreamError",
    "StreamOpener",
    "StreamSpec",
    "StreamState",
    "TwilioWire",
]

log = logging.getLogger(__name__)

Data = str | bytes
Track = Literal["inbound", "outbound", "both"]

DRACHTIO_SUBPROTOCOL: Final = "audio.drachtio.org"
MAX_BACKLOG_FRAMES: Final = 500
"""Frames (10 s) queued for a slow app before the oldest are dropped."""
_MAX_PLAYBACK_SAMPLES: Final = 120 * SAMPLE_RATE  # two minutes of audio from the app
_MAX_MESSAGE_BYTES: Final = 1 << 20
_CLOSE_SECONDS: Final = 2.0
_CALL_CHECK_SECONDS: Final = 0.5  # how soon a stream notices its call has ended


class StreamError(Exception):
    """The stream could not start; ``code`` is the application error kept on the call."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """What the ``stream`` verb asked for."""

    url: str
    track: Track = "inbound"
    bidirectional: bool = False
    subprotocol: str | None = None
    name: str | None = None
    parameters: Mapping[str, str] = field(default_factory=dict)


class StreamState(enum.Enum):
    """A stream's life: opened, then streaming, then stopped (once, for good)."""

    OPEN = "open"
    STREAMING = "streaming"
    STOPPED = "stopped"


# --- what the app sends --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Audio:
    samples: Int16Array


@dataclass(frozen=True, slots=True)
class _Mark:
    name: str


@dataclass(frozen=True, slots=True)
class _Clear:
    pass


_Incoming = _Audio | _Mark | _Clear


class _Wire(Protocol):
    """One wire format: what goes to the app, and what the app's messages mean."""

    subprotocol: str | None

    def opening(self, stream: MediaStream) -> list[Data]: ...

    def frame(
        self, stream: MediaStream, index: int, inbound: Int16Array, out: Int16Array
    ) -> list[Data]: ...

    def dtmf(self, stream: MediaStream, digit: str) -> Data: ...

    def mark(self, stream: MediaStream, name: str) -> Data: ...

    def closing(self, stream: MediaStream) -> Data | None: ...

    def incoming(self, message: Data) -> list[_Incoming]: ...


class TwilioWire:
    """Twilio's media-stream messages (JSON text frames, µ-law audio)."""

    subprotocol: str | None = None

    def __init__(self) -> None:
        self._sequence = 0

    def _message(self, stream: MediaStream, event: str, **body: Any) -> str:
        self._sequence += 1
        return json.dumps(
            {
                "event": event,
                "sequenceNumber": str(self._sequence),
                "streamSid": stream.stream_sid,
                **body,
            }
        )

    def opening(self, stream: MediaStream) -> list[Data]:
        tracks = ["inbound", "outbound"] if stream.spec.track == "both" else [stream.spec.track]
        connected = json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        start = self._message(
            stream,
            "start",
            start={
                "streamSid": stream.stream_sid,
                "accountSid": stream.call.workspace_id,
                "callSid": stream.call.call_id,
                "tracks": tracks,
                "customParameters": dict(stream.spec.parameters),
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            },
        )
        return [connected, start]

    def frame(
        self, stream: MediaStream, index: int, inbound: Int16Array, out: Int16Array
    ) -> list[Data]:
        track = stream.spec.track
        frames = (("inbound", inbound), ("outbound", out))
        return [
            self._message(
                stream,
                "media",
                media={
                    "track": name,
                    "chunk": str(index + 1),
                    "timestamp": str(index * 20),
                    "payload": base64.b64encode(ulaw_encode(samples)).decode("ascii"),
                },
            )
            for name, samples in frames
            if track in (name, "both")
        ]

    def dtmf(self, stream: MediaStream, digit: str) -> Data:
        return self._message(stream, "dtmf", dtmf={"track": "inbound_track", "digit": digit})

    def mark(self, stream: MediaStream, name: str) -> Data:
        return self._message(stream, "mark", mark={"name": name})

    def closing(self, stream: MediaStream) -> Data | None:
        call = stream.call
        return self._message(
            stream, "stop", stop={"accountSid": call.workspace_id, "callSid": call.call_id}
        )

    def incoming(self, message: Data) -> list[_Incoming]:
        if not isinstance(message, str):
            return []
        try:
            body = json.loads(message)
        except ValueError:
            return []
        if not isinstance(body, dict):
            return []
        event = body.get("event")
        if event == "media":
            media = body.get("media")
            payload = media.get("payload") if isinstance(media, dict) else None
            if not isinstance(payload, str):
                return []
            try:
                audio = base64.b64decode(payload, validate=True)
            except (binascii.Error, ValueError):
                return []
            return [_Audio(ulaw_decode(audio))] if audio else []
        if event == "mark":
            mark = body.get("mark")
            name = mark.get("name") if isinstance(mark, dict) else None
            return [_Mark(name)] if isinstance(name, str) else []
        if event == "clear":
            return [_Clear()]
        return []


class DrachtioWire:
    """The ``audio.drachtio.org`` subprotocol: JSON metadata, then binary L16 frames."""

    subprotocol: str | None = DRACHTIO_SUBPROTOCOL

    def opening(self, stream: MediaStream) -> list[Data]:
        call = stream.call
        metadata = {
            "callSid": call.call_id,
            "streamSid": stream.stream_sid,
            "accountSid": call.workspace_id,
            "from": call.from_,
            "to": call.to,
            "direction": call.direction,
            "sampleRate": SAMPLE_RATE,
            "mixType": "stereo" if stream.spec.track == "both" else "mono",
            "track": stream.spec.track,
            **dict(stream.spec.parameters),
        }
        return [json.dumps(metadata)]

    def frame(
        self, stream: MediaStream, index: int, inbound: Int16Array, out: Int16Array
    ) -> list[Data]:
        track = stream.spec.track
        if track == "both":
            return [np.stack((inbound, out), axis=1).astype("<i2").tobytes()]
        return [(inbound if track == "inbound" else out).astype("<i2").tobytes()]

    def dtmf(self, stream: MediaStream, digit: str) -> Data:
        return json.dumps({"type": "dtmf", "data": {"digit": digit}})

    def mark(self, stream: MediaStream, name: str) -> Data:
        return json.dumps({"type": "mark", "data": {"name": name, "event": "playout"}})

    def closing(self, stream: MediaStream) -> Data | None:
        return None  # the close frame says it

    def incoming(self, message: Data) -> list[_Incoming]:
        if isinstance(message, bytes):
            usable = len(message) - len(message) % 2
            samples = np.frombuffer(message[:usable], dtype="<i2").astype(np.int16)
            return [_Audio(samples)] if len(samples) else []
        try:
            body = json.loads(message)
        except ValueError:
            return []
        if not isinstance(body, dict):
            return []
        kind = body.get("type")
        if kind == "mark":
            data = body.get("data")
            name = data.get("name") if isinstance(data, dict) else None
            return [_Mark(name)] if isinstance(name, str) else []
        if kind in ("killAudio", "clear"):
            return [_Clear()]
        return []


# --- opening the connection ----------------------------------------------------------------


class StreamOpener:
    """Opens streams' WebSockets under the SSRF rule of :mod:`sautikit.net`.

    ``allow_private`` is the operator's ``SAUTIKIT_ALLOW_PRIVATE_HTTP``: without it a
    stream to a loopback, private or reserved address is refused.
    """

    def __init__(self, *, allow_private: bool = False, open_timeout: float = 5.0) -> None:
        self.allow_private = allow_private
        self.open_timeout = open_timeout

    async def open(self, spec: StreamSpec, call: CallControl) -> MediaStream:
        """Connect to ``spec.url`` and answer the stream, not yet streaming; raises
        :class:`StreamError`."""
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidHandshake, InvalidURI

        wire: _Wire = DrachtioWire() if spec.subprotocol == DRACHTIO_SUBPROTOCOL else TwilioWire()
        parts = urlsplit(spec.url)
        secure = parts.scheme == "wss"
        host = parts.hostname or ""
        port = parts.port or (443 if secure else 80)
        try:
            sock = await connect_outbound_tcp(
                host, port, allow_private=self.allow_private, timeout=self.open_timeout
            )
        except OutboundAddressRefused as exc:
            raise StreamError("stream.address_refused", str(exc)) from None
        except (OSError, TimeoutError) as exc:
            raise StreamError("stream.unreachable", f"cannot reach {spec.url}: {exc}") from None
        options: dict[str, Any] = {"sock": sock}
        if secure:
            options["server_hostname"] = host
        try:
            connection = await connect(
                spec.url,
                subprotocols=[wire.subprotocol] if wire.subprotocol else None,  # type: ignore[list-item]
                compression=None,
                open_timeout=self.open_timeout,
                max_size=_MAX_MESSAGE_BYTES,
                proxy=None,
                user_agent_header="Sautikit",
                **options,
            )
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            sock.close()
            raise StreamError(
                "stream.handshake_failed", f"{spec.url} refused the WebSocket: {exc}"
            ) from None
        if wire.subprotocol is not None and connection.subprotocol != wire.subprotocol:
            await _close_quietly(connection)
            raise StreamError(
                "stream.subprotocol_refused",
                f"{spec.url} did not accept the {wire.subprotocol} subprotocol",
            )
        return MediaStream(spec, call, connection, wire)


async def _close_quietly(connection: ClientConnection) -> None:
    with contextlib.suppress(Exception):
        async with asyncio.timeout(_CLOSE_SECONDS):
            await connection.close()


# --- one stream ----------------------------------------------------------------------------


@dataclass(slots=True)
class _Frame:
    index: int
    inbound: Int16Array
    outbound: Int16Array


class MediaStream:
    """One live stream of one call: the tap, the WebSocket, and what plays back.

    Made by :meth:`StreamOpener.open`; :meth:`run` streams until the app closes the
    connection, :meth:`stop` is called, the call ends, or the connection fails, and answers
    why it ended. The tap methods run on the media tick and only queue.
    """

    def __init__(
        self, spec: StreamSpec, call: CallControl, connection: ClientConnection, wire: _Wire
    ) -> None:
        self.spec = spec
        self.call = call
        self.stream_sid = "MZ" + uuid.uuid4().hex
        self.name = spec.name or self.stream_sid
        self.state = StreamState.OPEN
        self.dropped_frames = 0
        """Frames dropped because the app did not read them in time."""
        self.error: str | None = None
        """Why the stream failed, once it has; None while it is fine or stopped cleanly."""
        self._connection = connection
        self._wire = wire
        self._frames_seen = 0
        self._outgoing: deque[_Frame | Data] = deque()
        self._queued_frames = 0
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        # Audio from the app, in order: chunks, samples queued and played so far, and the
        # marks waiting for the sample count at which they were sent.
        self._playback: deque[Int16Array] = deque()
        self._playback_offset = 0
        self._queued_samples = 0
        self._played_samples = 0
        self._marks: deque[tuple[int, str]] = deque()

    # --- the tap (on the media tick) ------------------------------------------------------

    def next_frame(self) -> Int16Array | None:
        if not self._playback:
            self._echo_reached_marks()
            return None
        frame = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        filled = 0
        while filled < FRAME_SAMPLES and self._playback:
            chunk = self._playback[0]
            take = min(FRAME_SAMPLES - filled, len(chunk) - self._playback_offset)
            frame[filled : filled + take] = chunk[
                self._playback_offset : self._playback_offset + take
            ]
            filled += take
            self._playback_offset += take
            if self._playback_offset >= len(chunk):
                self._playback.popleft()
                self._playback_offset = 0
        self._played_samples += filled
        self._echo_reached_marks()
        return frame

    def on_frame(self, inbound: Int16Array, outbound: Int16Array) -> None:
        if self.state is not StreamState.STREAMING:
            return
        if self._queued_frames >= MAX_BACKLOG_FRAMES:
            self._drop_oldest_frame()
        self._outgoing.append(_Frame(self._frames_seen, inbound, outbound))
        self._frames_seen += 1
        self._queued_frames += 1
        self._wake.set()

    def on_digit(self, digit: str) -> None:
        if self.state is StreamState.STREAMING:
            self._send_later(self._wire.dtmf(self, digit))

    # --- control --------------------------------------------------------------------------

    def stop(self) -> None:
        """End the stream (the API's stop, the call's end); :meth:`run` returns soon."""
        self._stop.set()
        self._wake.set()

    @property
    def playing(self) -> bool:
        """Whether audio from the app is waiting to be played."""
        return bool(self._playback)

    async def run(self) -> str:
        """Stream until it ends; answers why: ``stopped``, ``closed`` (by the app),
        ``call_ended`` or ``failed`` (then :attr:`error` says why)."""
        if self.state is not StreamState.OPEN:
            raise RuntimeError("a stream runs once")
        self.state = StreamState.STREAMING
        for message in self._wire.opening(self):
            self._send_later(message)
        try:
            self.call.add_media_tap(self)
        except Exception as exc:  # the call's media closed before the stream started
            self.state = StreamState.STOPPED
            await _close_quietly(self._connection)
            log.info("stream %s: the call's media is gone: %s", self.stream_sid, exc)
            return "call_ended"
        sender = asyncio.create_task(self._send_loop(), name=f"stream {self.stream_sid} send")
        receiver = asyncio.create_task(self._receive_loop(), name=f"stream {self.stream_sid} recv")
        reason = "stopped"
        try:
            done, _ = await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
            finished = sender if sender in done else receiver
            if finished.cancelled():
                reason = "stopped"
            elif (failure := finished.exception()) is not None:
                reason = "failed"
                self.error = str(failure) or type(failure).__name__
            else:
                reason = finished.result()
        finally:
            self.state = StreamState.STOPPED
            self.call.remove_media_tap(self)
            for task in (sender, receiver):
                task.cancel()
            await asyncio.gather(sender, receiver, return_exceptions=True)
            await self._say_goodbye(reason)
        return reason

    # --- inside -----------------------------------------------------------------------------

    def _send_later(self, message: Data) -> None:
        self._outgoing.append(message)
        self._wake.set()

    def _drop_oldest_frame(self) -> None:
        for position, item in enumerate(self._outgoing):
            if isinstance(item, _Frame):
                del self._outgoing[position]
                self._queued_frames -= 1
                self.dropped_frames += 1
                return

    def _echo_reached_marks(self) -> None:
        while self._marks and self._marks[0][0] <= self._played_samples:
            _, name = self._marks.popleft()
            self._send_later(self._wire.mark(self, name))

    def _heard(self, item: _Incoming) -> None:
        if isinstance(item, _Audio):
            if not self.spec.bidirectional:
                return  # a one-way stream plays nothing back
            if (
                self._queued_samples - self._played_samples + len(item.samples)
                > _MAX_PLAYBACK_SAMPLES
            ):
                log.info("stream %s: playback buffer full; audio dropped", self.stream_sid)
                return
            self._playback.append(item.samples)
            self._queued_samples += len(item.samples)
        elif isinstance(item, _Mark):
            self._marks.append((self._queued_samples, item.name))
        else:  # clear: stop at once; marks not reached are echoed now
            self._playback.clear()
            self._playback_offset = 0
            self._played_samples = self._queued_samples
            self._echo_reached_marks()

    async def _send_loop(self) -> str:
        connection = self._connection
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_CALL_CHECK_SECONDS):
                    await self._wake.wait()
            self._wake.clear()
            while self._outgoing:
                item = self._outgoing.popleft()
                if isinstance(item, _Frame):
                    self._queued_frames -= 1
                    for message in self._wire.frame(self, item.index, item.inbound, item.outbound):
                        await connection.send(message)
                else:
                    await connection.send(item)
            if self._stop.is_set():
                return "stopped"
            if self.call.ended:
                return "call_ended"

    async def _receive_loop(self) -> str:
        from websockets.exceptions import ConnectionClosedOK

        try:
            async for message in self._connection:
                for item in self._wire.incoming(message):
                    self._heard(item)
        except ConnectionClosedOK:
            pass
        return "closed"

    async def _say_goodbye(self, reason: str) -> None:
        """Send what is still queued for the app (marks, the last frames) and the stop
        message, then close; bounded, and silent if the connection is already gone."""
        if reason in ("closed", "failed"):
            await _close_quietly(self._connection)
            return
        with contextlib.suppress(Exception):
            async with asyncio.timeout(_CLOSE_SECONDS):
                while self._outgoing:
                    item = self._outgoing.popleft()
                    if isinstance(item, _Frame):
                        for message in self._wire.frame(
                            self, item.index, item.inbound, item.outbound
                        ):
                            await self._connection.send(message)
                    else:
                        await self._connection.send(item)
                closing = self._wire.closing(self)
                if closing is not None:
                    await self._connection.send(closing)
        await _close_quietly(self._connection)
