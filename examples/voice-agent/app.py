"""An offline voice agent on Sautikit's ``stream`` verb: speech in, a "brain", speech out.

The call's webhook answers :func:`voice_document`: one bidirectional ``stream`` to this
agent's WebSocket. For each call the agent

1. greets the caller (espeak-ng through Sautikit's TextToSpeech, sent as µ-law ``media``
   messages, then a ``mark``);
2. listens: WebRTC's voice-activity detector finds each utterance (0.5 s of silence ends
   it), and offline Whisper turns it into words;
3. answers with :func:`brain` — a few rules standing in for an LLM — spoken the same way;
4. stops talking the moment the caller talks over it (barge-in: a ``clear`` message);
5. hangs up (closes the stream) after saying goodbye.

Nothing leaves the machine: the models ship in wheels. Run it with
``python examples/voice-agent/app.py 8765`` and point a number's ``voice_url`` at a web
app answering ``voice_document("ws://your-host:8765")``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import sys
import tempfile
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from websockets.asyncio.server import ServerConnection, serve

from sautikit.media.audio import FRAME_SAMPLES
from sautikit.media.g711 import ulaw_decode, ulaw_encode
from sautikit.media.tts import TextToSpeech
from sautikit.recordings.transcription import WhisperEngine
from sautikit.speech.vad import VoiceActivityDetector

log = logging.getLogger("voice-agent")

GREETING = "Hello, this is the Acme assistant. How can I help you today?"
GOODBYE = "Goodbye, and thank you for calling."
_START_FRAMES = 3  # voiced frames in a row that start an utterance
_END_FRAMES = 25  # 0.5 s of silence ends it
_LEAD_FRAMES = 15  # 0.3 s kept from before the start


def voice_document(stream_url: str) -> dict[str, Any]:
    """What the call's webhook answers: hand the call to this agent, both ways."""
    return {"actions": [{"stream": {"url": stream_url, "bidirectional": True}}]}


def brain(heard: str) -> tuple[str, bool]:
    """The reply to what the caller said, and whether the call should end after it."""
    words = heard.lower()
    if any(word in words for word in ("bye", "that's all", "that is all", "nothing else")):
        return GOODBYE, True
    if "balance" in words or "account" in words:
        return "Your balance is two thousand shillings. Anything else?", False
    if "call" in words and "back" in words:
        return "Sure, we will call you back tomorrow morning. Anything else?", False
    if "order" in words or "delivery" in words:
        return "Your order will arrive on Monday afternoon. Anything else?", False
    return "Sorry, I can help with your balance, an order, or a call back.", False


@dataclass
class Conversation:
    """What one call's agent heard and said, in order (for logs and tests)."""

    heard: list[str] = field(default_factory=list)
    said: list[str] = field(default_factory=list)
    barge_ins: int = 0


class Agent:
    """Serves the agent's WebSocket; one :class:`Conversation` per call."""

    def __init__(self, tts: TextToSpeech, recognizer: WhisperEngine) -> None:
        self.tts = tts
        self.recognizer = recognizer
        self.conversations: list[Conversation] = []

    async def handle(self, connection: ServerConnection) -> None:
        conversation = Conversation()
        self.conversations.append(conversation)
        sid = ""
        vad = VoiceActivityDetector()
        lead: deque[np.ndarray] = deque(maxlen=_LEAD_FRAMES)  # soft word onsets
        utterance: list[np.ndarray] = []
        voiced_run = quiet_run = 0
        speaking = False  # the caller
        talking: set[str] = set()  # marks of agent speech not played yet
        hang_up_after: str | None = None
        counter = 0

        async def say(text: str) -> str:
            nonlocal counter
            counter += 1
            mark = f"reply-{counter}"
            conversation.said.append(text)
            audio = ulaw_encode(await self.tts.synthesize(text))
            for offset in range(0, len(audio), FRAME_SAMPLES):
                chunk = base64.b64encode(audio[offset : offset + FRAME_SAMPLES]).decode()
                await connection.send(
                    json.dumps({"event": "media", "streamSid": sid, "media": {"payload": chunk}})
                )
            await connection.send(
                json.dumps({"event": "mark", "streamSid": sid, "mark": {"name": mark}})
            )
            talking.add(mark)
            return mark

        async def answer(audio: np.ndarray) -> None:
            nonlocal hang_up_after
            transcript = await asyncio.to_thread(self.recognizer.transcribe, audio)
            if not transcript.text:
                return
            conversation.heard.append(transcript.text)
            reply, last = brain(transcript.text)
            mark = await say(reply)
            if last:
                hang_up_after = mark

        async for message in connection:
            event = json.loads(message)
            if event["event"] == "start":
                sid = event["streamSid"]
                await say(GREETING)
            elif event["event"] == "mark":
                name = event["mark"]["name"]
                talking.discard(name)
                if name == hang_up_after:
                    break  # the goodbye has played: closing the stream ends the call
            elif event["event"] == "media":
                frame = ulaw_decode(base64.b64decode(event["media"]["payload"]))
                voiced = len(frame) == FRAME_SAMPLES and vad.is_speech(frame)
                if not speaking:
                    lead.append(frame)
                    voiced_run = voiced_run + 1 if voiced else 0
                    if voiced_run >= _START_FRAMES:
                        speaking, utterance, quiet_run = True, list(lead)[:-1], 0
                        if talking:  # the caller talks over the agent: stop at once
                            conversation.barge_ins += 1
                            await connection.send(json.dumps({"event": "clear", "streamSid": sid}))
                if speaking:
                    utterance.append(frame)
                    quiet_run = 0 if voiced else quiet_run + 1
                    if quiet_run >= _END_FRAMES:
                        speaking, voiced_run = False, 0
                        await answer(np.concatenate(utterance))
            elif event["event"] == "stop":
                break


async def main(port: int) -> None:
    logging.basicConfig(level=logging.INFO)
    with tempfile.TemporaryDirectory() as cache:
        recognizer = WhisperEngine()
        recognizer.load()
        agent = Agent(TextToSpeech(cache), recognizer)
        async with serve(agent.handle, "0.0.0.0", port):
            log.info("voice agent on ws://0.0.0.0:%d", port)
            await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 8765))
