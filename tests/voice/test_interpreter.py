"""The interpreter runs real app documents over HTTP against a scripted call."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.voice.voice_rig import (
    AppServer,
    FakeCall,
    Hit,
    LocalRecordingSink,
    Reply,
    ScriptedRecording,
    document,
    wav_bytes,
)

from sautikit.events.signing import SIGNATURE_HEADER, compute_signature
from sautikit.voice.callbacks import AppClient
from sautikit.voice.control import (
    CallControl,
    ConferenceStatus,
    DialResult,
    DialTarget,
    RecordingInfo,
    RecordingIntent,
    RecordingSource,
    RecordResult,
)
from sautikit.voice.interpreter import DEFAULT_APOLOGY, MAX_REDIRECTS, Interpreter
from sautikit.voice.prompts import PromptCache

FIXTURES = Path(__file__).parent / "fixtures"
SECRET = "whsec_interpreter"


class SpySink(LocalRecordingSink):
    """The local sink, noting what each recording came with."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.requests: list[dict[str, Any]] = []

    async def recording_finished(
        self,
        call: CallControl,
        result: RecordResult,
        *,
        source: RecordingSource,
        transcribe: bool,
        transcribe_callback: str | None,
    ) -> RecordingInfo:
        self.requests.append(
            {
                "source": source,
                "transcribe": transcribe,
                "transcribe_callback": transcribe_callback,
                "channels": result.channels,
            }
        )
        return await super().recording_finished(
            call,
            result,
            source=source,
            transcribe=transcribe,
            transcribe_callback=transcribe_callback,
        )


@pytest.fixture
def call(tmp_path: Path) -> FakeCall:
    return FakeCall(spool=tmp_path / "spool")


@pytest.fixture
def sink(tmp_path: Path) -> SpySink:
    return SpySink(tmp_path / "recordings")


Make = Callable[..., Interpreter]


@pytest.fixture
def make(call: FakeCall, http: httpx.AsyncClient, sink: SpySink) -> Make:
    def build(**options: Any) -> Interpreter:
        return Interpreter(
            call,
            # Short, for the tests of a silent app; not so tight that a loaded machine fails.
            AppClient(http, SECRET, timeout=1.0),
            recordings=sink,
            prompts=PromptCache(http),
            play_allowed=lambda host: host == "127.0.0.1",
            **options,
        )

    return build


def fixture_document(name: str, app: AppServer, example_host: str) -> Reply:
    """A fixture document with its example URLs pointed at the loopback app."""
    raw = (FIXTURES / name).read_text().replace(f"https://{example_host}", app.url(""))
    return Reply(body=raw.encode())


def signed(hit: Hit) -> bool:
    parts = dict(part.split("=", 1) for part in hit.headers[SIGNATURE_HEADER.lower()].split(","))
    raw = hit.query if hit.method == "GET" else hit.body
    return parts["v1"] == compute_signature(SECRET, raw, int(parts["t"]))


# --- the seed's apps ------------------------------------------------------------------------


async def test_seed_voicemail_flow(
    app: AppServer, call: FakeCall, sink: SpySink, make: Make, tmp_path: Path
) -> None:
    prompt = app.route(
        "/voicemail/prompt",
        fixture_document("seed_voicemail_prompt.json", app, "yourapp.example.com"),
    )
    app.route(
        "/voicemail/recording",
        Reply(body=(FIXTURES / "seed_voicemail_recording.json").read_bytes()),
    )
    call.recordings.append(ScriptedRecording(duration=8.4, ended_by="key", key="#"))

    await make().run(prompt)

    assert call.steps() == ["answer", "say", "play", "record", "hangup"]
    assert call.said()[0].startswith("You have reached the voicemail of Acme Corp.")
    assert call.log[3] == ("record", 120, 10, "#", True, 1)
    # Known before recording starts, so a crash mid-recording still ends in the callback.
    assert call.intents == [
        RecordingIntent(
            app.url("/voicemail/recording"), "POST", True, app.url("/voicemail/transcript")
        )
    ]
    assert call.cause == "normal_clearing" and call.errors == []
    first, callback = app.hits
    assert first.fields["CallStatus"] == "ringing" and first.fields["Direction"] == "inbound"
    fields = callback.fields
    assert fields["CallId"] == "call-1" and fields["CallStatus"] == "answered"
    assert fields["RecordingDuration"] == "8" and fields["RecordingChannels"] == "1"
    assert fields["Digits"] == "#"
    stored = tmp_path / "recordings" / f"{fields['RecordingSid']}.wav"
    assert stored.exists() and fields["RecordingUrl"] == stored.resolve().as_uri()
    assert sink.requests == [
        {
            "source": "record",
            "transcribe": True,
            "transcribe_callback": app.url("/voicemail/transcript"),
            "channels": 1,
        }
    ]
    assert all(signed(hit) for hit in app.hits)


