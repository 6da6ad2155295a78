"""The stream verb end to end: SIPp or baresip on the line, a real WebSocket server as the
app's stream endpoint, the whole stack between them (tests/voice/stack.py)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.baresip import Baresip, requires_baresip
from tests.media.media_rig import rms
from tests.sipp import Sipp, requires_sipp
from tests.voice.stack import NUMBER, Stack, open_stack
from tests.voice.voice_rig import AppServer, document
from tests.voice.ws_app import Received, stream_app
from websockets.asyncio.server import ServerConnection

from sautikit.db import Database
from sautikit.media.audio import SAMPLE_RATE, encode_wav
from sautikit.media.g711 import ulaw_decode, ulaw_encode
from sautikit.media.tts import TextToSpeech
from sautikit.voice.stream import StreamError, StreamOpener, StreamSpec

pytestmark = requires_sipp

SCENARIOS = Path(__file__).parent / "scenarios"
sqlite_only = pytest.mark.parametrize("empty_database", ["sqlite"], indirect=True)


@pytest.fixture
async def stack(database: Database, app: AppServer, tmp_path: Path) -> AsyncIterator[Stack]:
    async with open_stack(database, app, tmp_path) as opened:
        yield opened


def caller(stack: Stack) -> Sipp:
    """A caller who speaks (recorded A-law speech) and hangs up after 6 s."""
    return Sipp(
        scenario=SCENARIOS / "caller_talks_then_hangs_up.xml",
        remote=stack.sip,
        service=NUMBER,
        timeout=30,
    )


def _json(messages: list[Received]) -> list[dict[str, Any]]:
    return [json.loads(message.data) for message in messages]


def _audio(media: list[dict[str, Any]]) -> np.ndarray:
    return np.concatenate([ulaw_decode(base64.b64decode(m["media"]["payload"])) for m in media])


def _heard(phone: Baresip) -> np.ndarray:
    with wave.open(str(phone.heard())) as heard:
        assert heard.getframerate() == SAMPLE_RATE
        return np.frombuffer(heard.readframes(heard.getnframes()), "<i2")


async def _statuses(stack: Stack, count: int) -> list[str]:
    hits = await stack.app.wait_for_hits("/stream-status", count)
    return [hit.fields["StreamEvent"] for hit in hits]


@sqlite_only
async def test_a_one_way_stream_sends_every_frame_of_both_tracks_live(stack: Stack) -> None:
    async with stream_app() as ws:
        stack.app.route(
            "/voice",
            document(
                {
                    "stream": {
                        "url": ws.url(),
                        "track": "both",
                        "parameters": {"agent": "a1"},
                        "statusCallback": stack.app.url("/stream-status"),
                    }
                },
                {"pause": {"length": 30}},
            ),
        )
        result = await caller(stack).run()
        assert result.returncode == 0, result.explain()
        (call,) = await stack.wait_for_calls_to_end()
        await asyncio.wait_for(ws.closed.wait(), 10)

    messages = _json(ws.messages)
    assert messages[0] == {"event": "connected", "protocol": "Call", "version": "1.0.0"}
    start = messages[1]
    assert start["event"] == "start"
    sid = start["streamSid"]
    assert start["start"]["callSid"] == call.id and start["start"]["streamSid"] == sid
    assert start["start"]["tracks"] == ["inbound", "outbound"]
    assert start["start"]["customParameters"] == {"agent": "a1"}
    assert start["start"]["mediaFormat"] == {
        "encoding": "audio/x-mulaw",
        "sampleRate": 8000,
        "channels": 1,
    }
    assert messages[-1]["event"] == "stop"
    assert messages[-1]["stop"]["callSid"] == call.id
    sequence = [int(message["sequenceNumber"]) for message in messages[1:]]
    assert sequence == list(range(1, len(sequence) + 1))
    assert all(message["streamSid"] == sid for message in messages[1:])
    media = {
        track: [m for m in messages if m["event"] == "media" and m["media"]["track"] == track]
        for track in ("inbound", "outbound")
    }
    for frames in media.values():
        chunks = [int(m["media"]["chunk"]) for m in frames]
        assert chunks == list(range(1, len(chunks) + 1))  # no frame lost or reordered
        assert [int(m["media"]["timestamp"]) for m in frames] == [20 * (c - 1) for c in chunks]
        assert {len(base64.b64decode(m["media"]["payload"])) for m in frames} == {160}
        assert len(frames) >= 4 / 0.02  # the caller stayed about 6 s
    # Sent live, as the call spoke: the frames arrived over most of their own duration.
    arrivals = [
        received.at
        for received, message in zip(ws.messages, messages, strict=True)
        if message["event"] == "media" and message["media"]["track"] == "inbound"
    ]
    assert arrivals[-1] - arrivals[0] >= 0.5 * 0.02 * (len(arrivals) - 1)
    # The caller's speech is on the inbound track; nothing was played to them.
    assert rms(_audio(media["inbound"])) > 300
    assert rms(_audio(media["outbound"])) < 30
    assert await _statuses(stack, 2) == ["stream-started", "stream-stopped"]


async def _echo(connection: ServerConnection, messages: list[Received]) -> None:
    """Send each inbound frame straight back, with a mark after every 25th."""
    async for data in connection:
        messages.append(Received(time.monotonic(), data))
        body = json.loads(data)
        if body["event"] == "media":
            reply = {"event": "media", "streamSid": body["streamSid"], "media": body["media"]}
            await connection.send(json.dumps(reply))
            chunk = int(body["media"]["chunk"])
            if chunk % 25 == 0:
                mark = {
                    "event": "mark",
                    "streamSid": body["streamSid"],
                    "mark": {"name": f"m{chunk}"},
                }
                await connection.send(json.dumps(mark))


@requires_baresip
@sqlite_only
async def test_a_bidirectional_stream_lets_the_caller_hear_itself(
    stack: Stack, tmp_path: Path
) -> None:
    speech = await TextToSpeech(tmp_path / "tts").synthesize(
        "one two three four five six seven eight nine ten, and again from the start"
    )
    voice = tmp_path / "voice.wav"
    voice.write_bytes(encode_wav(np.concatenate([speech, speech])))
    async with stream_app(_echo) as ws:
        stack.app.route(
            "/voice",
            document({"stream": {"url": ws.url(), "bidirectional": True}}),
        )
        phone = Baresip(tmp_path / "caller", "caller", voice, (37400, 37499))
        await phone.start(seconds=7, dial=f"sip:{NUMBER}@127.0.0.1:{stack.pbx.port}")
        await phone.wait()
        (call,) = await stack.wait_for_calls_to_end()
        await asyncio.wait_for(ws.closed.wait(), 10)

    assert call.status == "completed"
    heard = _heard(phone)
    assert rms(heard) > 300, "the caller did not hear their own voice back"
    marks = [m["mark"]["name"] for m in _json(ws.messages) if m["event"] == "mark"]
    assert marks, "no mark came back"
    assert marks == sorted(marks, key=lambda name: int(name[1:]))


async def _clear_later(
    connection: ServerConnection, messages: list[Received], sid: str, after: float = 1.5
) -> None:
    await asyncio.sleep(after)
    messages.append(Received(time.monotonic(), json.dumps({"event": "cleared"})))
    await connection.send(json.dumps({"event": "clear", "streamSid": sid}))


def _speaker(speech: np.ndarray) -> Any:
    """Plays ``speech`` to the caller at once (faster than real time, as apps do), marks its
    end, and clears it 1.5 s later."""

    async def handle(connection: ServerConnection, messages: list[Received]) -> None:
        sid = None
        async for data in connection:
            messages.append(Received(time.monotonic(), data))
            body = json.loads(data)
            if body["event"] == "start":
                sid = body["streamSid"]
                payload = ulaw_encode(speech)
                for offset in range(0, len(payload), 160):
                    chunk = base64.b64encode(payload[offset : offset + 160]).decode()
                    reply = {"event": "media", "streamSid": sid, "media": {"payload": chunk}}
                    await connection.send(json.dumps(reply))
                await connection.send(
                    json.dumps({"event": "mark", "streamSid": sid, "mark": {"name": "end"}})
                )

                asyncio.get_running_loop().create_task(_clear_later(connection, messages, sid))

    return handle


@requires_baresip
@sqlite_only
async def test_speech_played_back_stops_when_the_app_clears_it(
    stack: Stack, tmp_path: Path
) -> None:
    sentence = (
        "Thank you for calling the accounts team. Your balance is two thousand shillings, "
        "and your next payment is due on the first of the month. Please hold the line."
    )
    speech = await TextToSpeech(tmp_path / "tts").synthesize(sentence)
    assert len(speech) > 7 * SAMPLE_RATE
    silence = tmp_path / "silence.wav"
    silence.write_bytes(encode_wav(np.zeros(10 * SAMPLE_RATE, np.int16)))
    async with stream_app(_speaker(speech)) as ws:
        stack.app.route(
            "/voice",
            document({"stream": {"url": ws.url(), "bidirectional": True}}),
        )
        phone = Baresip(tmp_path / "caller", "caller", silence, (37500, 37599))
        await phone.start(seconds=7, dial=f"sip:{NUMBER}@127.0.0.1:{stack.pbx.port}")
        await phone.wait()
        await stack.wait_for_calls_to_end()
        await asyncio.wait_for(ws.closed.wait(), 10)

    events = [json.loads(m.data)["event"] for m in ws.messages]
    # The end mark comes back at the clear, not when the whole sentence would have played.
    assert "mark" in events and events.index("cleared") < events.index("mark")
    cleared_at = ws.messages[events.index("cleared")].at
    assert ws.messages[events.index("mark")].at - cleared_at < 1.0
    heard = _heard(phone)
    second = SAMPLE_RATE
    loud = np.flatnonzero(np.abs(heard) > 1000)
    assert len(loud), "the caller heard none of the speech"
    speaking_from = loud[0]
    # Speech for a while, then nothing: the sentence (over 7 s) was cut about 1.5 s in.
    assert rms(heard[speaking_from : speaking_from + second]) > 300
    after_clear = heard[speaking_from + 3 * second :]
    assert len(after_clear) > second and rms(after_clear) < 50


@sqlite_only
async def test_the_drachtio_subprotocol_sends_metadata_then_l16_frames(stack: Stack) -> None:
    async with stream_app(subprotocols=["audio.drachtio.org"]) as ws:
        stack.app.route(
            "/voice",
            document(
                {"stream": {"url": ws.url(), "subprotocol": "audio.drachtio.org"}},
                {"pause": {"length": 30}},
            ),
        )
        result = await caller(stack).run()
        assert result.returncode == 0, result.explain()
        (call,) = await stack.wait_for_calls_to_end()
        await asyncio.wait_for(ws.closed.wait(), 10)
    assert ws.subprotocols == ["audio.drachtio.org"]
    first, *frames = ws.messages
    metadata = json.loads(first.data)
    assert metadata["callSid"] == call.id and metadata["sampleRate"] == 8000
    assert metadata["mixType"] == "mono"
    assert all(isinstance(frame.data, bytes) and len(frame.data) == 320 for frame in frames)
    assert len(frames) >= 4 / 0.02
    audio = np.frombuffer(b"".join(frame.data for frame in frames), "<i2")  # type: ignore[misc]
    assert rms(audio) > 300


@sqlite_only
async def test_a_server_refusing_the_subprotocol_refuses_the_stream(stack: Stack) -> None:
    async with stream_app() as ws:  # accepts no subprotocol
        stack.app.route(
            "/voice",
            document(
                {
                    "stream": {
                        "url": ws.url(),
                        "subprotocol": "audio.drachtio.org",
                        "statusCallback": stack.app.url("/stream-status"),
                    }
                },
                {"redirect": {"url": stack.app.url("/next")}},
            ),
        )
        stack.app.route("/next", document({"hangup": {}}))
        result = await caller(stack).run()
        (call,) = await stack.wait_for_calls_to_end()
    (status,) = await stack.app.wait_for_hits("/stream-status")
    assert status.fields["StreamEvent"] == "stream-error"
    assert "subprotocol" in status.fields["StreamError"]
    assert stack.app.hits_to("/next"), "the call did not go on after the refused stream"
    assert call.status == "completed"
    del result


@sqlite_only
async def test_the_api_stops_a_forked_stream_while_the_call_goes_on(stack: Stack) -> None:
    async with stream_app() as ws:
        stack.app.route(
            "/voice",
            document(
                {
                    "stream": {
                        "url": ws.url(),
                        "name": "tap",
                        "statusCallback": stack.app.url("/stream-status"),
                    }
                },
                {"pause": {"length": 30}},
            ),
        )
        running = asyncio.create_task(caller(stack).run())
        for _ in range(100):
            if len(ws.messages) > 10:
                break
            await asyncio.sleep(0.05)
        (call,) = await stack.calls()
        stopped = await stack.api.post(
            f"/v1/calls/{call.id}",
            json={"stream": "stopped", "stream_name": "tap"},
            headers=stack.headers,
        )
        assert stopped.status_code == 200, stopped.text
        await asyncio.wait_for(ws.closed.wait(), 5)
        live = (await stack.calls())[0].status
        result = await running
    assert live == "answered"  # the stream ended, the call did not
    assert result.returncode == 0, result.explain()
    assert _json(ws.messages)[-1]["event"] == "stop"
    assert await _statuses(stack, 2) == ["stream-started", "stream-stopped"]
    wrong = await stack.api.post(
        f"/v1/calls/{call.id}", json={"stream_name": "tap"}, headers=stack.headers
    )
    assert wrong.status_code in (400, 409, 422)


async def test_a_stream_to_a_private_address_is_refused_unless_the_operator_allows_it() -> None:
    async with stream_app() as ws:
        spec = StreamSpec(url=ws.url())
        with pytest.raises(StreamError) as refused:
            await StreamOpener(allow_private=False).open(spec, object())  # type: ignore[arg-type]
        assert refused.value.code == "stream.address_refused"
        stream = await StreamOpener(allow_private=True).open(spec, object())  # type: ignore[arg-type]
        stream.stop()
    with pytest.raises(StreamError) as gone:
        await StreamOpener(allow_private=True).open(spec, object())  # type: ignore[arg-type]
    assert gone.value.code == "stream.unreachable"


@sqlite_only
async def test_keys_the_caller_presses_reach_the_stream(stack: Stack) -> None:
    async with stream_app() as ws:
        stack.app.route(
            "/voice",
            document({"stream": {"url": ws.url()}}, {"pause": {"length": 30}}),
        )
        result = await Sipp(
            scenario=SCENARIOS / "caller_keys.xml", remote=stack.sip, service=NUMBER, timeout=30
        ).run()
        assert result.returncode == 0, result.explain()
        await stack.wait_for_calls_to_end()
        await asyncio.wait_for(ws.closed.wait(), 10)
    dtmf = [m["dtmf"] for m in _json(ws.messages) if m["event"] == "dtmf"]
    assert [key["digit"] for key in dtmf] == ["1", "2", "#"]
    assert {key["track"] for key in dtmf} == {"inbound_track"}
