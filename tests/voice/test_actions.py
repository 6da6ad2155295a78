"""The action document: what apps write parses, and every mistake is named with its path."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sautikit.voice.actions import (
    MAX_ACTIONS,
    MAX_DOCUMENT_BYTES,
    STATUS_EVENTS,
    ActionDocumentError,
    Conference,
    Dial,
    GetDigits,
    Hangup,
    NotJsonError,
    Pause,
    Play,
    Record,
    Redirect,
    Reject,
    Say,
    parse_action_document,
)

FIXTURES = Path(__file__).parent / "fixtures"


def parse(document: Any) -> list[Any]:
    return parse_action_document(json.dumps(document).encode())


def test_seed_voicemail_prompt_parses_with_its_values() -> None:
    say, record = parse_action_document((FIXTURES / "seed_voicemail_prompt.json").read_bytes())
    assert isinstance(say, Say) and say.language == "en-US" and say.text.startswith("You have")
    assert isinstance(record, Record)
    assert record.action == "https://yourapp.example.com/voicemail/recording"
    assert (record.method, record.timeout, record.max_length) == ("POST", 10, 120)
    assert (record.finish_on_key, record.transcribe) == ("#", True)
    assert record.transcribe_callback == "https://yourapp.example.com/voicemail/transcript"
    assert record.play_beep is True and record.trim == "trim-silence"


def test_seed_dial_with_recording_parses() -> None:
    actions = parse_action_document((FIXTURES / "seed_connect_and_record.json").read_bytes())
    dial = actions[1]
    assert isinstance(dial, Dial)
    assert dial.number == ("+254720000001",) and dial.sip is None
    assert dial.record == "record-from-answer" and dial.caller_id == "+254700000001"
    assert dial.recording_channels == "dual" and dial.timeout == 30


def test_every_parameter_of_every_verb_is_read() -> None:
    actions = parse_action_document((FIXTURES / "every_verb.json").read_bytes())
    say, play, digits, dial, room, record, redirect, reject, hangup, pause = actions
    assert say == Say.model_validate(
        {"text": "Hello", "language": "sw", "voice": "female", "loop": 3}
    )
    assert isinstance(play, Play)
    assert (play.url, play.loop) == ("http://media.example.com/a.wav", 2)
    assert isinstance(digits, GetDigits)
    assert (digits.num_digits, digits.finish_on_key, digits.timeout) == (4, "*", 9)
    assert digits.method == "GET" and isinstance(digits.nested[0], Play)
    assert isinstance(dial, Dial)
    assert dial.sip == ("sip:alice@pbx.example.com", "sips:bob@pbx.example.com")
    assert (dial.timeout, dial.record, dial.recording_channels) == (
        20,
        "record-from-ringing",
        "mono",
    )
    assert dial.hangup_on_star is True and dial.method == "GET"
    assert isinstance(room, Conference)
    assert (room.record, room.beep, room.muted) == (True, False, True)
    assert (room.start_on_enter, room.end_on_exit, room.max_participants) == (False, True, 10)
    assert room.wait_url == "https://media.example.com/hold.wav"
    assert room.status_events == ("join", "leave")
    assert isinstance(record, Record)
    assert (record.timeout, record.max_length, record.finish_on_key) == (0, 60, "")
    assert (record.play_beep, record.trim, record.transcribe) == (False, "do-not-trim", False)
    assert record.wants_transcription  # a transcribeCallback implies it
    assert isinstance(redirect, Redirect) and redirect.method == "GET"
    assert isinstance(reject, Reject) and reject.reason == "busy"
    assert isinstance(hangup, Hangup)
    assert isinstance(pause, Pause) and pause.length == 3


@pytest.mark.parametrize(
    ("action", "defaults"),
    [
        ({"say": {"text": "x"}}, {"language": "en-US", "voice": None, "loop": 0}),
        ({"play": {"url": "https://a.example/x.wav"}}, {"loop": 0}),
        (
            {"getDigits": {}},
            {
                "num_digits": 0,
                "finish_on_key": "#",
                "timeout": 5,
                "action": None,
                "method": "POST",
                "nested": (),
            },
        ),
        (
            {"dial": {"number": "+254722000000"}},
            {
                "caller_id": None,
                "timeout": 30,
                "record": "do-not-record",
                "recording_channels": "dual",
                "action": None,
                "method": "POST",
                "hangup_on_star": False,
            },
        ),
        (
            {"conference": {"name": "room-1"}},
            {
                "record": False,
                "beep": True,
                "muted": False,
                "start_on_enter": True,
                "end_on_exit": False,
                "max_participants": 250,
                "wait_url": None,
                "status_events_callback_url": None,
                "status_events": STATUS_EVENTS,
            },
        ),
        (
            {"record": {}},
            {
                "action": None,
                "method": "POST",
                "timeout": 5,
                "max_length": 3600,
                "finish_on_key": "1234567890*#",
                "play_beep": True,
                "trim": "trim-silence",
                "transcribe": False,
                "transcribe_callback": None,
            },
        ),
        ({"redirect": {"url": "https://a.example/next"}}, {"method": "POST"}),
        ({"reject": {}}, {"reason": "rejected"}),
        ({"pause": {}}, {"length": 1}),
    ],
)
def test_defaults_follow_the_spec(action: dict[str, Any], defaults: dict[str, Any]) -> None:
    (parsed,) = parse({"actions": [action]})
    assert {name: getattr(parsed, name) for name in defaults} == defaults


def test_a_bare_list_is_accepted() -> None:
    assert parse([{"hangup": {}}]) == [Hangup()]


def test_an_empty_document_is_valid_and_ends_the_call() -> None:
    assert parse({"actions": []}) == []


def test_method_is_read_in_any_case() -> None:
    (redirect,) = parse([{"redirect": {"url": "https://a.example/", "method": "get"}}])
    assert redirect.method == "GET"


def test_integral_floats_count_as_integers() -> None:
    (pause,) = parse([{"pause": {"length": 2.0}}])
    assert pause.length == 2 and isinstance(pause.length, int)


def test_null_means_not_given_where_the_default_is_none() -> None:
    say, dial, record = parse(
        [
            {"say": {"text": "x", "voice": None}},
            {"dial": {"number": "+254722000000", "sip": None, "callerId": None}},
            {"record": {"action": None, "transcribeCallback": None}},
        ]
    )
    assert say == Say.model_validate({"text": "x"})
    assert isinstance(dial, Dial) and dial.sip is None and dial.caller_id is None
    assert record == Record.model_validate({})


BAD_DOCUMENTS = [
    ({"actions": [{"sya": {"text": "x"}}]}, 'actions[0]: unknown verb "sya" (did you mean "say"?)'),
    ({"actions": [{"frobnicate": {}}]}, 'actions[0]: unknown verb "frobnicate"'),
    (
        {"actions": [{"hangup": {}}, {"say": {"text": "a"}, "play": {"url": "https://a.b/"}}]},
        "actions[1]: an action has exactly one verb, got 2 (say, play)",
    ),
    ({"actions": [{}]}, "actions[0]: an action has exactly one verb, got none"),
    ({"actions": ["say"]}, "actions[0]: an action is an object with one verb, got a string"),
    ({"actions": [{"say": "hello"}]}, "actions[0].say: parameters must be an object, got a string"),
    ({"actions": [{"say": {}}]}, "actions[0].say.text: is required"),
    (
        {"actions": [{"say": {"text": " "}}]},
        "actions[0].say.text: must be a non-empty string, got a blank string",
    ),
    (
        {"actions": [{"say": {"text": "x", "language": "en_US"}}]},
        'actions[0].say.language: must be a BCP-47 language tag like "en-US", got "en_US"',
    ),
    (
        {"actions": [{"say": {"text": "x", "loop": "2"}}]},
        "actions[0].say.loop: must be an integer from 0 to 100, got a string",
    ),
    (
        {"actions": [{"say": {"text": "x", "loop": None}}]},
        "actions[0].say.loop: must be an integer from 0 to 100, got null",
    ),
    (
        {"actions": [{"say": {"text": "x", "loop": 101}}]},
        "actions[0].say.loop: must be an integer from 0 to 100, got 101",
    ),
    (
        {"actions": [{"play": {"url": "/relative.wav"}}]},
        'actions[0].play.url: must be an absolute http(s) URL, got "/relative.wav"',
    ),
    (
        {"actions": [{"play": {"url": "ftp://a.example/x.wav"}}]},
        'actions[0].play.url: must be an absolute http(s) URL, got "ftp://a.example/x.wav"',
    ),
    (
        {"actions": [{"hangup": {}}, {"pause": {}}, {"record": {"timeout": -1}}]},
        "actions[2].record.timeout: must be an integer from 0 to 3600, got -1",
    ),
    (
        {"actions": [{"record": {"maxLength": 0}}]},
        "actions[0].record.maxLength: must be an integer from 1 to 14400, got 0",
    ),
    (
        {"actions": [{"record": {"finishOnkey": "#"}}]},
        'actions[0].record.finishOnkey: unknown parameter (did you mean "finishOnKey"?)',
    ),
    (
        {"actions": [{"record": {"playBeep": "false"}}]},
        "actions[0].record.playBeep: must be true or false, got a string",
    ),
    (
        {"actions": [{"record": {"trim": "yes"}}]},
        'actions[0].record.trim: must be one of "trim-silence", "do-not-trim", got "yes"',
    ),
    (
        {"actions": [{"record": {"finishOnKey": "#A"}}]},
        'actions[0].record.finishOnKey: must be DTMF keys from 0123456789*#, got "A"',
    ),
    (
        {"actions": [{"hangup": {"now": True}}]},
        "actions[0].hangup.now: unknown parameter; hangup takes no parameters",
    ),
    (
        {"actions": [{"dial": {}}]},
        "actions[0].dial: needs exactly one of number, sip or queue, got neither",
    ),
    (
        {"actions": [{"dial": {"number": "+254722000000", "sip": "sip:a@b"}}]},
        "actions[0].dial: needs exactly one of number, sip or queue, got two of them",
    ),
    (
        {"actions": [{"dial": {"number": "0722000000"}}]},
        "actions[0].dial.number: must be an E.164 number or a list of 1 to 10 of them, "
        'got "0722000000"',
    ),
    (
        {"actions": [{"dial": {"number": ["+254722000000", 254722000001]}}]},
        "actions[0].dial.number: must be an E.164 number or a list of 1 to 10 of them (item 1), "
        "got a number",
    ),
    (
        {"actions": [{"dial": {"number": []}}]},
        "actions[0].dial.number: must be an E.164 number or a list of 1 to 10 of them, "
        "got a list of 0",
    ),
    (
        {"actions": [{"dial": {"sip": "alice@example.com"}}]},
        "actions[0].dial.sip: must be a sip: URI or a list of 1 to 10 of them, "
        'got "alice@example.com"',
    ),
    (
        {"actions": [{"dial": {"sip": ["sip:a@b", "sip:a@b"]}}]},
        "actions[0].dial.sip: lists the same SIP URI twice",
    ),
    (
        {"actions": [{"dial": {"number": "+254722000000", "recordingChannels": "stereo"}}]},
        'actions[0].dial.recordingChannels: must be one of "mono", "dual", got "stereo"',
    ),
    (
        {"actions": [{"getDigits": {"nested": [{"dial": {"number": "+254722000000"}}]}}]},
        "actions[0].getDigits.nested[0]: only say and play may be nested here, got dial",
    ),
    (
        {"actions": [{"getDigits": {"nested": [{"say": {}}]}}]},
        "actions[0].getDigits.nested[0].say.text: is required",
    ),
    (
        {"actions": [{"getDigits": {"nested": {"say": {"text": "x"}}}}]},
        "actions[0].getDigits.nested: must be a list of say and play actions",
    ),
    (
        {"actions": [{"getDigits": {"numDigits": 1.5}}]},
        "actions[0].getDigits.numDigits: must be an integer from 0 to 64, got a number",
    ),
    (
        {"actions": [{"getDigits": {"timeout": True}}]},
        "actions[0].getDigits.timeout: must be an integer from 1 to 600, got a boolean",
    ),
    (
        {"actions": [{"conference": {"name": ""}}]},
        "actions[0].conference.name: must be a room name of 1 to 128 letters, digits, ._:@+-, "
        'got ""',
    ),
    (
        {"actions": [{"conference": {"name": "a", "statusEvents": ["join", "ended"]}}]},
        "actions[0].conference.statusEvents: must be a list of start, end, join, leave, mute, "
        'unmute, got "ended"',
    ),
    (
        {"actions": [{"conference": {"name": "a", "maxParticipants": 1}}]},
        "actions[0].conference.maxParticipants: must be an integer from 2 to 250, got 1",
    ),
    (
        {"actions": [{"redirect": {"url": "https://a.example/", "method": "PUT"}}]},
        'actions[0].redirect.method: must be "POST" or "GET", got "PUT"',
    ),
    (
        {"actions": [{"reject": {"reason": "nope"}}]},
        'actions[0].reject.reason: must be one of "rejected", "busy", got "nope"',
    ),
    ({"action": []}, 'document: unknown key "action"; the only key is "actions"'),
    ({}, 'document: missing "actions"'),
    ({"actions": {"say": {"text": "x"}}}, "actions: must be a list, got an object"),
    ("hello", 'document: must be an object with "actions", got a string'),
    (
        {"actions": [{"hangup": {}}] * (MAX_ACTIONS + 1)},
        "actions: 101 actions is over the limit of 100",
    ),
]


@pytest.mark.parametrize(("document", "message"), BAD_DOCUMENTS)
def test_bad_documents_are_refused_with_the_path(document: Any, message: str) -> None:
    with pytest.raises(ActionDocumentError) as caught:
        parse(document)
    assert message in caught.value.problems


def test_every_problem_of_a_document_is_reported() -> None:
    with pytest.raises(ActionDocumentError) as caught:
        parse([{"sya": {}}, {"say": {}}, {"pause": {"length": 0}}])
    assert [problem.split(":")[0] for problem in caught.value.problems] == [
        "actions[0]",
        "actions[1].say.text",
        "actions[2].pause.length",
    ]
    assert str(caught.value) == "; ".join(caught.value.problems)


def test_one_hundred_actions_are_allowed() -> None:
    assert len(parse({"actions": [{"pause": {}}] * MAX_ACTIONS})) == MAX_ACTIONS


def test_documents_over_64_kb_are_refused_before_parsing() -> None:
    text = "x" * (MAX_DOCUMENT_BYTES - 60)
    raw = json.dumps({"actions": [{"say": {"text": text}}]}).encode()
    assert len(raw) <= MAX_DOCUMENT_BYTES
    assert parse_action_document(raw) == [Say.model_validate({"text": text})]
    bigger = json.dumps({"actions": [{"say": {"text": text + "y" * 100}}]}).encode()
    with pytest.raises(ActionDocumentError, match=r"document: \d+ bytes is over the limit"):
        parse_action_document(bigger)


@pytest.mark.parametrize("raw", [b"<Response/>", b"{actions: []}", b"\xff\xfe\x00", b"[1,"])
def test_not_json_is_its_own_error(raw: bytes) -> None:
    with pytest.raises(NotJsonError, match="document: not JSON"):
        parse_action_document(raw)


def test_deep_nesting_is_refused_cleanly() -> None:
    with pytest.raises(ActionDocumentError):
        parse_action_document(b"[" * 30000 + b"]" * 30000)


def test_long_values_are_cut_short_in_messages() -> None:
    with pytest.raises(ActionDocumentError) as caught:
        parse([{"play": {"url": "x" * 5000}}])
    assert len(str(caught.value)) < 200


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["say", "play", "dial", "text", "url", "number", "actions", "nested"])
            | st.text(max_size=6),
            children,
            max_size=4,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(_json)
def test_any_json_parses_or_raises_the_documented_error(document: Any) -> None:
    try:
        parse_action_document(json.dumps(document).encode())
    except ActionDocumentError as exc:
        assert exc.problems and all(isinstance(problem, str) for problem in exc.problems)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_parse_or_raise_the_documented_error(raw: bytes) -> None:
    with contextlib.suppress(ActionDocumentError):
        parse_action_document(raw)


_PARAMETERS = sorted(
    {
        field.alias or name
        for model in (Say, Play, GetDigits, Dial, Conference, Record, Redirect, Reject, Pause)
        for name, field in model.model_fields.items()
    }
)
_values = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
_actions = st.lists(
    st.dictionaries(
        st.sampled_from(["say", "play", "getDigits", "dial", "conference", "record", "pause"]),
        st.dictionaries(
            st.sampled_from(_PARAMETERS), _values | st.lists(_values, max_size=3), max_size=4
        ),
        min_size=1,
        max_size=1,
    ),
    max_size=5,
)


@settings(max_examples=150, deadline=None)
@given(_actions)
def test_action_shaped_documents_parse_or_raise_the_documented_error(actions: Any) -> None:
    try:
        parse_action_document(json.dumps({"actions": actions}).encode())
    except ActionDocumentError as exc:
        assert all(problem.startswith(("actions[", "document")) for problem in exc.problems)
