"""What the interpreter needs from a call, and what it hands finished recordings to.

The interpreter never touches SIP or RTP. It drives one call leg through
:class:`CallControl`, a small media-level interface the PBX implements over its dialog and
:class:`~sautikit.media.channel.MediaChannel`, and tests implement with a scripted fake. A
finished recording goes to a :class:`RecordingSink`, the seam the recording pipeline
(spool → object store → recording row) fills:
:class:`~sautikit.recordings.pipeline.RecordingPipeline`.

Contract shared by every ``async`` media method of :class:`CallControl`: when the call
ends (the far end hangs up, or the PBX ends it) while the method waits, it raises
:class:`CallEnded` promptly — except :meth:`CallControl.record`, :meth:`CallControl.dial`
and :meth:`CallControl.conference`, which return their result so the recording and the
dial outcome still reach the app. Cancelling a method's await (a live redirect) stops what
it was doing on the call: the prompt, the collection, the recording, the dial attempt.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

from sautikit.media.channel import MediaTap

__all__ = [
    "CallControl",
    "CallEnded",
    "CallStatus",
    "ConferenceOptions",
    "ConferenceResult",
    "ConferenceStatus",
    "DequeueResult",
    "DialCallStatus",
    "DialResult",
    "DialTarget",
    "DigitsResult",
    "HangupCause",
    "MediaTap",
    "PlayOutcome",
    "QueueResult",
    "QueueStanding",
    "QueueStay",
    "QueueTicket",
    "RecordResult",
    "RecordingInfo",
    "RecordingIntent",
    "RecordingSink",
    "RecordingSource",
]

Int16Array = npt.NDArray[np.int16]


class CallStatus(enum.StrEnum):
    """A call's status (SPEC §4); the changes it may make are in ``calls.status``."""

    QUEUED = "queued"
    RINGING = "ringing"
    ANSWERED = "answered"
    COMPLETED = "completed"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    FAILED = "failed"
    CANCELED = "canceled"


HangupCause = Literal[
    "normal_clearing",
    "caller_hangup",
    "callee_hangup",
    "no_answer",
    "busy",
    "rejected",
    "insufficient_funds",
    "max_duration",
    "application_error",
    "network_error",
]
"""SPEC §4's hangup causes."""

DialCallStatus = Literal["completed", "busy", "no_answer", "failed", "canceled"]
RecordingSource = Literal["record", "dial", "conference", "api"]


class CallEnded(Exception):
    """The call is over (the far end hung up or the PBX ended it); stop running actions."""


@dataclass(frozen=True, slots=True)
class PlayOutcome:
    """How a prompt ended: played out (``digit`` None) or interrupted by the key ``digit``."""

    digit: str | None = None


@dataclass(frozen=True, slots=True)
class DigitsResult:
    """Digits collected, without the finish key; ``finished_by`` says what ended it."""

    digits: str
    finished_by: Literal["key", "max_digits", "timeout"]
    key: str | None = None
    """The finish key pressed, when ``finished_by`` is ``key``."""


@dataclass(frozen=True, slots=True)
class RecordResult:
    """A finished spool file (WAV, 8 kHz 16-bit PCM) and how the recording ended."""

    path: Path
    duration: float
    """Seconds of audio kept (after trimming)."""
    channels: int
    ended_by: Literal["silence", "max_length", "key", "hangup", "stopped"]
    key: str | None = None
    """The finish key that ended it, when ``ended_by`` is ``key``."""
    empty: bool = False
    """Nothing but silence was heard: the app is told ``RecordingDuration: 0``, nothing is
    stored, and the sink's :meth:`RecordingSink.discard` removes the spool file."""


@dataclass(frozen=True, slots=True)
class RecordingIntent:
    """What the app wants done with a ``record`` verb's recording, known before it starts so
    that a recording cut short by a crash is still stored and its callback still posted."""

    action_url: str | None = None
    action_method: str = "POST"
    transcribe: bool = False
    transcribe_callback: str | None = None


@dataclass(frozen=True, slots=True)
class DialTarget:
    """One destination of a ``dial``: an E.164 number or a SIP URI."""

    kind: Literal["number", "sip"]
    address: str


@dataclass(frozen=True, slots=True)
class DialResult:
    """How a ``dial`` ended, as posted to its ``action`` (SPEC §3)."""

    status: DialCallStatus
    call_id: str | None = None
    """The child leg that answered (or the last one tried); None if none was created."""
    duration: int = 0
    """Whole seconds the bridge lasted (0 unless answered)."""
    recording: RecordResult | None = None
    """The bridge recording, when ``record`` asked for one."""


