"""The voice-action document (SPEC §3): its schema, and a parser with precise messages.

An app answers ``{"actions": [{"say": {...}}, {"record": {...}}, ...]}``. Each action is
an object with exactly one key, the verb; its value holds the verb's parameters, spelled
as in SPEC §3 (camelCase: ``numDigits``, ``finishOnKey``, ``maxLength`` …). The models
below carry every parameter with its default; their Python attributes are snake_case.

:func:`parse_action_document` turns the app's raw answer into a list of actions or raises
:class:`ActionDocumentError` naming every problem with its path, e.g.
``actions[2].record.timeout: must be an integer ≥ 0``. A document with any problem is
refused whole: nothing of it runs.

Decisions where SPEC §3 is silent (what a Twilio or Africa's Talking developer expects,
tightened where a silent mistake would cost a call):

* A bare JSON array is accepted as the action list (the shape some platforms use); an
  object must have exactly the key ``actions``.
* An unknown parameter inside a verb is an error, with a "did you mean" hint: a typo such
  as ``finishOnkey`` must not silently fall back to a default.
* Types are strict JSON types: ``"10"`` is not an integer and ``"true"`` is not a boolean.
  An integral float such as ``10.0`` counts as an integer. ``null`` stands for "not
  given" where the default is none (``action``, ``voice``, ``callerId`` …), and is an error
  where the default is a value (``loop: null``). ``method`` is ``POST`` or
  ``GET`` in any letter case.
* ``dial`` targets: ``number`` is E.164 (``+254722000000``), ``sip`` a ``sip:`` or
  ``sips:`` URI; either may be a list of up to 10 targets, rung in parallel.
* ``conference.statusEvents`` is a list or a space-separated string of
  ``start end join leave mute unmute``; left out, every event is posted.
* ``conference.waitUrl`` names WAV or MP3 audio, played on a loop until the room starts.
* ``record.timeout`` 0 turns the silence timeout off; ``transcribeCallback`` implies
  ``transcribe`` (see :attr:`Record.wants_transcription`).
* ``pause.length`` defaults to 1 second.
* ``stream.url`` is a ``ws://`` or ``wss://`` URL; ``parameters`` is an object of up to 20
  string values (sent in the ``start`` message); ``bidirectional: true`` is the blocking,
  two-way form (Twilio's ``<Connect><Stream>``), otherwise the stream forks and the next
  action runs at once (``<Start><Stream>``).
* Queues (see docs/verbs/queues.md): ``enqueue.name`` and ``dequeue.name`` are queue
  names like conference rooms' (1 to 128 letters, digits, ``._:@+-``); ``dial`` takes a
  ``queue`` target instead of ``number`` or ``sip`` (Twilio's ``<Dial><Queue>``), and
  ``number: "queue:NAME"`` is read the same way. ``leave`` is only meaningful in a
  ``waitUrl`` document (elsewhere it does nothing).
* The limits: 64 KB for the raw document and 100 actions at its top level (the actions
  nested in ``getDigits`` are within the 64 KB).
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Callable
from typing import Annotated, Any, ClassVar, Final, Literal, cast
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, ValidationError, model_validator
from pydantic_core import PydanticCustomError

__all__ = [
    "DIAL_TARGETS_LIMIT",
    "MAX_ACTIONS",
    "MAX_DOCUMENT_BYTES",
    "NESTABLE_VERBS",
    "STATUS_EVENTS",
    "VERBS",
    "VERB_MODELS",
    "Action",
    "ActionDocumentError",
    "Conference",
    "Dequeue",
    "Dial",
    "Enqueue",
    "Gather",
    "GetDigits",
    "Hangup",
    "Leave",
    "NestedAction",
    "NotJsonError",
    "Pause",
    "Play",
    "Record",
    "Redirect",
    "Reject",
    "Say",
    "Stream",
    "parse_action_document",
    "parse_actions",
]

MAX_DOCUMENT_BYTES: Final = 64 * 1024
MAX_ACTIONS: Final = 100
DIAL_TARGETS_LIMIT: Final = 10
STATUS_EVENTS: Final = ("start", "end", "join", "leave", "mute", "unmute")

_MAX_URL_LENGTH: Final = 2048
_MAX_LOOP: Final = 100
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_KEYS = frozenset("0123456789*#")
_CONFERENCE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._:@+-]{0,127}")
_STREAM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
_MAX_STREAM_PARAMETERS: Final = 20


class ActionDocumentError(ValueError):
    """An action document that cannot run; ``problems`` lists each one with its path."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class NotJsonError(ActionDocumentError):
    """The app's answer is not JSON at all (SPEC §3 counts it apart from invalid documents)."""