async def test_a_voicemail_left_by_hanging_up_still_reaches_the_app(
    app: AppServer, call: FakeCall, make: Make
) -> None:
    prompt = app.route(
        "/voicemail/prompt",
        fixture_document("seed_voicemail_prompt.json", app, "yourapp.example.com"),
    )
    app.route("/voicemail/recording", document({"say": {"text": "never heard"}}))
    call.hang_up_on = "record"
    call.recordings.append(ScriptedRecording(duration=5.0))

    await make().run(prompt)

    (callback,) = app.hits_to("/voicemail/recording")
    assert callback.fields["Digits"] == "hangup" and callback.fields["RecordingDuration"] == "5"
    assert callback.fields["RecordingSid"]
    assert "never heard" not in call.said() and call.cause == "caller_hangup"


async def test_an_empty_recording_stores_nothing_and_the_next_action_runs(
    app: AppServer, call: FakeCall, make: Make, tmp_path: Path
) -> None:
    url = app.route(
        "/vm",
        document(
            {"record": {"action": app.url("/done"), "playBeep": False}},
            {"say": {"text": "We did not hear you."}},
        ),
    )
    app.route("/done", document())
    call.recordings.append(ScriptedRecording(empty=True))

    await make().run(url)

    assert app.hits_to("/done") == []  # no RecordingUrl to give: action is not requested
    assert call.said() == ["We did not hear you."]
    assert "play" not in call.steps()  # playBeep false
    assert list((tmp_path / "spool").iterdir()) == []
    assert not (tmp_path / "recordings").exists()


async def test_seed_dial_records_from_answer_with_the_called_number_as_caller_id(
    app: AppServer, tmp_path: Path, http: httpx.AsyncClient, sink: SpySink
) -> None:
    def connect_and_record(hit: Hit) -> Reply:
        return document(
            {"say": {"text": "This call will be recorded. Please hold while we connect you."}},
            {
                "dial": {
                    "number": "+254720000001",
                    "record": "record-from-answer",
                    "callerId": hit.fields["To"],
                }
            },
        )

    call = FakeCall(
        spool=tmp_path / "spool",
        direction="outbound",
        answered=True,
        from_="+254700000001",
        to="+254722999000",
    )
    url = app.route("/calls/connect-and-record", connect_and_record)
    interpreter = Interpreter(
        call,
        AppClient(http, SECRET),
        recordings=sink,
        prompts=PromptCache(http),
        play_allowed=lambda host: False,
    )

    await interpreter.run(url)

    assert call.steps() == ["say", "dial", "hangup"]
    _, targets, caller_id, timeout, record, channels, on_star = call.log[1]
    assert targets == [DialTarget("number", "+254720000001")]
    assert (caller_id, timeout, record, channels, on_star) == (
        "+254722999000",
        30,
        "record-from-answer",
        2,
        False,
    )
    assert sink.requests[0]["source"] == "dial" and sink.requests[0]["channels"] == 2
    (stored,) = (tmp_path / "recordings").iterdir()
    assert stored.suffix == ".wav"
    assert call.cause == "normal_clearing"