@dataclass(frozen=True, slots=True)
class ConferenceStatus:
    """Something that happened in a room: ``event`` is one of actions.STATUS_EVENTS;
    ``call_id`` is the participant concerned (for join, leave, mute, unmute)."""

    event: str
    call_id: str | None = None


@dataclass(frozen=True, slots=True)
class ConferenceOptions:
    """How a leg takes part in a room (the ``conference`` verb's parameters)."""

    muted: bool = False
    beep: bool = True
    start_on_enter: bool = True
    end_on_exit: bool = False
    max_participants: int = 250
    wait_audio: Int16Array | None = None
    """Played on a loop to a participant until the room starts (``waitUrl``)."""
    record: bool = False


@dataclass(frozen=True, slots=True)
class ConferenceResult:
    """How this leg's stay in the room ended."""

    reason: Literal["left", "room_ended", "removed", "full", "hangup"]


QueueResult = Literal["bridged", "hangup", "leave", "removed", "queue-full", "redirected", "error"]
"""How a caller's stay in a queue ended (Twilio's QueueResult, plus ``removed``: taken out
through the API)."""


@dataclass(frozen=True, slots=True)
class QueueStanding:
    """Where a waiting caller stands, as the ``waitUrl`` and the announcements tell it."""

    queue_id: str
    position: int
    """1 for the caller who will be taken next."""
    size: int
    max_size: int
    wait_seconds: int
    """How long this caller has waited."""
    average_wait_seconds: int
    """The mean wait of the callers agents took in the last hour (0: none yet)."""


@dataclass(frozen=True, slots=True)
class QueueStay:
    """How a caller's stay ended: ``agent_call_id`` and ``duration`` when ``bridged``."""

    result: QueueResult
    wait_seconds: int
    agent_call_id: str | None = None
    duration: int = 0


@dataclass(frozen=True, slots=True)
class DequeueResult:
    """How an agent's ``dequeue`` ended (``bridged`` or ``queue-empty``)."""

    result: Literal["bridged", "queue-empty", "hangup"]
    member_call_id: str | None = None
    wait_seconds: int = 0
    """How long the caller taken had waited."""
    duration: int = 0


class QueueTicket(Protocol):
    """A caller's place in a queue (from :meth:`CallControl.enqueue`)."""

    queue_id: str

    async def standing(self) -> QueueStanding: ...

    async def wait_for_agent(self) -> bool:
        """Wait until an agent takes the caller (True) or the stay ends otherwise: the
        caller hung up, or was removed through the API (False)."""
        ...

    async def talk(self) -> QueueStay:
        """After :meth:`wait_for_agent` answered True: bridge the caller with the agent
        until one of them hangs up."""
        ...

    async def leave(self, result: QueueResult) -> QueueStay:
        """End the stay with ``result`` (a no-op answering the first outcome once over)."""
        ...


@dataclass(frozen=True, slots=True)
class RecordingInfo:
    """A stored recording, as the app is told about it."""

    sid: str
    url: str
    duration: int
    """Whole seconds."""
    channels: int


