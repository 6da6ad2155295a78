"""A live call in this process: the voice interpreter's ``CallControl`` over a PBX leg.

:class:`LiveCall` turns the interpreter's media-level requests into media-channel work on
its :class:`~sautikit.pbx.CallLeg` — prompts, digits, recordings, dials and conferences —
and reports what happens to the call to its :class:`CallHost` (the call manager), which
keeps the call record and its events. It works out why a call ended (SPEC §4's hangup
causes) from how the SIP call ended, unless Sautikit ended it for a reason of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
import time
import wave
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from sautikit.db.types import utcnow
from sautikit.media import (
    Bridge,
    ChannelClosed,
    DigitsEnd,
    MediaChannel,
    PlayEnd,
    RecordingHandle,
    load_wav,
)
from sautikit.media import PlayOutcome as MediaPlayOutcome
from sautikit.media.audio import SAMPLE_RATE, encode_wav
from sautikit.media.player import tone
from sautikit.media.silence import trim_silence
from sautikit.metrics import COUNTERS
from sautikit.pbx import CallLeg, InboundLeg, OutboundLeg
from sautikit.sip import CallEnd, CallFailed, SipUri
from sautikit.voice.control import (
    CallEnded,
    CallStatus,
    ConferenceOptions,
    ConferenceResult,
    ConferenceStatus,
    DequeueResult,
    DialCallStatus,
    DialResult,
    DialTarget,
    DigitsResult,
    HangupCause,
    Int16Array,
    MediaTap,
    PlayOutcome,
    QueueTicket,
    RecordingIntent,
    RecordingSource,
    RecordResult,
)
from sautikit.voice.failure import CallErrorDetail, hangup_of, insufficient_funds_error

__all__ = ["TRANSFEROR_GRACE_SECONDS", "CallHost", "DialRefused", "LiveCall", "transfer_target"]

log = logging.getLogger(__name__)

SILENCE_DBFS = -40.0
"""Quieter than this is silence: the record verb's timeout and empty recordings."""

_FINISHED_BY: dict[DigitsEnd, Literal["key", "max_digits", "timeout"]] = {
    DigitsEnd.KEY: "key",
    DigitsEnd.MAX_DIGITS: "max_digits",
    DigitsEnd.TIMEOUT: "timeout",
}


class DialRefused(Exception):
    """A dial leg that was not placed; ``code`` is the error the parent call records
    (``destinations.not_allowed``, ``numbers.not_owned``, ``calls.limit_exceeded``,
    ``wallet.insufficient_funds``, or the failure of the send itself)."""

    def __init__(self, message: str, code: str = "dial.not_allowed") -> None:
        super().__init__(message)
        self.code = code


class CallHost(Protocol):
    """What a live call needs from the call manager."""

    async def call_answered(self, call: LiveCall) -> None: ...

    async def call_ended(self, call: LiveCall, end: CallEnd) -> None: ...

    async def record_call_error(self, call: LiveCall, code: str, message: str) -> None: ...

    async def place_child(
        self, parent: LiveCall, target: DialTarget, caller_id: str | None, ring_timeout: float
    ) -> LiveCall:
        """Start ringing ``target`` as a child leg of ``parent``; raises DialRefused."""
        ...

    async def begin_recording(
        self,
        call: LiveCall,
        source: RecordingSource,
        *,
        channels: int,
        trim: bool = False,
        intent: RecordingIntent = RecordingIntent(),
    ) -> Path:
        """Open the recording's row (so a crash cannot lose it) and answer its spool path."""
        ...

    async def join_conference(
        self,
        call: LiveCall,
        name: str,
        options: ConferenceOptions,
        *,
        on_status: Callable[[ConferenceStatus], None],
        on_recording: Callable[[RecordResult], Awaitable[None]],
    ) -> ConferenceResult: ...

    async def join_queue(
        self, call: LiveCall, name: str, *, max_size: int | None
    ) -> QueueTicket | None: ...

    async def take_from_queue(
        self,
        agent: LiveCall,
        name: str,
        *,
        timeout: float,  # noqa: ASYNC109 - how long to wait for a caller
    ) -> DequeueResult: ...