# --- parameter types: each validator owns its whole message -------------------------------


def _problem(message: str) -> PydanticCustomError:
    return PydanticCustomError("sautikit", message)


def _describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _show(value: object) -> str:
    """A string value quoted and cut short for a message; other values by their type."""
    if not isinstance(value, str):
        return _describe(value)
    shown = json.dumps(value, ensure_ascii=False)
    return shown if len(shown) <= 60 else shown[:56] + '…"'


def _integer(minimum: int, maximum: int | None = None) -> PlainValidator:
    bounds = f"from {minimum} to {maximum}" if maximum is not None else f"≥ {minimum}"

    def check(value: object) -> int:
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise _problem(f"must be an integer {bounds}, got {_describe(value)}")
        if value < minimum or (maximum is not None and value > maximum):
            raise _problem(f"must be an integer {bounds}, got {value}")
        return value

    return PlainValidator(
        check, json_schema_input_type=Annotated[int, Field(ge=minimum, le=maximum)]
    )


def _check_boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise _problem(f"must be true or false, got {_describe(value)}")
    return value


def _choice(*choices: str) -> PlainValidator:
    listed = ", ".join(f'"{choice}"' for choice in choices)

    def check(value: object) -> str:
        if value not in choices:
            raise _problem(f"must be one of {listed}, got {_show(value)}")
        return str(value)

    return PlainValidator(check, json_schema_input_type=Literal[choices])


def _string(check: Callable[[str], str | None], *, what: str, schema: Any = str) -> PlainValidator:
    """A string accepted when ``check`` answers None; otherwise its answer is the reason.
    ``schema`` is the type the document's JSON Schema shows (a ``str`` with constraints)."""

    def validate(value: object) -> str:
        if not isinstance(value, str):
            raise _problem(f"must be {what}, got {_describe(value)}")
        reason = check(value)
        if reason is not None:
            raise _problem(f"must be {what}{reason}")
        return value

    return PlainValidator(validate, json_schema_input_type=schema)


def _url_problem(value: str) -> str | None:
    if len(value) > _MAX_URL_LENGTH:
        return f", got {len(value)} characters (at most {_MAX_URL_LENGTH})"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return f", got {_show(value)}"
    if parts.scheme not in ("http", "https") or not parts.hostname or re.search(r"\s", value):
        return f", got {_show(value)}"
    return None


def _websocket_url_problem(value: str) -> str | None:
    if len(value) > _MAX_URL_LENGTH:
        return f", got {len(value)} characters (at most {_MAX_URL_LENGTH})"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return f", got {_show(value)}"
    if parts.scheme not in ("ws", "wss") or not parts.hostname or re.search(r"\s", value):
        return f", got {_show(value)}"
    return None


def _check_parameters(value: object) -> dict[str, str]:
    what = f"an object of at most {_MAX_STREAM_PARAMETERS} string values"
    if not isinstance(value, dict):
        raise _problem(f"must be {what}, got {_describe(value)}")
    if len(value) > _MAX_STREAM_PARAMETERS:
        raise _problem(f"must be {what}, got {len(value)}")
    for key, item in value.items():
        if not isinstance(item, str) or len(key) > 256 or len(item) > 1024:
            raise _problem(f"must be {what} (each at most 1024 characters), got {key!r}")
    return dict(value)


def _language_problem(value: str) -> str | None:
    return None if _LANGUAGE.fullmatch(value) else f", got {_show(value)}"


