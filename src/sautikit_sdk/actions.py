"""Builders for voice-action documents (SPEC §3), for apps that answer Sautikit's webhooks.

Each builder returns the plain JSON-ready ``dict`` of one action, with the verb's
parameters spelled as the document wants them (camelCase: ``finishOnKey``, ``maxLength``)
while the Python arguments are snake_case. Only the arguments given are emitted: a
parameter left out keeps the server's default, so a document never pins a default the
server may later improve. ``response`` wraps actions into the document an app answers::

    from sautikit_sdk.actions import record, response, say

    response(
        say("Please leave a message after the tone.", language="en-US"),
        record(action="https://app.example.com/voicemail/recording", finish_on_key="#"),
    )
    # {"actions": [{"say": {...}}, {"record": {...}}]}

The builders check nothing themselves; the server validates the whole document against
the action document's JSON Schema (``GET /v1/schemas/action-document.json``), which an app's tests
may use as well.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

__all__ = [
    "Action",
    "conference",
    "dequeue",
    "dial",
    "enqueue",
    "gather",
    "get_digits",
    "hangup",
    "leave",
    "pause",
    "play",
    "record",
    "redirect",
    "reject",
    "response",
    "say",
    "stream",
]

Action = dict[str, dict[str, Any]]
"""One action: ``{verb: {parameter: value}}``."""
Method = Literal["POST", "GET"]


def _action(verb: str, **parameters: Any) -> Action:
    """``{verb: {name: value}}`` for the parameters that were given (not None)."""
    return {verb: {name: value for name, value in parameters.items() if value is not None}}


def _targets(value: str | Sequence[str] | None) -> str | list[str] | None:
    return value if value is None or isinstance(value, str) else list(value)


def response(*actions: Action) -> dict[str, list[Action]]:
    """The document an app answers: ``{"actions": [...]}``, run top to bottom."""
    return {"actions": list(actions)}


def say(
    text: str, *, language: str | None = None, voice: str | None = None, loop: int | None = None
) -> Action:
    """Speak ``text`` (``language`` BCP-47, default ``en-US``; ``sw`` for Swahili)."""
    return _action("say", text=text, language=language, voice=voice, loop=loop)


def play(url: str, *, loop: int | None = None) -> Action:
    """Play WAV or MP3 audio from ``url`` (its host must pass the play-URL allow-list)."""
    return _action("play", url=url, loop=loop)


def get_digits(
    *,
    nested: Sequence[Action] | None = None,
    num_digits: int | None = None,
    finish_on_key: str | None = None,
    timeout: int | None = None,
    action: str | None = None,
    method: Method | None = None,
    input: Sequence[Literal["dtmf", "speech"]] | None = None,
    speech_timeout: int | Literal["auto"] | None = None,
    hints: Sequence[str] | None = None,
    language: str | None = None,
    partial_result_callback: str | None = None,
    verb: Literal["getDigits", "gather"] = "getDigits",
) -> Action:
    """Collect keys (and, with ``input`` speech, what the caller says) while the ``nested``
    say/play prompts play; posts ``Digits`` or ``SpeechResult`` and ``Confidence``."""
    return _action(
        verb,
        numDigits=num_digits,
        finishOnKey=finish_on_key,
        timeout=timeout,
        action=action,
        method=method,
        nested=None if nested is None else list(nested),
        input=None if input is None else list(input),
        speechTimeout=speech_timeout,
        hints=None if hints is None else list(hints),
        language=language,
        partialResultCallback=partial_result_callback,
    )


def gather(**parameters: Any) -> Action:
    """:func:`get_digits` under Twilio's name (the same parameters)."""
    return get_digits(**parameters, verb="gather")


def dial(
    *,
    number: str | Sequence[str] | None = None,
    sip: str | Sequence[str] | None = None,
    caller_id: str | None = None,
    timeout: int | None = None,
    record: Literal["do-not-record", "record-from-answer", "record-from-ringing"] | None = None,
    recording_channels: Literal["mono", "dual"] | None = None,
    action: str | None = None,
    method: Method | None = None,
    hangup_on_star: bool | None = None,
    queue: str | None = None,
) -> Action:
    """Bridge the caller to ``number`` or ``sip`` (one target, or a list rung in parallel),
    or to the caller who has waited longest in ``queue``."""
    return _action(
        "dial",
        number=_targets(number),
        sip=_targets(sip),
        queue=queue,
        callerId=caller_id,
        timeout=timeout,
        record=record,
        recordingChannels=recording_channels,
        action=action,
        method=method,
        hangupOnStar=hangup_on_star,
    )