#: How long a transfer target rings before the transfer is given up (its NOTIFY says so).
TRANSFER_RING_SECONDS = 30.0
#: How long a phone that transferred its call gets to hang up itself before our BYE.
TRANSFEROR_GRACE_SECONDS = 5.0
_NUMBER = re.compile(r"^\+?[0-9]{6,15}$")


@dataclasses.dataclass
class _Transfer:
    """A blind transfer asked for by a party of a bridge: its target, and the final status
    of the call to it (what the REFER's last NOTIFY, or the API, reports)."""

    target: DialTarget
    status: asyncio.Future[int]
    #: Asked by the callee's phone: it hangs up itself once told the transfer worked.
    by_refer: bool = False

    def finish(self, status: int) -> None:
        if not self.status.done():
            self.status.set_result(status)


def transfer_target(uri: SipUri) -> DialTarget:
    """A Refer-To URI as a dial target: its user part when that is a number (the
    agent keyed one), else the URI itself."""
    user = uri.user or ""
    if _NUMBER.match(user):
        return DialTarget("number", user if user.startswith("+") else "+" + user)
    return DialTarget("sip", str(uri))


def _ringback() -> Int16Array:
    """Kenya's ringback: 425 Hz, 1 s on, 4 s off (ITU-T E.180)."""
    return np.concatenate([tone(425, 1.0, 0.2), np.zeros(4 * SAMPLE_RATE, np.int16)])