async def test_dial_posts_its_outcome_to_action(app: AppServer, call: FakeCall, make: Make) -> None:
    url = app.route(
        "/connect",
        document(
            {
                "dial": {
                    "sip": ["sip:desk1@pbx.example.com", "sip:desk2@pbx.example.com"],
                    "timeout": 15,
                    "hangupOnStar": True,
                    "action": app.url("/dialled"),
                }
            },
            {"say": {"text": "replaced by the action's answer"}},
        ),
    )
    app.route("/dialled", document({"say": {"text": "They are busy."}}))
    call.dials.append(DialResult("busy", "child-9", 0))

    await make().run(url)

    targets = call.log[1][1]
    assert [target.address for target in targets] == [
        "sip:desk1@pbx.example.com",
        "sip:desk2@pbx.example.com",
    ]
    assert call.log[1][3] == 15 and call.log[1][6] is True
    (dialled,) = app.hits_to("/dialled")
    assert dialled.fields["DialCallStatus"] == "busy"
    assert dialled.fields["DialCallId"] == "child-9" and dialled.fields["DialCallDuration"] == "0"
    assert call.said() == ["They are busy."]


async def test_a_recorded_dial_posts_the_recording_with_the_outcome(
    app: AppServer, call: FakeCall, make: Make
) -> None:
    url = app.route(
        "/connect",
        document(
            {
                "dial": {
                    "number": ["+254720000001", "+254720000002"],
                    "record": "record-from-ringing",
                    "recordingChannels": "mono",
                    "action": app.url("/dialled"),
                    "method": "GET",
                }
            }
        ),
    )
    app.route("/dialled", document({"hangup": {}}))
    call.dials.append(DialResult("completed", "child-2", 31))

    await make().run(url)

    (dialled,) = app.hits_to("/dialled")
    fields = dialled.fields
    assert (fields["DialCallStatus"], fields["DialCallId"], fields["DialCallDuration"]) == (
        "completed",
        "child-2",
        "31",
    )
    assert fields["RecordingSid"] and fields["RecordingUrl"].startswith("file://")
    assert (fields["RecordingDuration"], fields["RecordingChannels"]) == ("31", "1")


async def test_a_caller_who_hangs_up_during_a_dial_still_reports_it(
    app: AppServer, call: FakeCall, make: Make
) -> None:
    url = app.route(
        "/connect",
        document({"dial": {"number": "+254720000001", "action": app.url("/dialled")}}),
    )
    app.route("/dialled", document({"say": {"text": "never heard"}}))
    call.hang_up_on = "dial"

    await make().run(url)

    (dialled,) = app.hits_to("/dialled")
    assert dialled.fields["DialCallStatus"] == "completed"
    assert call.steps() == ["answer", "dial"] and call.cause == "caller_hangup"


# --- getDigits ------------------------------------------------------------------------------


async def test_ivr_key_press_interrupts_the_nested_prompts(
    app: AppServer, call: FakeCall, make: Make
) -> None:
    url = app.route("/ivr", fixture_document("ivr_menu.json", app, "ivr.example.com"))
    app.route("/hold.mp3", Reply(body=wav_bytes(), content_type="audio/wav"))
    app.route("/menu", document({"say": {"text": "You chose English."}}))
    call.keys.extend("2")

    await make().run(url)

    assert call.said() == ["Karibu. Bonyeza moja kwa Kiswahili.", "You chose English."]
    assert call.log[1][2] == "sw"
    assert ("collect", 1, "#", 7) in call.log
    (menu,) = app.hits_to("/menu")
    assert menu.fields["Digits"] == "2"
    assert app.hits_to("/hold.mp3") == []  # interrupted before it was needed


async def test_ivr_with_no_key_plays_every_prompt_then_goes_on(
    app: AppServer, call: FakeCall, make: Make
) -> None:
    url = app.route("/ivr", fixture_document("ivr_menu.json", app, "ivr.example.com"))
    app.route("/hold.mp3", Reply(body=wav_bytes(0.3), content_type="audio/wav"))

    await make().run(url)

    assert call.steps() == ["answer", "say", "say", "play", "collect", "say", "hangup"]
    assert call.log[2][4] == 2  # loop
    assert call.log[3][1] == 2400  # 0.3 s at 8 kHz
    assert call.said()[-1] == "We did not get your choice. Goodbye."
    assert app.hits_to("/menu") == []