def _keys_problem(value: str) -> str | None:
    bad = sorted(set(value) - _KEYS)
    return f", got {_show(bad[0])}" if bad else None


def _not_blank(value: str) -> str | None:
    return ", got a blank string" if not value.strip() else None


def _caller_id_problem(value: str) -> str | None:
    return None if value.strip() and len(value) <= 256 else f", got {_show(value)}"


def _conference_name_problem(value: str) -> str | None:
    return None if _CONFERENCE_NAME.fullmatch(value) else f", got {_show(value)}"


def _check_method(value: object) -> str:
    if not isinstance(value, str) or value.upper() not in ("POST", "GET"):
        raise _problem(f'must be "POST" or "GET", got {_show(value)}')
    return value.upper()


def _targets(kind: str, pattern: re.Pattern[str], example: str) -> PlainValidator:
    what = f"{example} or a list of 1 to {DIAL_TARGETS_LIMIT} of them"

    def check(value: object) -> tuple[str, ...]:
        items = value if isinstance(value, list) else [value]
        if not items or len(items) > DIAL_TARGETS_LIMIT:
            raise _problem(f"must be {what}, got a list of {len(items)}")
        for index, item in enumerate(items):
            if not isinstance(item, str) or not pattern.fullmatch(item):
                where = f" (item {index})" if isinstance(value, list) else ""
                raise _problem(f"must be {what}{where}, got {_show(item)}")
        if len(set(items)) != len(items):
            raise _problem(f"lists the same {kind} twice")
        return tuple(items)

    one = Annotated[str, Field(pattern=f"^{pattern.pattern}$")]
    schema = one | Annotated[list[one], Field(min_length=1, max_length=DIAL_TARGETS_LIMIT)]
    return PlainValidator(check, json_schema_input_type=schema)


def _check_status_events(value: object) -> tuple[str, ...]:
    items = value.split() if isinstance(value, str) else value
    what = f"a list of {', '.join(STATUS_EVENTS)}"
    if not isinstance(items, list):
        raise _problem(f"must be {what}, got {_describe(value)}")
    for item in items:
        if item not in STATUS_EVENTS:
            raise _problem(f"must be {what}, got {_show(item)}")
    return tuple(dict.fromkeys(items))


_UrlSchema = Annotated[
    str, Field(max_length=_MAX_URL_LENGTH, pattern=r"^[Hh][Tt][Tt][Pp][Ss]?://\S+$")
]
Url = Annotated[str, _string(_url_problem, what="an absolute http(s) URL", schema=_UrlSchema)]
Text = Annotated[
    str, _string(_not_blank, what="a non-empty string", schema=Annotated[str, Field(min_length=1)])
]
Language = Annotated[
    str,
    _string(
        _language_problem,
        what='a BCP-47 language tag like "en-US"',
        schema=Annotated[str, Field(pattern=f"^{_LANGUAGE.pattern}$")],
    ),
]
Keys = Annotated[
    str,
    _string(
        _keys_problem,
        what="DTMF keys from 0123456789*#",
        schema=Annotated[str, Field(pattern=r"^[0-9*#]*$")],
    ),
]
Boolean = Annotated[bool, PlainValidator(_check_boolean, json_schema_input_type=bool)]
Method = Annotated[
    Literal["POST", "GET"],
    PlainValidator(_check_method, json_schema_input_type=Literal["POST", "GET", "post", "get"]),
]
Loop = Annotated[int, _integer(0, _MAX_LOOP)]


