"""Speech input (getDigits/gather with input speech) end to end: a real caller, the stack,
VAD endpointing and offline Whisper, the app's action callback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from tests.baresip import Baresip, requires_baresip
from tests.sipp import Sipp, requires_sipp
from tests.voice.stack import NUMBER, Stack, open_stack
from tests.voice.voice_rig import AppServer, document

from sautikit.db import Database
from sautikit.media.audio import SAMPLE_RATE, encode_wav
from sautikit.media.tts import TextToSpeech

pytestmark = requires_sipp

SCENARIOS = Path(__file__).parent / "scenarios"
sqlite_only = pytest.mark.parametrize("empty_database", ["sqlite"], indirect=True)


@pytest.fixture
async def stack(database: Database, app: AppServer, tmp_path: Path) -> AsyncIterator[Stack]:
    async with open_stack(database, app, tmp_path) as opened:
        yield opened


def _gather(stack: Stack, **extra: object) -> None:
    stack.app.route(
        "/voice",
        document(
            {
                "gather": {
                    "input": ["speech", "dtmf"],
                    "speechTimeout": "auto",
                    "timeout": 5,
                    "hints": ["call back", "tomorrow"],
                    "action": stack.app.url("/heard"),
                    "partialResultCallback": stack.app.url("/partial"),
                    **extra,
                }
            },
            {"say": {"text": "We did not hear you."}},
            {"pause": {"length": 10}},  # the caller hangs up
        ),
    )
    stack.app.route("/heard", document({"pause": {"length": 10}}))
    stack.app.route("/partial", document())


@requires_baresip
@sqlite_only
async def test_what_the_caller_says_reaches_the_action_as_speech_result(
    stack: Stack, tmp_path: Path
) -> None:
    speech = await TextToSpeech(tmp_path / "tts").synthesize(
        "Please call me back tomorrow morning."
    )
    voice = tmp_path / "voice.wav"
    quiet = np.zeros(SAMPLE_RATE, np.int16)
    voice.write_bytes(
        encode_wav(np.concatenate([quiet, speech, np.zeros(8 * SAMPLE_RATE, np.int16)]))
    )
    _gather(stack)
    phone = Baresip(tmp_path / "caller", "caller", voice, (37600, 37699))
    await phone.start(seconds=9, dial=f"sip:{NUMBER}@127.0.0.1:{stack.pbx.port}")
    (heard,) = await stack.app.wait_for_hits("/heard", seconds=30)
    await phone.wait()  # it hangs up after 9 s
    fields = heard.fields
    assert "call me back" in str(fields["SpeechResult"]).lower(), fields
    assert 0.0 < float(fields["Confidence"]) <= 1.0
    assert "Digits" not in fields
    for partial in stack.app.hits_to("/partial"):
        assert str(partial.fields["UnstableSpeechResult"]).strip()
        assert int(partial.fields["SequenceNumber"]) >= 1
    (call,) = await stack.wait_for_calls_to_end()
    assert call.status == "completed"


@sqlite_only
async def test_keys_still_answer_a_gather_that_listens_for_speech(stack: Stack) -> None:
    _gather(stack, timeout=8)
    result = await Sipp(
        scenario=SCENARIOS / "caller_keys.xml", remote=stack.sip, service=NUMBER, timeout=30
    ).run()
    assert result.returncode == 0, result.explain()
    (heard,) = await stack.app.wait_for_hits("/heard")
    assert heard.fields["Digits"] == "12"
    assert "SpeechResult" not in heard.fields


@sqlite_only
async def test_silence_runs_the_next_action(stack: Stack) -> None:
    _gather(stack, timeout=2, input=["speech"])
    result = await Sipp(
        scenario=SCENARIOS / "caller_keys.xml", remote=stack.sip, service=NUMBER, timeout=30
    ).run()
    assert result.returncode == 0, result.explain()
    await stack.wait_for_calls_to_end()
    assert stack.app.hits_to("/heard") == []
