"""Runs an app's voice actions on one call (SPEC §3).

:class:`Interpreter` fetches the first document, runs its actions top to bottom, and hangs
up when they run out. A verb with an ``action`` URL (``getDigits``, ``record``, ``dial``)
posts its outcome there and the answer replaces the rest of the document; without one, the
next action runs. ``redirect`` fetches and continues likewise.

Failures follow SPEC §3. When the app's URL times out, answers non-2xx, answers something
that is not JSON or an invalid document (or cannot be reached), the call records the
application error (:meth:`CallControl.record_error`; also :attr:`Interpreter.errors`), the
``fallback_url`` is requested once per call with the same fields plus ``ErrorCode`` and
``ErrorUrl``, and if there is none or it fails too, the caller hears a short apology and
the call ends with hangup cause ``application_error``. A document is validated whole
before any of it runs. A ``reject`` after answer and the eleventh ``redirect`` in a row
(with no other verb between) are application errors too.

Decisions where SPEC §3 is silent:

* ``getDigits`` with nothing entered (timeout, or only the finish key) runs the next
  action without requesting ``action``, as Twilio does.
* ``getDigits`` (or ``gather``) with ``input`` speech listens after its prompts
  (:mod:`sautikit.voice.speech`) and posts ``SpeechResult`` and ``Confidence`` (0.000 to
  1.000); keys still work when ``input`` also has ``dtmf``: a key sequence ends the
  listening and posts ``Digits``. Nothing intelligible heard runs the next action, as no
  keys do. ``partialResultCallback`` gets ``UnstableSpeechResult`` and ``SequenceNumber``
  about once a second while the caller speaks; its answers are ignored.
* A verb's ``action`` is still requested when the caller hung up during a ``record`` or
  ``dial`` — the app gets its recording and dial outcome — but its answer is ignored.
  ``record`` posts ``Digits``: the finish key pressed, ``hangup``, or ``""``.
* A ``play`` URL that is refused by the allow-list, unreachable or not audio is recorded
  as an application error and skipped; the call goes on.
* An empty recording (nothing but silence, or nothing left once trimmed) stores nothing
  and, as Twilio's ``<Record>`` does, does not request ``action``: there is no
  ``RecordingUrl`` to give, and an app that fetches it would fail. The call goes on with
  the next action; its recording row says ``empty`` (``GET /v1/calls/{id}``). A ``dial``
  whose bridged recording is empty still requests its ``action`` (the dial outcome), with
  empty ``RecordingSid`` and ``RecordingUrl``.
* Conference status events post ``ConferenceName``, ``ConferenceEvent`` (the event name)
  and ``ParticipantCallId`` to ``statusEventsCallbackUrl``; their answers are ignored.
* Queues (see docs/verbs/queues.md and :mod:`sautikit.voice.queues`): ``enqueue`` holds
  the caller (the ``waitUrl`` documents in a loop, or hold music with the announcements)
  until an agent's ``dequeue`` takes them, the caller leaves (``leave`` in the wait
  document, hangup, removal through the API, a live redirect) or the queue is full; then
  ``action`` gets ``QueueResult`` and ``QueueTime`` — after the bridge ends, when bridged.
  A ``waitUrl`` that fails is an application error and hold music plays instead.
* ``stream`` (see :mod:`sautikit.voice.stream`): one that cannot connect is an application
  error (``stream.*``), posted to ``statusCallback`` as ``stream-error``, and the call goes
  on. A one-way stream forks: the next action runs at once, and the stream lasts until the
  app closes it, :meth:`Interpreter.stop_streams` (the API's stop) or the call's end. A
  ``bidirectional`` stream blocks until it ends, then requests ``action`` (with
  ``StreamSid``, ``StreamName`` and ``StreamEndReason``) or runs the next action. Status
  callbacks post ``StreamSid``, ``StreamName``, ``StreamEvent`` (``stream-started``,
  ``stream-stopped``, ``stream-error``) and ``StreamError``; their answers are ignored. At
  most :data:`MAX_STREAMS` streams run on a call at once.

:meth:`Interpreter.redirect_now` serves the API's live redirect: the current action (or
fetch) is abandoned at once and the new document runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Final

from sautikit.media.player import beep
from sautikit.recordings.transcription import TranscriptionEngine
from sautikit.voice.actions import (
    Action,
    Conference,
    Dequeue,
    Dial,
    Enqueue,
    GetDigits,
    Hangup,
    Leave,
    Pause,
    Play,
    Record,
    Redirect,
    Reject,
    Say,
    Stream,
    parse_actions,
)
from sautikit.voice.callbacks import AppClient, AppRequestError, Fields
from sautikit.voice.control import (
    CallControl,
    CallEnded,
    ConferenceOptions,
    ConferenceStatus,
    DialTarget,
    Int16Array,
    PlayOutcome,
    QueueResult,
    QueueStay,
    QueueTicket,
    RecordingIntent,
    RecordingSink,
    RecordingSource,
    RecordResult,
)
from sautikit.voice.prompts import HostAllowed, PromptCache, PromptError
from sautikit.voice.queues import (
    WAIT_VERBS,
    announcement,
    dequeue_fields,
    hold_music,
    standing_fields,
    stay_fields,
)
from sautikit.voice.speech import SpeechCollector
from sautikit.voice.stream import MediaStream, StreamError, StreamOpener, StreamSpec

__all__ = ["DEFAULT_APOLOGY", "MAX_REDIRECTS", "MAX_STREAMS", "ApplicationError", "Interpreter"]

log = logging.getLogger(__name__)

MAX_REDIRECTS: Final = 10
MAX_STREAMS: Final = 4
DEFAULT_APOLOGY: Final = "We are sorry, an application error has occurred. Goodbye."


@dataclass(frozen=True, slots=True)
class ApplicationError:
    """What went wrong with the app, as kept on the call (``call.error``)."""

    code: str
    message: str


@dataclass(frozen=True, slots=True)
class _Fetch:
    """Request ``url`` with the call's fields plus ``fields``, then run its answer."""

    url: str
    method: str
    fields: dict[str, str | int] = field(default_factory=dict)
    actions: list[Action] | None = None
    """Run these instead of fetching (the API's transfer: a dial of its target)."""