class _Verb(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    verb: ClassVar[str]


class Say(_Verb):
    """Speak ``text``; ``loop`` 0 or 1 plays it once, n plays it n times."""

    verb: ClassVar[str] = "say"
    text: Text
    language: Language = "en-US"
    voice: Annotated[str, _string(_not_blank, what="a voice name")] | None = None
    loop: Loop = 0


class Play(_Verb):
    """Play WAV or MP3 audio from ``url`` (on the workspace's play-URL allow-list)."""

    verb: ClassVar[str] = "play"
    url: Url
    loop: Loop = 0


NestedAction = Say | Play


def _check_input(value: object) -> tuple[str, ...]:
    items = value.split() if isinstance(value, str) else value
    what = 'a list of "dtmf" and "speech"'
    if not isinstance(items, list) or not items:
        raise _problem(f"must be {what}, got {_describe(value)}")
    for item in items:
        if item not in ("dtmf", "speech"):
            raise _problem(f"must be {what}, got {_show(item)}")
    return tuple(dict.fromkeys(items))


def _check_speech_timeout(value: object) -> float | None:
    if value == "auto":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 60:
        raise _problem(f'must be "auto" or seconds from 1 to 60, got {_show(value)}')
    return float(value)


def _check_hints(value: object) -> tuple[str, ...]:
    items = [part.strip() for part in value.split(",")] if isinstance(value, str) else value
    what = "a list of up to 100 words or phrases (or a comma-separated string)"
    if not isinstance(items, list) or len(items) > 100:
        raise _problem(f"must be {what}, got {_describe(value)}")
    for item in items:
        if not isinstance(item, str) or len(item) > 100:
            raise _problem(f"must be {what}, got {_show(item)}")
    return tuple(item for item in items if item)


_InputSchema = list[Literal["dtmf", "speech"]] | str
_SpeechTimeoutSchema = Literal["auto"] | Annotated[float, Field(gt=0, le=60)] | None
_HintsSchema = Annotated[list[Annotated[str, Field(max_length=100)]], Field(max_length=100)] | str
_StatusEventsSchema = list[Literal["start", "end", "join", "leave", "mute", "unmute"]] | str
_ParametersSchema = Annotated[
    dict[str, Annotated[str, Field(max_length=1024)]],
    Field(max_length=_MAX_STREAM_PARAMETERS),
]


class GetDigits(_Verb):
    """Collect DTMF digits (and, with ``input`` speech, what the caller says) while
    ``nested`` prompts play; a key press interrupts them."""

    verb: ClassVar[str] = "getDigits"
    num_digits: Annotated[int, _integer(0, 64)] = Field(0, alias="numDigits")
    finish_on_key: Keys = Field("#", alias="finishOnKey")
    timeout: Annotated[int, _integer(1, 600)] = 5
    action: Url | None = None
    method: Method = "POST"
    nested: tuple[NestedAction, ...] = ()
    input: Annotated[
        tuple[str, ...],
        PlainValidator(_check_input, json_schema_input_type=_InputSchema),
    ] = ("dtmf",)
    speech_timeout: Annotated[
        float | None,
        PlainValidator(_check_speech_timeout, json_schema_input_type=_SpeechTimeoutSchema),
    ] = Field(None, alias="speechTimeout")
    hints: Annotated[
        tuple[str, ...], PlainValidator(_check_hints, json_schema_input_type=_HintsSchema)
    ] = ()
    language: Language = "en-US"
    partial_result_callback: Url | None = Field(None, alias="partialResultCallback")

    @property
    def wants_speech(self) -> bool:
        return "speech" in self.input

    @property
    def wants_digits(self) -> bool:
        return "dtmf" in self.input


class Gather(GetDigits):
    """``getDigits`` under Twilio's name."""

    verb: ClassVar[str] = "gather"


QueueName = Annotated[
    str,
    _string(_conference_name_problem, what="a queue name of 1 to 128 letters, digits, ._:@+-"),
]


class Dial(_Verb):
    """Bridge the caller to ``number`` or ``sip`` targets; a list rings them in parallel."""

    verb: ClassVar[str] = "dial"
    number: Annotated[tuple[str, ...], _targets("number", _E164, "an E.164 number")] | None = None
    sip: (
        Annotated[tuple[str, ...], _targets("SIP URI", re.compile(r"sips?:\S+"), "a sip: URI")]
        | None
    ) = None
    caller_id: Annotated[str, _string(_caller_id_problem, what="a phone number")] | None = Field(
        None, alias="callerId"
    )
    timeout: Annotated[int, _integer(1, 600)] = 30
    record: Annotated[
        Literal["do-not-record", "record-from-answer", "record-from-ringing"],
        _choice("do-not-record", "record-from-answer", "record-from-ringing"),
    ] = "do-not-record"
    recording_channels: Annotated[Literal["mono", "dual"], _choice("mono", "dual")] = Field(
        "dual", alias="recordingChannels"
    )
    action: Url | None = None
    method: Method = "POST"
    hangup_on_star: Boolean = Field(False, alias="hangupOnStar")
    queue: QueueName | None = None

    @model_validator(mode="before")
    @classmethod
    def _queue_as_number(cls, data: object) -> object:
        """``number: "queue:NAME"`` is the ``queue`` target, as other platforms spell it."""
        if isinstance(data, dict):
            number = data.get("number")
            if isinstance(number, str) and number.startswith("queue:") and "queue" not in data:
                data = {**data, "queue": number.removeprefix("queue:")}
                del data["number"]
        return data

    @model_validator(mode="after")
    def _exactly_one_target(self) -> Dial:
        given = [self.number is not None, self.sip is not None, self.queue is not None]
        if sum(given) != 1:
            got = {0: "neither", 2: "two of them", 3: "all three"}[sum(given)]
            raise _problem(f"needs exactly one of number, sip or queue, got {got}")
        return self


class Conference(_Verb):
    """Join the workspace's room ``name``."""

    verb: ClassVar[str] = "conference"
    name: Annotated[
        str,
        _string(
            _conference_name_problem,
            what="a room name of 1 to 128 letters, digits, ._:@+-",
            schema=Annotated[str, Field(pattern=f"^{_CONFERENCE_NAME.pattern}$")],
        ),
    ]
    record: Boolean = False
    beep: Boolean = True
    muted: Boolean = False
    start_on_enter: Boolean = Field(True, alias="startOnEnter")
    end_on_exit: Boolean = Field(False, alias="endOnExit")
    max_participants: Annotated[int, _integer(2, 250)] = Field(250, alias="maxParticipants")
    wait_url: Url | None = Field(None, alias="waitUrl")
    status_events_callback_url: Url | None = Field(None, alias="statusEventsCallbackUrl")
    status_events: Annotated[
        tuple[str, ...],
        PlainValidator(_check_status_events, json_schema_input_type=_StatusEventsSchema),
    ] = Field(STATUS_EVENTS, alias="statusEvents")


class Record(_Verb):
    """Record the caller (voicemail style) until silence, ``maxLength``, a key or hangup."""

    verb: ClassVar[str] = "record"
    action: Url | None = None
    method: Method = "POST"
    timeout: Annotated[int, _integer(0, 3600)] = 5
    max_length: Annotated[int, _integer(1, 14400)] = Field(3600, alias="maxLength")
    finish_on_key: Keys = Field("1234567890*#", alias="finishOnKey")
    play_beep: Boolean = Field(True, alias="playBeep")
    trim: Annotated[
        Literal["trim-silence", "do-not-trim"], _choice("trim-silence", "do-not-trim")
    ] = "trim-silence"
    transcribe: Boolean = False
    transcribe_callback: Url | None = Field(None, alias="transcribeCallback")

    @property
    def wants_transcription(self) -> bool:
        """``transcribe``, or a ``transcribeCallback`` (which implies it, as on Twilio)."""
        return self.transcribe or self.transcribe_callback is not None


class Redirect(_Verb):
    """Fetch new actions from ``url`` and continue with them."""

    verb: ClassVar[str] = "redirect"
    url: Url
    method: Method = "POST"


class Reject(_Verb):
    """Refuse a call that was not answered yet (603 ``rejected`` or 486 ``busy``)."""

    verb: ClassVar[str] = "reject"
    reason: Annotated[Literal["rejected", "busy"], _choice("rejected", "busy")] = "rejected"


class Hangup(_Verb):
    """End the call."""

    verb: ClassVar[str] = "hangup"


class Pause(_Verb):
    """Wait ``length`` seconds in silence."""

    verb: ClassVar[str] = "pause"
    length: Annotated[int, _integer(1, 3600)] = 1


class Stream(_Verb):
    """Send the call's audio live to the WebSocket at ``url`` (and, bidirectional, back)."""

    verb: ClassVar[str] = "stream"
    url: Annotated[
        str,
        _string(
            _websocket_url_problem,
            what="a ws:// or wss:// URL",
            schema=Annotated[
                str, Field(max_length=_MAX_URL_LENGTH, pattern=r"^[Ww][Ss][Ss]?://\S+$")
            ],
        ),
    ]
    track: Annotated[
        Literal["inbound", "outbound", "both"], _choice("inbound", "outbound", "both")
    ] = "inbound"
    bidirectional: Boolean = False
    subprotocol: Annotated[Literal["audio.drachtio.org"], _choice("audio.drachtio.org")] | None = (
        None
    )
    name: (
        Annotated[
            str,
            _string(
                lambda value: None if _STREAM_NAME.fullmatch(value) else f", got {_show(value)}",
                what="a name of 1 to 64 letters, digits, ._:-",
            ),
        ]
        | None
    ) = None
    parameters: Annotated[
        dict[str, str],
        PlainValidator(_check_parameters, json_schema_input_type=_ParametersSchema),
    ] = Field(default_factory=dict)
    status_callback: Url | None = Field(None, alias="statusCallback")
    status_callback_method: Method = Field("POST", alias="statusCallbackMethod")
    action: Url | None = None
    method: Method = "POST"


class Enqueue(_Verb):
    """Put the caller in the workspace's queue ``name`` until an agent takes them."""

    verb: ClassVar[str] = "enqueue"
    name: QueueName
    wait_url: Url | None = Field(None, alias="waitUrl")
    wait_url_method: Method = Field("POST", alias="waitUrlMethod")
    action: Url | None = None
    method: Method = "POST"
    max_size: Annotated[int, _integer(1, 5000)] | None = Field(None, alias="maxSize")
    announce_position: Boolean = Field(False, alias="announcePosition")
    announce_wait_time: Boolean = Field(False, alias="announceWaitTime")
    announce_every: Annotated[int, _integer(10, 600)] = Field(30, alias="announceEvery")
    language: Language = "en-US"


class Dequeue(_Verb):
    """Bridge this (agent's) call with the caller who has waited longest in ``name``."""

    verb: ClassVar[str] = "dequeue"
    name: QueueName
    timeout: Annotated[int, _integer(0, 3600)] = 30
    action: Url | None = None
    method: Method = "POST"


class Leave(_Verb):
    """In a ``waitUrl`` document: leave the queue; the caller goes on after ``enqueue``."""

    verb: ClassVar[str] = "leave"


Action = (
    Say
    | Play
    | GetDigits
    | Dial
    | Conference
    | Record
    | Redirect
    | Reject
    | Hangup
    | Pause
    | Stream
    | Enqueue
    | Dequeue
    | Leave
)

_MODELS: Final[dict[str, type[_Verb]]] = {
    model.verb: model
    for model in (
        Say,
        Play,
        GetDigits,
        Dial,
        Conference,
        Record,
        Redirect,
        Reject,
        Hangup,
        Pause,
        Stream,
        Gather,
        Enqueue,
        Dequeue,
        Leave,
    )
}
VERB_MODELS: Final = _MODELS
"""Each verb's parameter model, by verb (voice.action_schema builds the JSON Schema)."""
VERBS: Final = tuple(_MODELS)
_NESTABLE: Final = ("say", "play")
NESTABLE_VERBS: Final = _NESTABLE
"""The verbs `getDigits` and `gather` may nest."""


# --- the parser ---------------------------------------------------------------------------


def _parameters(model: type[_Verb]) -> list[str]:
    return [field.alias or name for name, field in model.model_fields.items()]


def _field_path(loc: tuple[int | str, ...]) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)