async def test_get_method_callbacks_carry_the_digits_in_the_query(
    app: AppServer, call: FakeCall, make: Make
) -> None:
    url = app.route(
        "/pin",
        document(
            {
                "getDigits": {
                    "numDigits": 0,
                    "finishOnKey": "#",
                    "action": app.url("/check?step=2"),
                    "method": "GET",
                }
            }
        ),
    )
    app.route("/check", document({"hangup": {}}))
    call.keys.extend("4321#")

    await make().run(url, "GET")

    first, check = app.hits
    assert first.method == "GET" and first.fields["CallId"] == "call-1"
    assert check.method == "GET"
    assert check.fields["Digits"] == "4321" and check.fields["step"] == "2"
    assert signed(first) and signed(check)


# --- failures -------------------------------------------------------------------------------


def apologised(call: FakeCall) -> bool:
    return call.said()[-1:] == [DEFAULT_APOLOGY] and call.cause == "application_error"


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        (None, "application.timeout"),
        (Reply(500, b"oops"), "application.http_status"),
        (Reply(body=b"<Response><Say>hi</Say></Response>"), "application.not_json"),
        (
            document({"say": {"text": "first"}}, {"say": {"text": "second", "loop": -1}}),
            "application.invalid_document",
        ),
    ],
)
async def test_app_failures_apologise_and_end_the_call(
    app: AppServer, call: FakeCall, make: Make, reply: Reply | None, code: str
) -> None:
    url = app.slow("/voice")[0] if reply is None else app.route("/voice", reply)
    interpreter = make()

    await interpreter.run(url)

    assert apologised(call)
    assert call.steps() == ["answer", "say", "hangup"]  # nothing of an invalid document ran
    assert [error[0] for error in call.errors] == [code]
    assert interpreter.error is not None and interpreter.error.code == code


async def test_an_invalid_document_error_names_the_path(
    app: AppServer, call: FakeCall, make: Make
) -> None:
    url = app.route("/voice", document({"hangup": {}}, {"pause": {"length": "2"}}))
    await make().run(url)
    assert "actions[1].pause.length: must be an integer" in call.errors[0][1]


async def test_fallback_url_takes_over_once(app: AppServer, call: FakeCall, make: Make) -> None:
    url = app.route("/voice", Reply(503))
    fallback = app.route(
        "/fallback",
        document(
            {"say": {"text": "Our system is busy; one moment."}},
            {"redirect": {"url": app.url("/still-broken")}},
        ),
    )
    app.route("/still-broken", Reply(500))

    await make(fallback_url=fallback).run(url)

    assert call.said() == ["Our system is busy; one moment.", DEFAULT_APOLOGY]
    (tried,) = app.hits_to("/fallback")
    assert tried.fields["ErrorCode"] == "application.http_status"
    assert tried.fields["ErrorUrl"] == url and tried.fields["CallId"] == "call-1"
    assert [code for code, _ in call.errors] == ["application.http_status"] * 2
    assert call.cause == "application_error"


async def test_a_failing_fallback_ends_in_the_apology(
    app: AppServer, call: FakeCall, make: Make
) -> None:
    url = app.route("/voice", Reply(body=b"not json"))
    fallback, _ = app.slow("/fallback")

    await make(fallback_url=fallback).run(url)

    assert apologised(call)
    assert [code for code, _ in call.errors] == ["application.not_json", "application.timeout"]


async def test_a_fallback_keeps_the_fields_of_the_failed_callback(
    app: AppServer, call: FakeCall, make: Make
) -> None:
    url = app.route("/menu", document({"getDigits": {"action": app.url("/chosen")}}))
    app.route("/chosen", Reply(500))
    fallback = app.route("/fallback", document({"say": {"text": "Recovered."}}))
    call.keys.extend("7#")

    await make(fallback_url=fallback).run(url)

    (tried,) = app.hits_to("/fallback")
    assert tried.fields["Digits"] == "7" and tried.fields["ErrorUrl"] == app.url("/chosen")
    assert call.said() == ["Recovered."] and call.cause == "normal_clearing"


async def test_one_hundred_actions_run_and_one_more_is_refused(
    app: AppServer, call: FakeCall, make: Make
) -> None:
    hundred = app.route("/hundred", document(*[{"pause": {"length": 1}}] * 100))
    await make().run(hundred)
    assert call.steps().count("pause") == 100 and call.cause == "normal_clearing"

    again = FakeCall(spool=call.spool)
    too_many = app.route("/too-many", document(*[{"pause": {"length": 1}}] * 101))
    interpreter = make()
    interpreter.call = again
    await interpreter.run(too_many)
    assert "pause" not in again.steps() and apologised(again)
    assert "over the limit of 100" in again.errors[0][1]