class LiveCall:
    """One call leg being run here, by the interpreter (a parent) or by a dial (a child)."""

    def __init__(
        self,
        host: CallHost,
        leg: CallLeg,
        *,
        call_id: str,
        workspace_id: str,
        from_: str,
        to: str,
        direction: Literal["inbound", "outbound"],
        on_net: bool = False,
    ) -> None:
        self.host = host
        self.leg = leg
        self.call_id = call_id
        self.workspace_id = workspace_id
        self.from_ = from_
        self.to = to
        self.direction = direction
        self.on_net = on_net
        """An outbound leg to a number of this deployment (calls.routing)."""
        self.cause: HangupCause | None = None
        """Set when Sautikit ends the call for a reason of its own (max_duration, …)."""
        self.error: CallErrorDetail | None = None
        """Why the call failed (voice.failure), once it has ended."""
        self.recording: RecordingHandle | None = None
        """The recording in progress on this call, for the API's pause/resume/stop."""
        self.answered_event = asyncio.Event()
        self.journal = asyncio.Lock()
        """Held while the call's record changes, so ringing, answered and ended are written
        in the order they happened even when their tasks overlap."""
        self._recording_stopped = asyncio.Event()
        self._started_at = time.monotonic()
        self._answered_at: float | None = None
        self._ended_at: float | None = None
        self.answered_at: datetime | None = None
        """When the call was answered: its row is stamped with this, not with the moment
        the write reached the database, so the billed duration is the one heard."""
        self.ended_at: datetime | None = None
        """When the call ended, or Sautikit began to end it (its BYE): likewise."""
        self._status = CallStatus.RINGING
        #: While this call is the callee of a bridge: where its transfer requests go.
        self._transfers: asyncio.Queue[_Transfer] | None = None
        self._watcher = asyncio.ensure_future(self._watch())

    # --- state ---------------------------------------------------------------------------

    @property
    def status(self) -> CallStatus:
        return self._status

    @property
    def answered(self) -> bool:
        return self.leg.answered

    @property
    def ended(self) -> bool:
        return self.leg.ended

    @property
    def channel(self) -> MediaChannel:
        return self.leg.channel

    @property
    def answered_seconds(self) -> float:
        """How long the call has been (or was) up."""
        if self._answered_at is None:
            return 0.0
        return (self._ended_at or time.monotonic()) - self._answered_at

    async def wait_ended(self) -> None:
        await asyncio.shield(self._watcher)

    async def _watch(self) -> None:
        end = await self.leg.wait_ended()
        self._ended_at = time.monotonic()
        self.ended_at = self.ended_at or utcnow()
        if self.cause is None:
            on_net = self.to if self.on_net and self.direction == "outbound" else None
            self.cause, self.error = hangup_of(end, self.direction, self._far_end(), on_net=on_net)
        elif self.cause == "insufficient_funds":
            self.error = insufficient_funds_error()
        self._status = CallStatus.COMPLETED if self.answered_event.is_set() else CallStatus.FAILED
        COUNTERS.call_ends[self.direction, self.cause] += 1
        try:
            await self.host.call_ended(self, end)
        except Exception:
            log.exception("call %s: recording its end failed", self.call_id)

    def _far_end(self) -> str:
        if isinstance(self.leg, OutboundLeg):
            peer = self.leg.sip.destination
            return f"{peer.transport}:{peer.host}:{peer.port}"
        return "the caller"

    async def mark_answered(self) -> None:
        if not self.answered_event.is_set():
            self.answered_event.set()
            self._answered_at = time.monotonic()
            COUNTERS.call_setup.observe(self._answered_at - self._started_at)
            self.answered_at = utcnow()
            self._status = CallStatus.ANSWERED
            await self.host.call_answered(self)

    # --- CallControl: the call itself -----------------------------------------------------

    async def answer(self) -> None:
        if self.answered_event.is_set():
            return
        if self.ended:
            raise CallEnded
        if isinstance(self.leg, InboundLeg):
            try:
                await self.leg.answer()
            except Exception as error:
                raise CallEnded from error
        await self.mark_answered()

    async def reject(self, reason: Literal["rejected", "busy"]) -> None:
        if isinstance(self.leg, InboundLeg) and not self.answered and not self.ended:
            self.cause = reason
            self.leg.reject(486 if reason == "busy" else 603)

    async def hangup(self, cause: HangupCause = "normal_clearing") -> None:
        if self.ended:
            return
        if self.cause is None:
            self.cause = cause
        self.ended_at = self.ended_at or utcnow()
        with contextlib.suppress(Exception):
            await self.leg.hangup()

    async def record_error(self, code: str, message: str) -> None:
        await self.host.record_call_error(self, code, message)

    # --- prompts and keys -----------------------------------------------------------------

    def _played(self, outcome: MediaPlayOutcome) -> PlayOutcome:
        if outcome.end is PlayEnd.CLOSED or self.ended:
            raise CallEnded
        return PlayOutcome(outcome.digit if outcome.end is PlayEnd.DIGIT else None)

    async def say(
        self, text: str, *, language: str, voice: str | None, loop: int, interruptible: bool
    ) -> PlayOutcome:
        outcome = await self.channel.say(
            text, language, voice, loop=loop, interrupt_on_dtmf=interruptible
        )
        return self._played(outcome)

    async def play(self, audio: Int16Array, *, loop: int, interruptible: bool) -> PlayOutcome:
        return self._played(await self.channel.play(audio, loop, interruptible))

    async def pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.leg.wait_ended(), seconds)
        if self.ended:
            raise CallEnded

    async def collect_digits(
        self,
        *,
        num_digits: int,
        finish_on_key: str,
        timeout: float,  # noqa: ASYNC109 - media time
    ) -> DigitsResult:
        result = await self.channel.collect_digits(num_digits, finish_on_key, timeout)
        if result.finished_by is DigitsEnd.CLOSED or self.ended:
            raise CallEnded
        return DigitsResult(result.digits, _FINISHED_BY[result.finished_by], result.key)

    # --- taps (the stream verb) -------------------------------------------------------------

    def add_media_tap(self, tap: MediaTap) -> None:
        if self.ended:
            raise CallEnded
        try:
            self.channel.add_tap(tap)
        except ChannelClosed as exc:
            raise CallEnded from exc

    def remove_media_tap(self, tap: MediaTap) -> None:
        self.channel.remove_tap(tap)

    # --- recording ------------------------------------------------------------------------

    async def record(
        self,
        *,
        max_length: float,
        silence_timeout: float,
        finish_on_key: str,
        trim: bool,
        channels: int,
        intent: RecordingIntent = RecordingIntent(),
    ) -> RecordResult:
        path = await self.host.begin_recording(
            self, "record", channels=channels, trim=trim, intent=intent
        )
        self.channel.clear_digits()
        handle = self.channel.start_recording(path, channels)
        self.recording = handle
        self._recording_stopped.clear()
        waits: dict[asyncio.Future[object], str] = {
            asyncio.ensure_future(asyncio.sleep(max_length)): "max_length",
            asyncio.ensure_future(self.leg.wait_ended()): "hangup",
            asyncio.ensure_future(self._recording_stopped.wait()): "stopped",
        }
        if silence_timeout > 0:
            silence = self.channel.wait_for_silence(SILENCE_DBFS, silence_timeout)
            waits[asyncio.ensure_future(silence)] = "silence"
        if finish_on_key:
            waits[asyncio.ensure_future(self._finish_key(finish_on_key))] = "key"
        try:
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
            self.recording = None
            handle.stop()
        first = next(iter(done))
        ended_by = waits[first]
        key = first.result() if ended_by == "key" else None
        if ended_by == "key" and key is None:
            ended_by = "hangup"
        await handle.finished()
        samples, kept = await asyncio.to_thread(_finish_recording, path, channels, trim)
        return RecordResult(
            path=path,
            duration=len(kept) / SAMPLE_RATE if trim else len(samples) / SAMPLE_RATE,
            channels=channels,
            # The waits map each task to its RecordEnd name; the key task answers a str.
            ended_by=ended_by,  # type: ignore[arg-type]
            key=key,  # type: ignore[arg-type]
            empty=len(kept) == 0,
        )

    def control_recording(self, change: str) -> bool:
        """The API's ``{"recording": "paused" | "resumed" | "stopped"}``; answers whether a
        recording was there to change. Stopping ends a ``record`` verb as if finished."""
        recording = self.recording
        if recording is None:
            return False
        if change == "paused":
            recording.pause()
        elif change == "resumed":
            recording.resume()
        elif change == "stopped":
            self._recording_stopped.set()
        return True

    async def _finish_key(self, keys: str) -> str | None:
        """The first key of ``keys`` pressed, or None when the call ends first."""
        while (digit := await self.channel.next_digit()) is not None:
            if digit in keys:
                return digit
        return None

    # --- dial -----------------------------------------------------------------------------

    async def dial(
        self,
        targets: list[DialTarget],
        *,
        caller_id: str | None,
        timeout: float,  # noqa: ASYNC109 - the ring time
        record: Literal["do-not-record", "record-from-answer", "record-from-ringing"],
        recording_channels: int,
        hangup_on_star: bool,
    ) -> DialResult:
        children: list[LiveCall] = []
        try:
            for target in targets:
                if self.ended:
                    raise CallEnded
                try:
                    children.append(await self.host.place_child(self, target, caller_id, timeout))
                except DialRefused as refused:
                    await self.record_error(refused.code, str(refused))
            if not children:
                return DialResult("failed")
            return await self._connect(children, record, recording_channels, hangup_on_star)
        finally:
            # The legs this dial placed are its own: however it ends — the caller hung up
            # as one answered, the interpreter was cancelled, an error — none outlives it.
            await _end_children(children)

    async def _connect(
        self,
        children: list[LiveCall],
        record: Literal["do-not-record", "record-from-answer", "record-from-ringing"],
        recording_channels: int,
        hangup_on_star: bool,
    ) -> DialResult:
        """Ring ``children``, bridge the first to answer until one side hangs up (through
        any transfers its side asks for), and answer the outcome."""
        # A callee's phone may transfer the caller (REFER) the moment it answers, before
        # the bridge exists: its request waits in this queue for the bridge's loop.
        transfers: asyncio.Queue[_Transfer] = asyncio.Queue()
        for child in children:
            self._offer_transfers(child, transfers)
        try:
            return await self._ring_and_bridge(
                children, transfers, record, recording_channels, hangup_on_star
            )
        finally:
            for child in children:
                child._transfers = None
                child.leg.sip.on_refer = None
            while not transfers.empty():
                transfers.get_nowait().finish(487)

    async def _ring_and_bridge(
        self,
        children: list[LiveCall],
        transfers: asyncio.Queue[_Transfer],
        record: Literal["do-not-record", "record-from-answer", "record-from-ringing"],
        recording_channels: int,
        hangup_on_star: bool,
    ) -> DialResult:
        """Ring ``children`` (ringback meanwhile), bridge the first to answer until one
        side hangs up, and answer the outcome."""
        recording: RecordingHandle | None = None
        path: Path | None = None
        if record == "record-from-ringing":
            path = await self.host.begin_recording(self, "dial", channels=recording_channels)
            recording = self.channel.start_recording(path, recording_channels)
        ringback = asyncio.ensure_future(self.channel.play(_ringback(), loop=1000))
        early: list[Bridge] = []
        ringing = children[0].leg if len(children) == 1 else None
        if isinstance(ringing, OutboundLeg):
            # A carrier's early media (183 with SDP: its ringback, "the number you have
            # dialled…") is heard by the caller instead of ours.
            early_channel = ringing.channel

            def hear_early_media() -> None:
                ringback.cancel()
                self.channel.stop_playback()
                with contextlib.suppress(ChannelClosed):
                    early.append(Bridge(self.channel, early_channel))

            if ringing.hearing_early_media:
                hear_early_media()  # the 183 came while the leg was being placed
            else:
                ringing.on_early_media = hear_early_media
        try:
            winner, failures = await self._first_answer(children)
        finally:
            ringback.cancel()
            self.channel.stop_playback()
            for bridge in early:
                bridge.close()
        if winner is None:
            if recording is not None:
                recording.stop()
                await recording.finished()
            return DialResult(_dial_status(failures), children[-1].call_id)
        if record == "record-from-answer":
            path = await self.host.begin_recording(self, "dial", channels=recording_channels)
        try:
            bridge = Bridge(
                self.channel,
                winner.channel,
                path if record == "record-from-answer" else None,
                recording_channels,
            )
        except ChannelClosed:
            # One side hung up while the answer was being recorded: the bridge ended as
            # it began, and a recording opened for it is an empty one.
            return await self._connected_to_nobody(winner, recording, path, recording_channels)
        recording = recording or bridge.recording
        self.recording = recording
        self._recording_stopped.clear()
        let_go: list[asyncio.Future[None]] = []
        try:
            while True:
                asked = asyncio.ensure_future(transfers.get())
                watchers: list[asyncio.Future[Any]] = [asyncio.ensure_future(bridge.wait()), asked]
                if hangup_on_star:
                    watchers.append(asyncio.ensure_future(self._finish_key("*")))
                try:
                    await asyncio.wait(watchers, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for watcher in watchers:
                        watcher.cancel()
                if not asked.done() or asked.cancelled():
                    break
                # A blind transfer (the callee's REFER, or the API): the caller hears
                # ringback while the target rings, then talks to it instead.
                bridge.close()
                request = asked.result()
                taken_over = await self._transfer(request, children, transfers)
                if taken_over is not None:
                    winner._transfers = None  # it is leaving: its own REFERs are over
                    if request.by_refer:
                        let_go.append(asyncio.ensure_future(_let_go(winner)))
                    elif not winner.ended:
                        await winner.hangup("normal_clearing")
                    winner = taken_over
                elif winner.ended or self.ended:
                    break
                try:
                    bridge = Bridge(self.channel, winner.channel, None, recording_channels)
                except ChannelClosed:
                    break
        finally:
            for waiting in let_go:
                waiting.cancel()  # the dial's end hangs up every leg it placed
            self.recording = None
            bridge.close()
        if not winner.ended:
            await winner.hangup("normal_clearing")
        await winner.wait_ended()
        result = None
        if recording is not None and path is not None:
            seconds = recording.stop()
            await recording.finished()
            result = RecordResult(path, seconds, recording_channels, "hangup")
        duration = int(np.ceil(winner.answered_seconds))
        return DialResult("completed", winner.call_id, duration, result)

    def _offer_transfers(self, callee: LiveCall, transfers: asyncio.Queue[_Transfer]) -> None:
        """Let ``callee`` (a phone: its REFER; the API: :meth:`request_transfer`) hand
        this caller on to someone else."""
        callee._transfers = transfers

        async def on_refer(uri: SipUri) -> int:
            return await callee.request_transfer(transfer_target(uri), by_refer=True)

        callee.leg.sip.on_refer = on_refer

    async def request_transfer(self, target: DialTarget, *, by_refer: bool = False) -> int:
        """Blind transfer (RFC 3515's meaning, wherever it is asked): the party this call
        is bridged to is connected to ``target`` instead, and this call ends. Answers the
        final SIP status of the call to ``target`` (200: connected), 481 when this call is
        not the callee of a bridge."""
        transfers = self._transfers
        if transfers is None or self.ended:
            return 481
        request = _Transfer(target, asyncio.get_running_loop().create_future(), by_refer)
        transfers.put_nowait(request)
        return await asyncio.shield(request.status)

    async def _transfer(
        self,
        request: _Transfer,
        children: list[LiveCall],
        transfers: asyncio.Queue[_Transfer],
    ) -> LiveCall | None:
        """Ring a transfer's target for this caller; the new callee once it answers."""

        def placed(child: LiveCall) -> None:
            children.append(child)
            self._offer_transfers(child, transfers)  # it may hand the caller on in turn

        answered, status = await self.ring_transfer_target(request.target, on_placed=placed)
        request.finish(status)
        return answered

    async def ring_transfer_target(
        self, target: DialTarget, *, on_placed: Callable[[LiveCall], None] | None = None
    ) -> tuple[LiveCall | None, int]:
        """Ring ``target`` for the party of this call, who hears ringback meanwhile (a blind
        transfer's new callee). Answers the answered child and 200, or None and the final
        status of the attempt (403 when the dial is refused, the target's failure, 487 when
        this call ended first). ``on_placed`` learns of the child as soon as it rings."""
        ringback = asyncio.ensure_future(self.channel.play(_ringback(), loop=1000))
        try:
            try:
                child = await self.host.place_child(self, target, None, TRANSFER_RING_SECONDS)
            except DialRefused as refused:
                await self.record_error(refused.code, str(refused))
                return None, 403
            if on_placed is not None:
                on_placed(child)
            answered, failures = await self._first_answer([child])
        finally:
            ringback.cancel()
            self.channel.stop_playback()
        if answered is None:
            return None, next((f.status for f in failures if isinstance(f, CallFailed)), 487)
        return answered, 200

    async def _connected_to_nobody(
        self,
        winner: LiveCall,
        recording: RecordingHandle | None,
        path: Path | None,
        channels: int,
    ) -> DialResult:
        """The outcome of a dial whose bridge could not be built because a side had
        already hung up: the winner is ended, and the recording row (if one was opened)
        gets the audio it has — none for ``record-from-answer``."""
        if not winner.ended:
            await winner.hangup("normal_clearing")
        result = None
        if recording is not None and path is not None:
            seconds = recording.stop()
            await recording.finished()
            result = RecordResult(path, seconds, channels, "hangup")
        elif path is not None:
            empty = np.zeros((0, channels), np.int16) if channels > 1 else np.zeros(0, np.int16)
            await asyncio.to_thread(path.write_bytes, encode_wav(empty, SAMPLE_RATE, channels))
            result = RecordResult(path, 0.0, channels, "hangup")
        return DialResult("completed", winner.call_id, 0, result)

    async def _first_answer(
        self, children: list[LiveCall]
    ) -> tuple[LiveCall | None, list[BaseException]]:
        """Wait for the first child to answer; cancel the rest. The caller hanging up
        cancels them all."""
        answering: dict[asyncio.Future[Any], LiveCall] = {
            asyncio.ensure_future(_wait_answer(child)): child for child in children
        }
        caller_gone: asyncio.Future[Any] = asyncio.ensure_future(self.leg.wait_ended())
        failures: list[BaseException] = []
        winner: LiveCall | None = None
        pending = set(answering)
        while pending and winner is None and not caller_gone.done():
            done, pending = await asyncio.wait(
                pending | {caller_gone}, return_when=asyncio.FIRST_COMPLETED
            )
            pending.discard(caller_gone)
            for finished in done:
                if finished is caller_gone:
                    continue
                error = finished.exception()
                if error is None and winner is None:
                    winner = answering[finished]
                elif error is not None:
                    failures.append(error)
        caller_gone.cancel()
        for future, child in answering.items():
            if child is not winner:
                future.cancel()
                if not child.ended:
                    child.cause = "normal_clearing"
                    with contextlib.suppress(Exception):
                        await _cancel(child)
        if winner is not None:
            await winner.mark_answered()
        return winner, failures

    # --- conference -----------------------------------------------------------------------

    async def conference(
        self,
        name: str,
        options: ConferenceOptions,
        *,
        on_status: Callable[[ConferenceStatus], None],
        on_recording: Callable[[RecordResult], Awaitable[None]],
    ) -> ConferenceResult:
        return await self.host.join_conference(
            self, name, options, on_status=on_status, on_recording=on_recording
        )

    # --- queues ---------------------------------------------------------------------------

    async def enqueue(self, name: str, *, max_size: int | None) -> QueueTicket | None:
        if self.ended:
            raise CallEnded
        return await self.host.join_queue(self, name, max_size=max_size)

    async def dequeue(self, name: str, *, timeout: float) -> DequeueResult:  # noqa: ASYNC109
        if self.ended:
            raise CallEnded
        return await self.host.take_from_queue(self, name, timeout=timeout)


async def _let_go(transferor: LiveCall) -> None:
    """A phone that transferred its caller hangs up once told it worked; if it does not
    in a few seconds, it gets our BYE."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(transferor.leg.wait_ended(), TRANSFEROR_GRACE_SECONDS)
    if not transferor.ended:
        await transferor.hangup("normal_clearing")


async def _wait_answer(child: LiveCall) -> None:
    assert isinstance(child.leg, OutboundLeg)
    await child.leg.wait_answer()


async def _end_children(children: list[LiveCall]) -> None:
    """End every child leg still up: CANCEL what rings, BYE what answered."""

    async def end(child: LiveCall) -> None:
        if child.ended:
            return
        if child.answered:
            await child.hangup("normal_clearing")
            return
        child.cause = child.cause or "normal_clearing"
        with contextlib.suppress(Exception):
            await _cancel(child)

    await asyncio.gather(*(end(child) for child in children))


async def _cancel(child: LiveCall) -> None:
    leg = child.leg
    if isinstance(leg, OutboundLeg) and not leg.answered:
        await leg.cancel()
    else:
        await leg.hangup()


def _dial_status(failures: list[BaseException]) -> DialCallStatus:
    statuses = [f.status for f in failures if isinstance(f, CallFailed)]
    if statuses and all(status in (486, 600) for status in statuses):
        return "busy"
    if statuses and all(status in (408, 480, 487) for status in statuses):
        return "no_answer"
    if not failures:
        return "canceled"  # the caller hung up while it rang
    return "failed"


def _finish_recording(path: Path, channels: int, trim: bool) -> tuple[np.ndarray, np.ndarray]:
    """Read the spool back; trim it in place when asked. Answers (all, kept) mono samples
    of the caller (the left channel), kept being what is left after trimming silence."""
    samples = load_wav(path) if channels == 1 else _left_channel(path)
    kept = trim_silence(samples, SILENCE_DBFS)
    if trim and channels == 1 and len(kept) != len(samples):
        path.write_bytes(encode_wav(kept, SAMPLE_RATE, 1))
    return samples, kept


def _left_channel(path: Path) -> np.ndarray:
    with wave.open(str(path)) as recording:
        frames = np.frombuffer(recording.readframes(recording.getnframes()), "<i2")
    return frames[0::2].copy()