class CallControl(Protocol):
    """One call leg, as the voice-action interpreter drives it."""

    call_id: str
    workspace_id: str
    from_: str
    to: str
    direction: Literal["inbound", "outbound"]

    @property
    def status(self) -> CallStatus:
        """The call's SPEC §4 status, sent to the app as ``CallStatus``."""
        ...

    @property
    def answered(self) -> bool:
        """Whether the call was answered; an inbound call is answered lazily, by
        :meth:`answer`, just before the first action that needs media."""
        ...

    @property
    def ended(self) -> bool:
        """True once the call is over; the interpreter then stops."""
        ...

    async def answer(self) -> None:
        """Answer an inbound call (200 OK, media flowing). No-op once answered."""
        ...

    async def reject(self, reason: Literal["rejected", "busy"]) -> None:
        """Refuse the unanswered call: ``rejected`` → 603 Decline, ``busy`` → 486 Busy Here.
        Only called before answer; nothing is billed; the call ends with cause ``rejected``
        or ``busy``."""
        ...

    async def hangup(self, cause: HangupCause = "normal_clearing") -> None:
        """End the call (BYE, or a final response if unanswered) with ``cause``.
        No-op once ended."""
        ...

    async def record_error(self, code: str, message: str) -> None:
        """Keep an application error on the call (``call.error``: code and message)."""
        ...

    async def say(
        self, text: str, *, language: str, voice: str | None, loop: int, interruptible: bool
    ) -> PlayOutcome:
        """Speak ``text`` (``loop`` 0 or 1: once; n: n times). With ``interruptible``, a key
        pressed before or during the prompt ends it and stays queued, so it is the first
        digit :meth:`collect_digits` returns."""
        ...

    async def play(self, audio: Int16Array, *, loop: int, interruptible: bool) -> PlayOutcome:
        """Play 8 kHz int16 audio, with the same ``loop`` and key rules as :meth:`say`."""
        ...

    async def pause(self, seconds: float) -> None:
        """Keep the line open in silence."""
        ...

    async def collect_digits(
        self,
        *,
        num_digits: int,
        finish_on_key: str,
        timeout: float,  # noqa: ASYNC109 - counted in media time by the implementation
    ) -> DigitsResult:
        """Collect DTMF: until a key of ``finish_on_key`` ("" for none), ``num_digits``
        digits (0: no limit), or ``timeout`` seconds without a key press (counted from the
        call and again after each key). Keys queued earlier count first."""
        ...

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
        """Record what the caller says into a new spool file until ``silence_timeout``
        seconds of silence after speech (0: never), ``max_length`` seconds, a key of
        ``finish_on_key`` (not recorded), or hangup — a hangup returns the result rather
        than raising. ``trim`` cuts leading and trailing silence."""
        ...

    async def dial(
        self,
        targets: list[DialTarget],
        *,
        caller_id: str | None,
        timeout: float,  # noqa: ASYNC109 - the ring time, a SIP-level timer
        record: Literal["do-not-record", "record-from-answer", "record-from-ringing"],
        recording_channels: int,
        hangup_on_star: bool,
    ) -> DialResult:
        """Ring every target at once for up to ``timeout`` seconds; bridge the first to
        answer, cancel the others, and return when the bridge ends (the callee hangs up,
        the caller presses * with ``hangup_on_star``, or the caller hangs up — which
        returns rather than raises). The implementation enforces what the interpreter only
        passes on: destination authorisation (SPEC §8) and the ``caller_id`` rule — a
        workspace number or this call's From or To; None means this call's From. Each
        child leg is a call of its own whose parent is this call. A refused target or
        caller id ends the dial with status ``failed``."""
        ...

    def add_media_tap(self, tap: MediaTap) -> None:
        """Let ``tap`` hear the call live and speak into it, every 20 ms from the next
        tick (the ``stream`` verb); raises CallEnded once the call's media is gone."""
        ...

    def remove_media_tap(self, tap: MediaTap) -> None:
        """Stop feeding ``tap``; idempotent, also after the call ended."""
        ...

    async def enqueue(self, name: str, *, max_size: int | None) -> QueueTicket | None:
        """Put the call at the back of the workspace's queue ``name`` (made if new;
        ``max_size`` sets its limit); None when the queue is full."""
        ...

    async def dequeue(self, name: str, *, timeout: float) -> DequeueResult:  # noqa: ASYNC109
        """Take the caller who has waited longest in ``name`` (waiting up to ``timeout``
        seconds for one when the queue is empty) and bridge them with this call until one
        side hangs up. A caller hanging up first returns rather than raises."""
        ...

    async def conference(
        self,
        name: str,
        options: ConferenceOptions,
        *,
        on_status: Callable[[ConferenceStatus], None],
        on_recording: Callable[[RecordResult], Awaitable[None]],
    ) -> ConferenceResult:
        """Join the workspace's room ``name`` and stay until this leg leaves it.

        The room starts when a participant with ``start_on_enter`` is in it; until then
        the others hear ``wait_audio`` on a loop (or silence). A participant with
        ``end_on_exit`` ends the room for everyone when it leaves. A room at
        ``max_participants`` refuses the leg (``full``). ``beep`` plays a tone to the room
        as participants join and leave. ``record`` records the whole room from when it
        starts; when that recording finishes (even after this leg left) it is handed to
        ``on_recording``. ``on_status`` hears the room's events as they happen; it must
        not block."""
        ...


class RecordingSink(Protocol):
    """Where finished recordings go: the recording pipeline of SPEC §5.

    :meth:`recording_finished` takes ownership of the spool file: it stores it, makes the
    recording row, and starts transcription (off the call's path, posting to
    ``transcribe_callback``) when asked; it answers what the app is told.
    """

    async def recording_finished(
        self,
        call: CallControl,
        result: RecordResult,
        *,
        source: RecordingSource,
        transcribe: bool,
        transcribe_callback: str | None,
    ) -> RecordingInfo: ...

    async def discard(self, result: RecordResult) -> None:
        """An empty recording: remove its spool file; nothing is stored."""
        ...