async def test_a_document_over_64_kb_is_refused(app: AppServer, call: FakeCall, make: Make) -> None:
    url = app.route("/big", document({"say": {"text": "x" * (64 * 1024)}}))
    await make().run(url)
    assert apologised(call) and "over the limit of 65536" in call.errors[0][1]


async def test_more_than_ten_redirects_in_a_row_is_an_error(
    app: AppServer, call: FakeCall, make: Make
) -> None:
    url = app.route("/loop", document({"redirect": {"url": app.url("/loop")}}))
    await make().run(url)
    assert len(app.hits_to("/loop")) == MAX_REDIRECTS + 1
    assert call.errors == [("application.too_many_redirects", "more than 10 redirects in a row")]
    assert apologised(call)


async def test_a_menu_that_loops_through_redirect_is_not_limited(
    app: AppServer, call: FakeCall, make: Make
) -> None:
    def menu(_hit: Hit) -> Reply:
        if len(app.hits_to("/menu")) > 2 * MAX_REDIRECTS:
            return document({"hangup": {}})
        return document({"say": {"text": "Menu."}}, {"redirect": {"url": app.url("/menu")}})

    await make().run(app.route("/menu", menu))
    assert call.said().count("Menu.") == 2 * MAX_REDIRECTS and call.errors == []


# --- the other verbs ------------------------------------------------------------------------


async def test_reject_before_answer_refuses_the_call(
    app: AppServer, call: FakeCall, make: Make
) -> None:
    url = app.route("/voice", document({"reject": {"reason": "busy"}}, {"say": {"text": "no"}}))
    await make().run(url)
    assert call.log == [("reject", "busy")] and not call.answered


async def test_reject_after_answer_is_an_application_error(
    app: AppServer, call: FakeCall, make: Make
) -> None:
    url = app.route("/voice", document({"say": {"text": "Hello"}}, {"reject": {}}))
    await make().run(url)
    assert call.errors[0][0] == "application.reject_after_answer" and apologised(call)


async def test_a_caller_hanging_up_stops_everything(
    app: AppServer, call: FakeCall, make: Make
) -> None:
    url = app.route(
        "/voice",
        document({"say": {"text": "one"}}, {"say": {"text": "two"}}, {"pause": {"length": 3}}),
    )
    call.hang_up_on = "say"
    await make().run(url)
    assert call.steps() == ["answer", "say"] and call.cause == "caller_hangup"


async def test_say_play_pause_and_hangup(app: AppServer, call: FakeCall, make: Make) -> None:
    url = app.route(
        "/voice",
        document(
            {"say": {"text": "Habari", "language": "sw", "voice": "female", "loop": 2}},
            {"play": {"url": app.url("/tone.wav"), "loop": 3}},
            {"pause": {"length": 2}},
            {"hangup": {}},
            {"say": {"text": "after hangup"}},
        ),
    )
    app.route("/tone.wav", Reply(body=wav_bytes(0.5), content_type="audio/wav"))
    await make().run(url)
    assert call.log == [
        ("answer",),
        ("say", "Habari", "sw", "female", 2),
        ("play", 4000, 3),
        ("pause", 2),
        ("hangup", "normal_clearing"),
    ]


async def test_a_play_url_off_the_allow_list_is_skipped_and_recorded(
    app: AppServer, call: FakeCall, make: Make
) -> None:
    url = app.route(
        "/voice",
        document(
            {"play": {"url": "https://cdn.example.com/a.wav"}}, {"say": {"text": "still here"}}
        ),
    )
    await make().run(url)
    assert call.said() == ["still here"] and "play" not in call.steps()
    assert call.errors[0][0] == "play.not_allowed" and call.cause == "normal_clearing"


async def test_an_outbound_call_is_not_answered_again(
    app: AppServer, call: FakeCall, make: Make
) -> None:
    call.direction, call.answered = "outbound", True
    await make().run(app.route("/voice", document({"say": {"text": "Hi"}})))
    assert call.steps() == ["say", "hangup"]
    assert app.hits[0].fields["Direction"] == "outbound"