class _Stop(Exception):
    """The document ended the call (hangup, reject, apology): run nothing more."""


class _Left(Exception):
    """A ``waitUrl`` document said ``leave``."""


class Interpreter:
    """Runs the voice actions of one call; :meth:`run` returns when the call is over."""

    def __init__(
        self,
        call: CallControl,
        app: AppClient,
        *,
        recordings: RecordingSink,
        prompts: PromptCache,
        play_allowed: HostAllowed,
        fallback_url: str | None = None,
        fallback_method: str = "POST",
        apology: str = DEFAULT_APOLOGY,
        apology_language: str = "en-US",
        streams: StreamOpener | None = None,
        recognizer: TranscriptionEngine | None = None,
    ) -> None:
        self.call = call
        self.app = app
        self.recordings = recordings
        self.prompts = prompts
        self.play_allowed = play_allowed
        self.fallback_url = fallback_url
        self.fallback_method = fallback_method
        self.apology = apology
        self.apology_language = apology_language
        self.errors: list[ApplicationError] = []
        """Every application error of the call, oldest first."""
        self._fallback_used = False
        self._redirects = 0
        self._running = False
        self._live: _Fetch | None = None
        self._wakeup: asyncio.Event = asyncio.Event()
        self._notifications: set[asyncio.Task[bool]] = set()
        self.streams = streams or StreamOpener()
        self.recognizer = recognizer
        """Speech input's recognizer; None: the process's shared offline Whisper."""
        self._streams: dict[str, MediaStream] = {}
        self._forks: set[asyncio.Task[str]] = set()

    @property
    def error(self) -> ApplicationError | None:
        """The latest application error, if any."""
        return self.errors[-1] if self.errors else None

    # --- driving the call -----------------------------------------------------------------

    async def run(self, url: str, method: str = "POST", fields: Fields | None = None) -> None:
        """Fetch ``url`` (the number's ``voice_url`` or the API call's ``action_url``) and
        run the call's actions until the call is over. ``fields`` go with that first
        request (``AnsweredBy`` after answering-machine detection).

        The host ends a call for reasons of its own (max_duration, insufficient_funds,
        shutdown) by hanging it up with that cause, upon which run() returns; or by
        cancelling run(), which then leaves the hangup to the host. An unexpected error
        hangs up and propagates.
        """
        self._running = True
        step: _Fetch | None = _Fetch(url, method, dict(fields or {}))
        try:
            while step is not None and not self.call.ended:
                step = await self._advance_or_redirect(step)
            await self.call.hangup("normal_clearing")  # a no-op: every way out ended it
        except asyncio.CancelledError:
            for notification in self._notifications:
                notification.cancel()
            raise
        except Exception:
            await self.call.hangup("normal_clearing")
            raise
        finally:
            self._running = False
            await self._end_streams()
            await self._finish_notifications()

    def redirect_now(self, url: str, method: str = "POST") -> bool:
        """Abandon the current action and run the document at ``url`` instead (the API's
        live redirect). Answers False when the call is not running actions."""
        if not self._running or self.call.ended:
            return False
        self._live = _Fetch(url, method)
        self._wakeup.set()
        return True

    def transfer_now(self, target: DialTarget) -> bool:
        """Abandon the current action and dial ``target`` instead (the API's blind
        transfer of a call running its app); the call ends when that dial does."""
        if not self._running or self.call.ended:
            return False
        verb = {"number": target.address} if target.kind == "number" else {"sip": target.address}
        self._live = _Fetch("", "POST", actions=parse_actions([{"dial": verb}]))
        self._wakeup.set()
        return True

    def stop_streams(self, name: str | None = None) -> int:
        """Stop the call's stream called ``name`` (every stream when None), as the API's
        stop does; answers how many were stopped."""
        stopping = [
            stream for stream in self._streams.values() if name is None or stream.name == name
        ]
        for stream in stopping:
            stream.stop()
        return len(stopping)

    async def _advance_or_redirect(self, step: _Fetch) -> _Fetch | None:
        live, self._live = self._live, None
        if live is not None:  # a live redirect that came between two steps
            step = live
        self._wakeup.clear()
        work = asyncio.create_task(self._advance(step))
        wakeup = asyncio.create_task(self._wakeup.wait())
        try:
            await asyncio.wait({work, wakeup}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            wakeup.cancel()
            if not work.done():
                work.cancel()
                await asyncio.gather(work, return_exceptions=True)
        live, self._live = self._live, None
        if live is not None:
            self._redirects = 0
            return live
        return work.result()

    async def _advance(self, step: _Fetch) -> _Fetch | None:
        """Fetch one document and run it; answer the next fetch, or None once over."""
        try:
            try:
                actions = step.actions
                if actions is None:
                    actions = await self.app.fetch_actions(
                        step.url, step.method, self._fields(step.fields)
                    )
            except AppRequestError as exc:
                return await self._fail(exc.code, exc.message, step)
            for action in actions:
                if self.call.ended:
                    return None
                if not isinstance(action, Redirect):
                    self._redirects = 0
                following = await self._perform(action)
                if following is not None:
                    return following
            await self.call.hangup("normal_clearing")
        except (CallEnded, _Stop):
            pass
        return None

    async def _perform(self, action: Action) -> _Fetch | None:
        """Run one action; answer the fetch that replaces the rest of the document."""
        match action:
            case Say():
                await self._answer()
                await self._say(action, interruptible=False)
            case Play():
                audio = await self._load(action.url)
                await self._answer()
                if audio is not None:
                    await self.call.play(audio, loop=action.loop, interruptible=False)
            case GetDigits():
                return await self._get_digits(action)
            case Record():
                return await self._record(action)
            case Dial():
                return await self._dial(action)
            case Conference():
                await self._conference(action)
            case Redirect():
                self._redirects += 1
                if self._redirects > MAX_REDIRECTS:
                    message = f"more than {MAX_REDIRECTS} redirects in a row"
                    return await self._fail("application.too_many_redirects", message, None)
                return _Fetch(action.url, action.method)
            case Reject():
                if self.call.answered:
                    message = "reject is only possible before the call is answered"
                    return await self._fail("application.reject_after_answer", message, None)
                await self.call.reject(action.reason)
                raise _Stop
            case Hangup():
                await self.call.hangup("normal_clearing")
                raise _Stop
            case Pause():
                await self._answer()
                await self.call.pause(action.length)
            case Stream():
                return await self._stream(action)
            case Enqueue():
                return await self._enqueue(action)
            case Dequeue():
                await self._answer()
                dequeued = await self.call.dequeue(action.name, timeout=action.timeout)
                told = dequeue_fields(dequeued, as_dial=False)
                return await self._then(action.action, action.method, told)
            case Leave():
                pass  # only a waitUrl document leaves a queue (_hold_with_documents)
        return None

    # --- verbs ----------------------------------------------------------------------------

    async def _answer(self) -> None:
        if not self.call.answered:
            await self.call.answer()

    async def _say(self, action: Say, *, interruptible: bool) -> PlayOutcome:
        return await self.call.say(
            action.text,
            language=action.language,
            voice=action.voice,
            loop=action.loop,
            interruptible=interruptible,
        )

    async def _load(self, url: str) -> Int16Array | None:
        try:
            return await self.prompts.load(url, allowed=self.play_allowed)
        except PromptError as exc:
            await self._record_error(exc.code, exc.message)
            return None

    async def _get_digits(self, action: GetDigits) -> _Fetch | None:
        await self._answer()
        for prompt in action.nested:
            if isinstance(prompt, Say):
                outcome = await self._say(prompt, interruptible=True)
            else:
                audio = await self._load(prompt.url)
                if audio is None:
                    continue
                outcome = await self.call.play(audio, loop=prompt.loop, interruptible=True)
            if outcome.digit is not None:
                break
        if action.wants_speech:
            fields = await self._gather_speech(action)
        else:
            result = await self.call.collect_digits(
                num_digits=action.num_digits,
                finish_on_key=action.finish_on_key,
                timeout=action.timeout,
            )
            fields = {"Digits": result.digits} if result.digits else None
        if action.action is None or fields is None:
            return None
        return _Fetch(action.action, action.method, fields)

    async def _gather_speech(self, action: GetDigits) -> dict[str, str | int] | None:
        """Listen for speech (and keys, if ``input`` has dtmf) until one of them gives an
        answer: a key sequence wins at once; a key timeout leaves the speech to decide."""
        partial_url = action.partial_result_callback

        def on_partial(text: str, sequence: int) -> None:
            if partial_url is not None:
                fields: dict[str, str | int] = {
                    "UnstableSpeechResult": text,
                    "SequenceNumber": sequence,
                }
                self._notify(self.app.notify(partial_url, self._fields(fields)))

        collector = SpeechCollector(
            self.call,
            timeout=action.timeout,
            speech_timeout=action.speech_timeout,
            hints=action.hints,
            recognizer=self.recognizer,
            on_partial=on_partial if partial_url is not None else None,
        )
        speech = asyncio.create_task(collector.collect())
        digits = (
            asyncio.create_task(
                self.call.collect_digits(
                    num_digits=action.num_digits,
                    finish_on_key=action.finish_on_key,
                    timeout=action.timeout,
                )
            )
            if action.wants_digits
            else None
        )
        pending: set[asyncio.Task[Any]] = {speech} if digits is None else {speech, digits}
        try:
            while True:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                if digits is not None and digits in done:
                    keys = digits.result()  # raises CallEnded with the call
                    if keys.digits:
                        return {"Digits": keys.digits}
                    digits = None
                if speech in done:
                    heard = speech.result()
                    if self.call.ended:
                        raise CallEnded
                    if not heard.text:
                        return None
                    return {"SpeechResult": heard.text, "Confidence": f"{heard.confidence:.3f}"}
        finally:
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _record(self, action: Record) -> _Fetch | None:
        await self._answer()
        if action.play_beep:
            await self.call.play(beep(), loop=0, interruptible=False)
        result = await self.call.record(
            max_length=action.max_length,
            silence_timeout=action.timeout,
            finish_on_key=action.finish_on_key,
            trim=action.trim == "trim-silence",
            channels=1,
            intent=RecordingIntent(
                action.action,
                action.method,
                action.wants_transcription,
                action.transcribe_callback,
            ),
        )
        fields = await self._store(
            result,
            source="record",
            transcribe=action.wants_transcription,
            transcribe_callback=action.transcribe_callback,
        )
        if not fields["RecordingSid"]:
            log.info("call %s: the recording was empty; going on", self.call.call_id)
            if self.call.ended:
                raise CallEnded
            return None
        fields["Digits"] = result.key or ("hangup" if result.ended_by == "hangup" else "")
        return await self._then(action.action, action.method, fields)

    async def _dial(self, action: Dial) -> _Fetch | None:
        await self._answer()
        if action.queue is not None:
            taken = await self.call.dequeue(action.queue, timeout=action.timeout)
            return await self._then(
                action.action, action.method, dequeue_fields(taken, as_dial=True)
            )
        if action.number is not None:
            targets = [DialTarget("number", number) for number in action.number]
        else:
            targets = [DialTarget("sip", uri) for uri in action.sip or ()]
        result = await self.call.dial(
            targets,
            caller_id=action.caller_id,
            timeout=action.timeout,
            record=action.record,
            recording_channels=2 if action.recording_channels == "dual" else 1,
            hangup_on_star=action.hangup_on_star,
        )
        fields: dict[str, str | int] = {
            "DialCallStatus": result.status,
            "DialCallId": result.call_id or "",
            "DialCallDuration": result.duration,
        }
        if result.recording is not None:
            fields |= await self._store(result.recording, source="dial")
        return await self._then(action.action, action.method, fields)

    async def _conference(self, action: Conference) -> None:
        wait_audio = await self._load(action.wait_url) if action.wait_url else None
        await self._answer()
        status_url = action.status_events_callback_url

        def on_status(status: ConferenceStatus) -> None:
            if status_url is None or status.event not in action.status_events:
                return
            fields = {
                "ConferenceName": action.name,
                "ConferenceEvent": status.event,
                "ParticipantCallId": status.call_id or "",
            }
            self._notify(self.app.notify(status_url, self._fields(fields)))

        async def on_recording(result: RecordResult) -> None:
            await self._store(result, source="conference")

        await self.call.conference(
            action.name,
            ConferenceOptions(
                muted=action.muted,
                beep=action.beep,
                start_on_enter=action.start_on_enter,
                end_on_exit=action.end_on_exit,
                max_participants=action.max_participants,
                wait_audio=wait_audio,
                record=action.record,
            ),
            on_status=on_status,
            on_recording=on_recording,
        )

    async def _enqueue(self, action: Enqueue) -> _Fetch | None:
        await self._answer()
        ticket = await self.call.enqueue(action.name, max_size=action.max_size)
        if ticket is None:
            full = QueueStay("queue-full", 0)
            return await self._then(action.action, action.method, stay_fields("", full))
        holding = asyncio.create_task(self._hold(action, ticket))
        taken = asyncio.create_task(ticket.wait_for_agent())
        result: QueueResult = "hangup"
        try:
            await asyncio.wait({holding, taken}, return_when=asyncio.FIRST_COMPLETED)
            if not taken.done() or not taken.result():
                if holding.done():
                    result = holding.result()
                stay = await ticket.leave(result)
            else:
                holding.cancel()
                await asyncio.gather(holding, return_exceptions=True)
                stay = await ticket.talk()
        except asyncio.CancelledError:  # a live redirect: the caller leaves the queue
            stay = await asyncio.shield(ticket.leave("redirected"))
            if action.action is not None:  # told, as Twilio tells it; the answer is ignored
                fields = self._fields(stay_fields(ticket.queue_id, stay))
                self._notify(self.app.notify(action.action, fields, action.method))
            raise
        finally:
            for task in (holding, taken):
                task.cancel()
            await asyncio.gather(holding, taken, return_exceptions=True)
        return await self._then(action.action, action.method, stay_fields(ticket.queue_id, stay))

    async def _hold(self, action: Enqueue, ticket: QueueTicket) -> QueueResult:
        """What the caller hears while waiting; answers how it ended the stay, if it did
        (``leave`` or a hangup); otherwise it runs until cancelled."""
        try:
            if action.wait_url is not None:
                await self._hold_with_documents(action.wait_url, action.wait_url_method, ticket)
            while True:  # hold music, with the announcements between stretches of it
                standing = await ticket.standing()
                said = announcement(
                    standing,
                    position=action.announce_position,
                    wait_time=action.announce_wait_time,
                )
                if said is not None:
                    await self.call.say(
                        said, language=action.language, voice=None, loop=0, interruptible=False
                    )
                stretch = asyncio.create_task(
                    self.call.play(hold_music(), loop=1_000_000, interruptible=False)
                )
                try:  # asyncio.wait, not wait_for: 3.11's wait_for can swallow a cancel
                    await asyncio.wait(
                        {stretch}, timeout=None if said is None else action.announce_every
                    )
                    if stretch.done():
                        stretch.result()  # CallEnded when the caller hung up
                finally:
                    stretch.cancel()
                    await asyncio.gather(stretch, return_exceptions=True)
        except _Left:
            return "leave"
        except (CallEnded, _Stop):
            return "hangup"

    async def _hold_with_documents(self, url: str, method: str, ticket: QueueTicket) -> None:
        """Run the ``waitUrl`` documents in a loop (each request with the caller's place);
        return when one fails (hold music then plays). Raises _Left on ``leave``."""
        while True:
            fields = self._fields(standing_fields(await ticket.standing()))
            try:
                actions = await self.app.fetch_actions(url, method, fields)
            except AppRequestError as exc:
                await self._record_error(exc.code, exc.message)
                return
            if not actions:
                return
            for action in actions:
                if isinstance(action, Leave):
                    raise _Left
                if action.verb not in WAIT_VERBS:
                    message = f"{action.verb} cannot be used in a waitUrl document"
                    await self._record_error("application.not_allowed_in_queue", message)
                    continue
                following = await self._perform(action)
                if following is not None:  # a redirect: its document is the next to loop
                    url, method = following.url, following.method
                    break

    async def _stream(self, action: Stream) -> _Fetch | None:
        await self._answer()
        spec = StreamSpec(
            url=action.url,
            track=action.track,
            bidirectional=action.bidirectional,
            subprotocol=action.subprotocol,
            name=action.name,
            parameters=action.parameters,
        )
        if len(self._streams) >= MAX_STREAMS or (spec.name and spec.name in self._streams):
            why = f"a stream named {spec.name}" if spec.name in self._streams else "4 streams"
            message = f"the call already has {why}"
            self._stream_status(action, None, "stream-error", message)
            await self._record_error("stream.limit", message)
            return None
        try:
            stream = await self.streams.open(spec, self.call)
        except StreamError as exc:
            self._stream_status(action, None, "stream-error", exc.message)
            await self._record_error(exc.code, exc.message)
            return None
        self._streams[stream.name] = stream
        if not action.bidirectional:
            fork = asyncio.get_running_loop().create_task(self._run_stream(action, stream))
            self._forks.add(fork)
            fork.add_done_callback(self._forks.discard)
            return None
        reason = await self._run_stream(action, stream)
        fields: dict[str, str | int] = {
            "StreamSid": stream.stream_sid,
            "StreamName": stream.name,
            "StreamEndReason": reason,
        }
        return await self._then(action.action, action.method, fields)

    async def _run_stream(self, action: Stream, stream: MediaStream) -> str:
        self._stream_status(action, stream, "stream-started")
        reason = "failed"
        try:
            reason = await stream.run()
        finally:
            self._streams.pop(stream.name, None)
            if reason == "failed":
                self._stream_status(action, stream, "stream-error", stream.error or "")
            else:
                self._stream_status(action, stream, "stream-stopped")
        return reason

    def _stream_status(
        self, action: Stream, stream: MediaStream | None, event: str, error: str = ""
    ) -> None:
        if action.status_callback is None:
            return
        fields = {
            "StreamSid": stream.stream_sid if stream is not None else "",
            "StreamName": stream.name if stream is not None else (action.name or ""),
            "StreamEvent": event,
            "StreamError": error,
        }
        self._notify(
            self.app.notify(
                action.status_callback, self._fields(fields), action.status_callback_method
            )
        )

    async def _end_streams(self) -> None:
        """The call is over: every stream stops, and says so to the app."""
        self.stop_streams()
        if self._forks:
            await asyncio.gather(*self._forks, return_exceptions=True)

    # --- shared steps ---------------------------------------------------------------------

    async def _store(
        self,
        result: RecordResult,
        *,
        source: RecordingSource,
        transcribe: bool = False,
        transcribe_callback: str | None = None,
    ) -> dict[str, str | int]:
        """Hand a finished recording to the sink; answer the fields that tell the app."""
        # Shielded: a live redirect abandons the action, never the recording.
        if result.empty:
            await asyncio.shield(self.recordings.discard(result))
            return {
                "RecordingSid": "",
                "RecordingUrl": "",
                "RecordingDuration": 0,
                "RecordingChannels": result.channels,
            }
        info = await asyncio.shield(
            self.recordings.recording_finished(
                self.call,
                result,
                source=source,
                transcribe=transcribe,
                transcribe_callback=transcribe_callback,
            )
        )
        return {
            "RecordingSid": info.sid,
            "RecordingUrl": info.url,
            "RecordingDuration": info.duration,
            "RecordingChannels": info.channels,
        }

    async def _then(
        self, url: str | None, method: str, fields: dict[str, str | int]
    ) -> _Fetch | None:
        """After a verb: fetch its ``action`` URL, or go on. A call that ended meanwhile
        still tells the app, ignoring the answer."""
        if url is None:
            return None
        if self.call.ended:
            await self.app.notify(url, self._fields(fields), method)
            raise CallEnded
        return _Fetch(url, method, fields)

    def _fields(self, extra: Fields) -> dict[str, str | int]:
        call = self.call
        return {
            "CallId": call.call_id,
            "WorkspaceId": call.workspace_id,
            "From": call.from_,
            "To": call.to,
            "Direction": call.direction,
            "CallStatus": call.status,
            **extra,
        }

    async def _record_error(self, code: str, message: str) -> None:
        log.info("call %s: application error %s: %s", self.call.call_id, code, message)
        self.errors.append(ApplicationError(code, message))
        await self.call.record_error(code, message)

    async def _fail(self, code: str, message: str, step: _Fetch | None) -> _Fetch:
        """Record the error; answer the fallback fetch, or apologise and end the call."""
        await self._record_error(code, message)
        if self.fallback_url is not None and not self._fallback_used and not self.call.ended:
            self._fallback_used = True
            fields = dict(step.fields) if step is not None else {}
            fields |= {"ErrorCode": code, "ErrorUrl": step.url if step is not None else ""}
            return _Fetch(self.fallback_url, self.fallback_method, fields)
        if not self.call.ended:
            await self._answer()
            await self.call.say(
                self.apology,
                language=self.apology_language,
                voice=None,
                loop=0,
                interruptible=False,
            )
            await self.call.hangup("application_error")
        raise _Stop

    def _notify(self, sending: Coroutine[Any, Any, bool]) -> None:
        task = asyncio.get_running_loop().create_task(sending)
        self._notifications.add(task)
        task.add_done_callback(self._notifications.discard)

    async def _finish_notifications(self) -> None:
        """Let notifications in flight reach the app (each is bounded by its timeout)."""
        if self._notifications:
            await asyncio.gather(*self._notifications, return_exceptions=True)