def _explain(error: Any, model: type[_Verb], path: str) -> str:
    where = path + _field_path(tuple(error["loc"]))
    if error["type"] == "sautikit":
        return f"{where}: {error['msg']}"
    if error["type"] == "missing":
        return f"{where}: is required"
    if error["type"] == "extra_forbidden":
        name = str(error["loc"][-1])
        known = _parameters(model)
        hint = difflib.get_close_matches(name, known, n=1)
        if hint:
            return f'{where}: unknown parameter (did you mean "{hint[0]}"?)'
        takes = ", ".join(known) or "no parameters"
        return f"{where}: unknown parameter; {model.verb} takes {takes}"
    return f"{where}: {error['msg']}"


def _parse_action(
    item: object, path: str, allowed: tuple[str, ...], problems: list[str]
) -> Action | None:
    if not isinstance(item, dict):
        problems.append(f"{path}: an action is an object with one verb, got {_describe(item)}")
        return None
    if len(item) != 1:
        got = f"{len(item)} ({', '.join(map(str, item))})" if item else "none"
        problems.append(f"{path}: an action has exactly one verb, got {got}")
        return None
    ((verb, params),) = item.items()
    model = _MODELS.get(verb)
    if model is None:
        hint = difflib.get_close_matches(verb, VERBS, n=1)
        suggestion = f' (did you mean "{hint[0]}"?)' if hint else ""
        problems.append(f"{path}: unknown verb {_show(verb)}{suggestion}")
        return None
    if verb not in allowed:
        problems.append(f"{path}: only {' and '.join(allowed)} may be nested here, got {verb}")
        return None
    path = f"{path}.{verb}"
    if not isinstance(params, dict):
        problems.append(f"{path}: parameters must be an object, got {_describe(params)}")
        return None
    if issubclass(model, GetDigits) and "nested" in params:
        nested = params["nested"]
        if not isinstance(nested, list):
            problems.append(f"{path}.nested: must be a list of say and play actions")
            return None
        found: list[Action] = []
        for index, child in enumerate(nested):
            parsed = _parse_action(child, f"{path}.nested[{index}]", _NESTABLE, problems)
            if parsed is not None:
                found.append(parsed)
        if len(found) != len(nested):
            return None
        params = {**params, "nested": tuple(found)}
    try:
        return cast(Action, model.model_validate(params))
    except ValidationError as exc:
        problems.extend(_explain(error, model, path) for error in exc.errors())
        return None