def conference(
    name: str,
    *,
    record: bool | None = None,
    beep: bool | None = None,
    muted: bool | None = None,
    start_on_enter: bool | None = None,
    end_on_exit: bool | None = None,
    max_participants: int | None = None,
    wait_url: str | None = None,
    status_events_callback_url: str | None = None,
    status_events: Sequence[str] | None = None,
) -> Action:
    """Join the workspace's conference room ``name``."""
    return _action(
        "conference",
        name=name,
        record=record,
        beep=beep,
        muted=muted,
        startOnEnter=start_on_enter,
        endOnExit=end_on_exit,
        maxParticipants=max_participants,
        waitUrl=wait_url,
        statusEventsCallbackUrl=status_events_callback_url,
        statusEvents=None if status_events is None else list(status_events),
    )


def record(
    *,
    action: str | None = None,
    method: Method | None = None,
    timeout: int | None = None,
    max_length: int | None = None,
    finish_on_key: str | None = None,
    play_beep: bool | None = None,
    trim: Literal["trim-silence", "do-not-trim"] | None = None,
    transcribe: bool | None = None,
    transcribe_callback: str | None = None,
) -> Action:
    """Record the caller; the recording's details are posted to ``action`` when it ends."""
    return _action(
        "record",
        action=action,
        method=method,
        timeout=timeout,
        maxLength=max_length,
        finishOnKey=finish_on_key,
        playBeep=play_beep,
        trim=trim,
        transcribe=transcribe,
        transcribeCallback=transcribe_callback,
    )


def redirect(url: str, *, method: Method | None = None) -> Action:
    """Fetch new actions from ``url`` and continue with them."""
    return _action("redirect", url=url, method=method)


def reject(reason: Literal["rejected", "busy"] | None = None) -> Action:
    """Refuse a call that was not answered yet; nothing is billed."""
    return _action("reject", reason=reason)


def enqueue(
    name: str,
    *,
    wait_url: str | None = None,
    wait_url_method: Method | None = None,
    action: str | None = None,
    method: Method | None = None,
    max_size: int | None = None,
    announce_position: bool | None = None,
    announce_wait_time: bool | None = None,
    announce_every: int | None = None,
    language: str | None = None,
) -> Action:
    """Put the caller in the workspace's queue ``name`` until an agent takes them."""
    return _action(
        "enqueue",
        name=name,
        waitUrl=wait_url,
        waitUrlMethod=wait_url_method,
        action=action,
        method=method,
        maxSize=max_size,
        announcePosition=announce_position,
        announceWaitTime=announce_wait_time,
        announceEvery=announce_every,
        language=language,
    )


def dequeue(
    name: str,
    *,
    timeout: int | None = None,
    action: str | None = None,
    method: Method | None = None,
) -> Action:
    """Bridge this (agent's) call with the caller who has waited longest in ``name``."""
    return _action("dequeue", name=name, timeout=timeout, action=action, method=method)


def leave() -> Action:
    """In a ``waitUrl`` document: leave the queue (the caller goes on after ``enqueue``)."""
    return _action("leave")


def hangup() -> Action:
    """End the call."""
    return _action("hangup")


def pause(length: int | None = None) -> Action:
    """Wait ``length`` seconds in silence (default 1)."""
    return _action("pause", length=length)


def stream(
    url: str,
    *,
    track: Literal["inbound", "outbound", "both"] | None = None,
    bidirectional: bool | None = None,
    subprotocol: Literal["audio.drachtio.org"] | None = None,
    name: str | None = None,
    parameters: dict[str, str] | None = None,
    status_callback: str | None = None,
    status_callback_method: Method | None = None,
    action: str | None = None,
    method: Method | None = None,
) -> Action:
    """Send the call's audio live to the WebSocket at ``url``; ``bidirectional`` also plays
    what the app sends back, and waits until the stream ends."""
    return _action(
        "stream",
        url=url,
        track=track,
        bidirectional=bidirectional,
        subprotocol=subprotocol,
        name=name,
        parameters=parameters,
        statusCallback=status_callback,
        statusCallbackMethod=status_callback_method,
        action=action,
        method=method,
    )
