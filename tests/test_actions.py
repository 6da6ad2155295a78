"""``sautikit.actions``: every builder emits SPEC §3's JSON, and the server's parser takes it."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sautikit import actions
from sautikit.actions import (
    conference,
    dequeue,
    dial,
    enqueue,
    gather,
    get_digits,
    hangup,
    leave,
    pause,
    play,
    record,
    redirect,
    reject,
    response,
    say,
    stream,
)
from sautikit.voice.actions import (
    VERBS,
    Conference,
    Dial,
    GetDigits,
    Record,
    Say,
    Stream,
    parse_actions,
)

EVERY_VERB_FULLY = response(
    say("Karibu", language="sw", voice="sw", loop=2),
    play("https://media.example.com/hold.mp3", loop=3),
    get_digits(
        nested=[say("Press 1"), play("https://media.example.com/menu.wav")],
        num_digits=1,
        finish_on_key="*",
        timeout=7,
        action="https://app.example.com/menu",
        method="GET",
    ),
    dial(
        number=["+254720000001", "+254720000002"],
        caller_id="+254700000001",
        timeout=20,
        record="record-from-ringing",
        recording_channels="mono",
        action="https://app.example.com/dialled",
        method="POST",
        hangup_on_star=True,
    ),
    dial(sip="sip:desk@pbx.example.com"),
    conference(
        "standup",
        record=True,
        beep=False,
        muted=True,
        start_on_enter=False,
        end_on_exit=True,
        max_participants=5,
        wait_url="https://media.example.com/wait.wav",
        status_events_callback_url="https://app.example.com/room",
        status_events=["join", "leave"],
    ),
    record(
        action="https://app.example.com/recording",
        method="POST",
        timeout=10,
        max_length=120,
        finish_on_key="#",
        play_beep=False,
        trim="do-not-trim",
        transcribe=True,
        transcribe_callback="https://app.example.com/transcript",
    ),
    redirect("https://app.example.com/next", method="GET"),
    reject("busy"),
    hangup(),
    pause(3),
    enqueue(
        "support",
        wait_url="https://app.example.com/hold",
        wait_url_method="GET",
        action="https://app.example.com/left-queue",
        method="POST",
        max_size=20,
        announce_position=True,
        announce_wait_time=True,
        announce_every=45,
        language="sw",
    ),
    dequeue("support", timeout=60, action="https://app.example.com/took", method="GET"),
    dial(queue="support", timeout=5),
    leave(),
    stream(
        "wss://agent.example.com/media",
        track="both",
        bidirectional=True,
        subprotocol="audio.drachtio.org",
        name="agent",
        parameters={"customer": "42"},
        status_callback="https://app.example.com/stream",
        status_callback_method="GET",
        action="https://app.example.com/after-stream",
        method="POST",
    ),
    gather(
        input=["speech", "dtmf"],
        speech_timeout="auto",
        hints=["balance", "M-Pesa"],
        language="en-US",
        partial_result_callback="https://app.example.com/partial",
        action="https://app.example.com/heard",
        timeout=6,
    ),
)


def test_every_verb_has_a_builder_and_the_server_accepts_each_fully_given() -> None:
    built = [next(iter(action)) for action in EVERY_VERB_FULLY["actions"]]
    assert set(built) == set(VERBS)
    parsed = parse_actions(json.loads(json.dumps(EVERY_VERB_FULLY)))
    assert len(parsed) == len(EVERY_VERB_FULLY["actions"])
    digits = parsed[2]
    assert isinstance(digits, GetDigits)
    assert (digits.num_digits, digits.finish_on_key, digits.method) == (1, "*", "GET")
    assert [type(child) for child in digits.nested] == [Say, type(parsed[1])]
    assert isinstance(parsed[3], Dial) and parsed[3].hangup_on_star is True
    assert isinstance(parsed[5], Conference) and parsed[5].status_events == ("join", "leave")
    assert isinstance(parsed[6], Record)
    assert (parsed[6].max_length, parsed[6].play_beep, parsed[6].trim) == (
        120,
        False,
        "do-not-trim",
    )
    gathered = parsed[-1]
    assert isinstance(gathered, GetDigits) and gathered.wants_speech and gathered.wants_digits
    assert (gathered.speech_timeout, gathered.hints) == (None, ("balance", "M-Pesa"))
    streamed = parsed[-2]
    assert isinstance(streamed, Stream)
    assert (streamed.track, streamed.bidirectional, streamed.parameters) == (
        "both",
        True,
        {"customer": "42"},
    )
    assert streamed.status_callback_method == "GET"


def test_say_is_spec_json() -> None:
    assert say("Hello", language="sw") == {"say": {"text": "Hello", "language": "sw"}}


def test_only_given_parameters_are_emitted_so_defaults_stay_the_servers() -> None:
    document = response(record(), get_digits(), pause(), reject(), hangup())
    assert document == {
        "actions": [
            {"record": {}},
            {"getDigits": {}},
            {"pause": {}},
            {"reject": {}},
            {"hangup": {}},
        ]
    }
    parsed = parse_actions(document)
    assert isinstance(parsed[0], Record)
    assert (parsed[0].timeout, parsed[0].max_length, parsed[0].finish_on_key) == (
        5,
        3600,
        "1234567890*#",
    )


def test_the_seed_voicemail_prompt_is_built_exactly() -> None:
    built = response(
        say(
            "You have reached the voicemail of Acme Corp. Please leave a message after the "
            "tone. Press the hash key when done.",
            language="en-US",
        ),
        record(
            action="https://yourapp.example.com/voicemail/recording",
            method="POST",
            timeout=10,
            max_length=120,
            finish_on_key="#",
            transcribe=True,
            transcribe_callback="https://yourapp.example.com/voicemail/transcript",
        ),
    )
    assert built["actions"][1] == {
        "record": {
            "action": "https://yourapp.example.com/voicemail/recording",
            "method": "POST",
            "timeout": 10,
            "maxLength": 120,
            "finishOnKey": "#",
            "transcribe": True,
            "transcribeCallback": "https://yourapp.example.com/voicemail/transcript",
        }
    }
    parse_actions(built)


def test_dial_with_record_from_answer_matches_the_seed() -> None:
    assert dial(number="+254720000001", record="record-from-answer", caller_id="+254700000001") == {
        "dial": {
            "number": "+254720000001",
            "record": "record-from-answer",
            "callerId": "+254700000001",
        }
    }


def test_sequences_become_json_lists() -> None:
    built = dial(sip=("sip:a@pbx.example.com", "sip:b@pbx.example.com"))
    assert built == {"dial": {"sip": ["sip:a@pbx.example.com", "sip:b@pbx.example.com"]}}
    assert json.loads(json.dumps(built)) == built


def test_false_and_zero_are_given_values_not_absent_ones() -> None:
    assert conference("room", beep=False)["conference"] == {"name": "room", "beep": False}
    assert say("Hi", loop=0)["say"] == {"text": "Hi", "loop": 0}


def test_the_module_exports_a_builder_per_verb_and_response() -> None:
    assert set(actions.__all__) == {
        "Action",
        "say",
        "play",
        "get_digits",
        "dial",
        "conference",
        "record",
        "redirect",
        "reject",
        "hangup",
        "pause",
        "stream",
        "gather",
        "enqueue",
        "dequeue",
        "leave",
        "response",
    }


@given(
    text=st.text(min_size=1, max_size=40).filter(str.strip),
    language=st.sampled_from(["en-US", "sw", "sw-KE", "en"]),
    loop=st.integers(0, 100),
    num_digits=st.integers(0, 64),
    timeout=st.integers(1, 600),
    keys=st.text(alphabet="0123456789*#", min_size=1, max_size=12),
)
def test_generated_builder_output_always_parses(
    text: str, language: str, loop: int, num_digits: int, timeout: int, keys: str
) -> None:
    document = response(
        get_digits(
            nested=[say(text, language=language, loop=loop)],
            num_digits=num_digits,
            timeout=timeout,
            finish_on_key=keys,
        ),
        record(finish_on_key=keys, timeout=timeout),
    )
    parsed = parse_actions(json.loads(json.dumps(document)))
    assert isinstance(parsed[0], GetDigits)
    assert parsed[0].nested[0] == Say(text=text, language=language, loop=loop)


@pytest.mark.parametrize("builder", [say, play])
def test_nestable_prompts_are_accepted_inside_get_digits(builder: object) -> None:
    prompt = say("Hi") if builder is say else play("https://media.example.com/a.wav")
    parse_actions(response(get_digits(nested=[prompt])))