def parse_actions(document: object) -> list[Action]:
    """Validate a decoded JSON document: ``{"actions": [...]}`` or a bare list of actions."""
    if isinstance(document, dict):
        extra = sorted(set(document) - {"actions"})
        if extra:
            raise ActionDocumentError(
                [f'document: unknown key {_show(extra[0])}; the only key is "actions"']
            )
        if "actions" not in document:
            raise ActionDocumentError(['document: missing "actions"'])
        items = document["actions"]
        if not isinstance(items, list):
            raise ActionDocumentError([f"actions: must be a list, got {_describe(items)}"])
    elif isinstance(document, list):
        items = document
    else:
        raise ActionDocumentError(
            [f'document: must be an object with "actions", got {_describe(document)}']
        )
    if len(items) > MAX_ACTIONS:
        raise ActionDocumentError(
            [f"actions: {len(items)} actions is over the limit of {MAX_ACTIONS}"]
        )
    problems: list[str] = []
    actions = [
        _parse_action(item, f"actions[{i}]", VERBS, problems) for i, item in enumerate(items)
    ]
    if problems:
        raise ActionDocumentError(problems)
    return [action for action in actions if action is not None]


def parse_action_document(raw: bytes) -> list[Action]:
    """Parse the app's raw answer; raises NotJsonError or ActionDocumentError."""
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise ActionDocumentError(
            [f"document: {len(raw)} bytes is over the limit of {MAX_DOCUMENT_BYTES} (64 KB)"]
        )
    try:
        document = json.loads(raw)
    except RecursionError:
        raise ActionDocumentError(["document: nested too deeply"]) from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError among them
        raise NotJsonError([f"document: not JSON ({exc})"]) from None
    return parse_actions(document)