async def test_an_empty_document_hangs_up(app: AppServer, call: FakeCall, make: Make) -> None:
    await make().run(app.route("/voice", document()))
    assert call.log == [("hangup", "normal_clearing")]


async def test_conference_passes_every_parameter_and_posts_chosen_events(
    app: AppServer, call: FakeCall, make: Make, sink: SpySink
) -> None:
    url = app.route(
        "/room",
        document(
            {
                "conference": {
                    "name": "standup",
                    "muted": True,
                    "beep": False,
                    "startOnEnter": False,
                    "endOnExit": True,
                    "maxParticipants": 3,
                    "record": True,
                    "waitUrl": app.url("/hold.wav"),
                    "statusEventsCallbackUrl": app.url("/room-events"),
                    "statusEvents": ["join", "leave"],
                }
            },
            {"say": {"text": "The meeting has ended."}},
        ),
    )
    app.route("/hold.wav", Reply(body=wav_bytes(1.0), content_type="audio/wav"))
    app.route("/room-events", Reply(204))
    call.room_events = [
        ConferenceStatus("start"),
        ConferenceStatus("join", "call-1"),
        ConferenceStatus("mute", "call-2"),
        ConferenceStatus("leave", "call-2"),
    ]

    await make().run(url)

    _, name, options = call.log[1]
    assert name == "standup"
    assert options == {
        "muted": True,
        "beep": False,
        "start_on_enter": False,
        "end_on_exit": True,
        "max_participants": 3,
        "wait_audio": 8000,
        "record": True,
    }
    events = [
        (hit.fields["ConferenceEvent"], hit.fields["ParticipantCallId"])
        for hit in app.hits_to("/room-events")
    ]
    assert sorted(events) == [("join", "call-1"), ("leave", "call-2")]
    assert all(hit.fields["ConferenceName"] == "standup" for hit in app.hits_to("/room-events"))
    assert sink.requests[0]["source"] == "conference"
    assert call.said() == ["The meeting has ended."]


# --- live redirect --------------------------------------------------------------------------


async def test_redirect_now_abandons_the_current_action(
    app: AppServer, call: FakeCall, make: Make
) -> None:
    url = app.route("/voice", document({"pause": {"length": 600}}, {"say": {"text": "skipped"}}))
    live = app.route("/live", document({"say": {"text": "Redirected."}}))
    call.block_on = "pause"
    interpreter = make()
    assert interpreter.redirect_now(live) is False  # not running yet

    running = asyncio.create_task(interpreter.run(url))
    await call.blocked.wait()
    assert interpreter.redirect_now(live) is True
    await running

    assert call.said() == ["Redirected."]
    (hit,) = app.hits_to("/live")
    assert hit.fields["CallStatus"] == "answered"
    assert interpreter.redirect_now(live) is False  # the call is over


async def test_redirect_now_during_a_slow_fetch(app: AppServer, call: FakeCall, make: Make) -> None:
    slow, reached = app.slow("/slow")
    live = app.route("/live", document({"say": {"text": "Redirected."}}))
    interpreter = make()
    running = asyncio.create_task(interpreter.run(slow))
    await reached.wait()
    interpreter.redirect_now(live)
    await running
    assert call.said() == ["Redirected."] and call.errors == []


async def test_cancelling_run_leaves_the_hangup_to_the_host(
    app: AppServer, call: FakeCall, make: Make
) -> None:
    call.block_on = "pause"
    running = asyncio.create_task(make().run(app.route("/voice", document({"pause": {}}))))
    await call.blocked.wait()
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert not call.ended and call.steps() == ["answer", "pause"]


async def test_an_unexpected_failure_hangs_up_and_propagates(
    app: AppServer, call: FakeCall, make: Make, sink: SpySink
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> RecordingInfo:
        raise RuntimeError("disk on fire")

    sink.recording_finished = broken  # type: ignore[method-assign]
    url = app.route("/voice", document({"record": {}}))
    with pytest.raises(RuntimeError, match="disk on fire"):
        await make().run(url)
    assert call.cause == "normal_clearing"
