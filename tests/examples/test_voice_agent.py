"""The offline voice-agent example (examples/voice-agent) on a real call: baresip talks to
it through Sautikit's stream verb; speech in through VAD and Whisper, the rule-based brain,
espeak-ng speech out, and barge-in when the caller talks over the greeting."""

from __future__ import annotations

import asyncio
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from tests.baresip import Baresip, requires_baresip
from tests.examples.conftest import load_example
from tests.media.media_rig import rms
from tests.voice.conftest import app, app_server  # noqa: F401 - the loopback app fixtures
from tests.voice.stack import NUMBER, Stack, open_stack
from tests.voice.voice_rig import AppServer, document
from websockets.asyncio.server import serve

from sautikit.db import Database
from sautikit.media.audio import SAMPLE_RATE, encode_wav
from sautikit.media.tts import TextToSpeech
from sautikit.recordings.transcription import WhisperEngine

pytestmark = requires_baresip
sqlite_only = pytest.mark.parametrize("empty_database", ["sqlite"], indirect=True)


@pytest.fixture
async def stack(database: Database, app: AppServer, tmp_path: Path) -> AsyncIterator[Stack]:  # noqa: F811
    async with open_stack(database, app, tmp_path) as opened:
        yield opened


@sqlite_only
async def test_the_agent_greets_listens_answers_and_yields_to_the_caller(
    stack: Stack, tmp_path: Path
) -> None:
    example = load_example("voice-agent")
    tts = TextToSpeech(tmp_path / "tts")
    agent = example.Agent(tts, WhisperEngine())

    def silence(seconds: float) -> np.ndarray:
        return np.zeros(round(seconds * SAMPLE_RATE), np.int16)

    # The caller talks over the greeting, waits for the answer, then asks another thing.
    voice = tmp_path / "caller.wav"
    voice.write_bytes(
        encode_wav(
            np.concatenate(
                [
                    silence(1.2),
                    await tts.synthesize("Please call me back tomorrow morning."),
                    silence(7.0),
                    await tts.synthesize("I need to speak to someone about my order."),
                    silence(7.0),
                ]
            )
        )
    )
    async with serve(agent.handle, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        stack.app.route(
            "/voice", document(*example.voice_document(f"ws://127.0.0.1:{port}")["actions"])
        )
        phone = Baresip(tmp_path / "caller", "caller", voice, (37700, 37799))
        await phone.start(seconds=20, dial=f"sip:{NUMBER}@127.0.0.1:{stack.pbx.port}")
        (call,) = await stack.wait_for_calls_to_end(seconds=40)
        phone.kill()
        await asyncio.sleep(0.2)

    (conversation,) = agent.conversations
    assert conversation.said[0] == example.GREETING
    assert conversation.barge_ins >= 1, "the agent did not stop for the caller"
    assert "call me back" in conversation.heard[0].lower(), conversation.heard
    assert "call you back" in conversation.said[1]
    assert "order" in conversation.said[2], conversation.heard
    assert call.status == "completed"
    with wave.open(str(phone.heard())) as heard:
        audio = np.frombuffer(heard.readframes(heard.getnframes()), "<i2")
    assert rms(audio) > 300  # the caller heard the agent


def test_the_brain_ends_the_call_on_goodbye() -> None:
    example = load_example("voice-agent")
    assert example.brain("That is all, goodbye.") == (example.GOODBYE, True)
    assert example.brain("What is my balance?")[1] is False
