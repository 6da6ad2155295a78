"""A rig for the voice tests: a real HTTP app on loopback, and a scripted call.

:class:`AppServer` is a small ASGI app served by uvicorn on 127.0.0.1 and an ephemeral
port (on a thread, once per session: see conftest.py), standing in for the developer's
app: each path answers what the test scripted (a fixed document, a status, a slow
answer, or a function of the request) and every request is kept.

:class:`FakeCall` implements :class:`~sautikit.voice.control.CallControl` without sockets:
the caller's key presses, recordings and dial outcomes are scripted, and what the call did
(answered, said, played, recorded, dialled, hung up) is logged in order.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl

import numpy as np
import uvicorn

from sautikit.ids import new_id
from sautikit.media.audio import encode_wav
from sautikit.media.player import tone
from sautikit.voice.control import (
    CallControl,
    CallEnded,
    ConferenceOptions,
    ConferenceResult,
    ConferenceStatus,
    DialResult,
    DialTarget,
    DigitsResult,
    HangupCause,
    Int16Array,
    PlayOutcome,
    RecordingInfo,
    RecordingIntent,
    RecordingSource,
    RecordResult,
)

# --- the app --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hit:
    """One request the app received."""

    method: str
    path: str
    query: bytes
    headers: dict[str, str]
    body: bytes

    @property
    def fields(self) -> dict[str, Any]:
        """The fields as the app reads them: the query of a GET, the form of a POST (the
        default, every value a string), or the JSON of a POST from a JSON workspace."""
        if self.method == "GET":
            return dict(parse_qsl(self.query.decode(), keep_blank_values=True))
        if self.headers.get("content-type") == "application/json":
            parsed: dict[str, Any] = json.loads(self.body)
            return parsed
        assert self.headers.get("content-type") == "application/x-www-form-urlencoded"
        return dict(parse_qsl(self.body.decode(), keep_blank_values=True, strict_parsing=True))


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"


Handler = Callable[[Hit], Reply | Awaitable[Reply]]


def document(*actions: dict[str, Any]) -> Reply:
    return Reply(body=json.dumps({"actions": list(actions)}).encode())


class AppServer:
    """The app, served by uvicorn on a thread of its own so one server lasts the session;
    :meth:`reset` gives each test a clean one."""

    def __init__(self) -> None:
        self.routes: dict[str, Handler] = {}
        self.hits: list[Hit] = []
        self.port = 0
        self._release = threading.Event()

    def reset(self) -> None:
        self._release.set()  # slow answers still pending from the last test finish now
        self._release = threading.Event()
        self.routes.clear()
        self.hits.clear()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def route(self, path: str, reply: Reply | Handler) -> str:
        self.routes[path] = reply if callable(reply) else (lambda _hit: reply)
        return self.url(path)

    def recorded_dial(self, number: str) -> None:
        """``/voice`` dials ``number`` recording from answer; its action ``/dialled``
        (which gets the recording) hangs up."""
        dial = {"number": number, "record": "record-from-answer", "action": self.url("/dialled")}
        self.route("/voice", document({"dial": dial}))
        self.route("/dialled", document({"hangup": {}}))

    def slow(self, path: str) -> tuple[str, asyncio.Event]:
        """A path that does not answer before the test ends; the event (of the test's
        loop) is set when a request reaches it."""
        loop = asyncio.get_running_loop()
        reached = asyncio.Event()
        release = self._release

        async def stall(_hit: Hit) -> Reply:
            loop.call_soon_threadsafe(reached.set)
            await asyncio.to_thread(release.wait, 30)
            return document()

        return self.route(path, stall), reached

    def hits_to(self, path: str) -> list[Hit]:
        return [hit for hit in self.hits if hit.path == path]

    async def wait_for_hits(self, path: str, count: int = 1, seconds: float = 20) -> list[Hit]:
        """The requests to ``path`` once ``count`` have arrived: a callback sent after a
        call ends (a dial's action, with its recording) may trail the call's last row."""
        for _ in range(int(seconds * 20)):
            if len(self.hits_to(path)) >= count:
                break
            await asyncio.sleep(0.05)
        return self.hits_to(path)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        hit = Hit(
            scope["method"],
            scope["path"],
            scope["query_string"],
            {name.decode(): value.decode() for name, value in scope["headers"]},
            body,
        )
        self.hits.append(hit)
        handler = self.routes.get(hit.path)
        reply = Reply(404, b"no such path") if handler is None else handler(hit)
        if not isinstance(reply, Reply):
            reply = await reply
        headers = [(b"content-type", reply.content_type.encode())]
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": reply.body})


@contextmanager
def serve_app() -> Iterator[AppServer]:
    """Serve an :class:`AppServer` on 127.0.0.1 and an ephemeral port until the end."""
    app = AppServer()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="off",
        access_log=False,
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="voice-test-app", daemon=True)
    thread.start()
    if not _wait_until(lambda: server.started or not thread.is_alive()) or not server.started:
        raise RuntimeError("the test app did not start")
    app.port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield app
    finally:
        app.reset()
        server.should_exit = True
        thread.join(10)


def _wait_until(condition: Callable[[], bool]) -> bool:
    for _ in range(1000):
        if condition():
            return True
        time.sleep(0.01)
    return False


def wav_bytes(seconds: float = 0.2) -> bytes:
    return encode_wav(tone(440.0, seconds))


# --- the call -------------------------------------------------------------------------------


@dataclass
class ScriptedRecording:
    duration: float = 4.0
    ended_by: Literal["silence", "max_length", "key", "hangup", "stopped"] = "silence"
    key: str | None = None
    empty: bool = False


@dataclass
class FakeCall:
    spool: Path
    call_id: str = "call-1"
    workspace_id: str = "ws-1"
    from_: str = "+254711000001"
    to: str = "+254700000001"
    direction: Literal["inbound", "outbound"] = "inbound"
    answered: bool = False
    keys: deque[str] = field(default_factory=deque)
    """Keys the caller presses, in order, as soon as anything listens for them."""
    recordings: deque[ScriptedRecording] = field(default_factory=deque)
    dials: deque[DialResult] = field(default_factory=deque)
    room_events: list[ConferenceStatus] = field(default_factory=list)
    hang_up_on: str | None = None
    """The caller hangs up when this happens ("say", "record", "dial", …)."""
    block_on: str | None = None
    """This media step never finishes by itself (a live redirect must abandon it)."""
    log: list[tuple[Any, ...]] = field(default_factory=list)
    intents: list[RecordingIntent] = field(default_factory=list)
    """What each ``record`` was told to do with its recording."""
    errors: list[tuple[str, str]] = field(default_factory=list)
    cause: HangupCause | str | None = None
    ended: bool = False
    blocked: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def status(self) -> str:
        if self.ended:
            return "completed"
        return "answered" if self.answered else "ringing"

    def said(self) -> list[str]:
        return [entry[1] for entry in self.log if entry[0] == "say"]

    def steps(self) -> list[str]:
        return [entry[0] for entry in self.log]

    async def _step(self, name: str, *details: Any) -> None:
        if self.ended:
            raise CallEnded
        self.log.append((name, *details))
        if self.hang_up_on == name:
            self.ended, self.cause = True, "caller_hangup"
            raise CallEnded
        if self.block_on == name:
            self.blocked.set()
            await asyncio.Event().wait()

    async def answer(self) -> None:
        await self._step("answer")
        self.answered = True

    async def reject(self, reason: Literal["rejected", "busy"]) -> None:
        self.log.append(("reject", reason))
        self.ended, self.cause = True, reason

    async def hangup(self, cause: HangupCause = "normal_clearing") -> None:
        if not self.ended:
            self.log.append(("hangup", cause))
            self.ended, self.cause = True, cause

    async def record_error(self, code: str, message: str) -> None:
        self.errors.append((code, message))

    def _heard(self, interruptible: bool) -> PlayOutcome:
        return PlayOutcome(self.keys[0] if interruptible and self.keys else None)

    async def say(
        self, text: str, *, language: str, voice: str | None, loop: int, interruptible: bool
    ) -> PlayOutcome:
        await self._step("say", text, language, voice, loop)
        return self._heard(interruptible)

    async def play(self, audio: Int16Array, *, loop: int, interruptible: bool) -> PlayOutcome:
        await self._step("play", len(audio), loop)
        return self._heard(interruptible)

    async def pause(self, seconds: float) -> None:
        await self._step("pause", seconds)

    async def collect_digits(
        self,
        *,
        num_digits: int,
        finish_on_key: str,
        timeout: float,  # noqa: ASYNC109 - the protocol's name
    ) -> DigitsResult:
        await self._step("collect", num_digits, finish_on_key, timeout)
        digits = ""
        while self.keys:
            key = self.keys.popleft()
            if key in finish_on_key:
                return DigitsResult(digits, "key", key)
            digits += key
            if num_digits and len(digits) >= num_digits:
                return DigitsResult(digits, "max_digits")
        return DigitsResult(digits, "timeout")

    def _spool(self, seconds: float, channels: int) -> Path:
        path = self.spool / f"spool-{len(self.log)}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        samples = tone(440.0, seconds)
        if channels == 2:
            samples = np.stack([samples, samples // 2], axis=1)
        path.write_bytes(encode_wav(samples, channels=channels))
        return path

    async def record(
        self,
        *,
        max_length: float,
        silence_timeout: float,
        finish_on_key: str,
        trim: bool,
        channels: int,
        intent: RecordingIntent = RecordingIntent(),
    ) -> RecordResult:
        if self.ended:
            raise CallEnded
        self.intents.append(intent)
        self.log.append(("record", max_length, silence_timeout, finish_on_key, trim, channels))
        script = self.recordings.popleft() if self.recordings else ScriptedRecording()
        if self.hang_up_on == "record":
            self.ended, self.cause = True, "caller_hangup"
            script.ended_by = "hangup"
        if self.block_on == "record":
            self.blocked.set()
            await asyncio.Event().wait()
        duration = 0.0 if script.empty else script.duration
        path = self._spool(max(duration, 0.02), channels)
        return RecordResult(path, duration, channels, script.ended_by, script.key, script.empty)

    async def dial(
        self,
        targets: list[DialTarget],
        *,
        caller_id: str | None,
        timeout: float,  # noqa: ASYNC109 - the protocol's name
        record: Literal["do-not-record", "record-from-answer", "record-from-ringing"],
        recording_channels: int,
        hangup_on_star: bool,
    ) -> DialResult:
        if self.ended:
            raise CallEnded
        self.log.append(
            ("dial", targets, caller_id, timeout, record, recording_channels, hangup_on_star)
        )
        result = self.dials.popleft() if self.dials else DialResult("completed", "child-1", 12)
        if record != "do-not-record" and result.status == "completed":
            path = self._spool(result.duration, recording_channels)
            recording = RecordResult(path, result.duration, recording_channels, "stopped")
            result = DialResult(result.status, result.call_id, result.duration, recording)
        if self.hang_up_on == "dial":
            self.ended, self.cause = True, "caller_hangup"
        return result

    async def conference(
        self,
        name: str,
        options: ConferenceOptions,
        *,
        on_status: Callable[[ConferenceStatus], None],
        on_recording: Callable[[RecordResult], Awaitable[None]],
    ) -> ConferenceResult:
        wait_audio = options.wait_audio
        await self._step(
            "conference",
            name,
            {
                "muted": options.muted,
                "beep": options.beep,
                "start_on_enter": options.start_on_enter,
                "end_on_exit": options.end_on_exit,
                "max_participants": options.max_participants,
                "wait_audio": None if wait_audio is None else len(wait_audio),
                "record": options.record,
            },
        )
        for event in self.room_events:
            on_status(event)
        if options.record:
            await on_recording(RecordResult(self._spool(3.0, 1), 3.0, 1, "stopped"))
        return ConferenceResult("room_ended")


class LocalRecordingSink:
    """A recording sink for interpreter tests: moves each file to ``directory`` as
    ``<sid>.wav`` and answers its ``file://`` URL (the real pipeline stores objects and
    answers signed HTTP URLs). ``transcribe`` is accepted and ignored."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def recording_finished(
        self,
        call: CallControl,
        result: RecordResult,
        *,
        source: RecordingSource,
        transcribe: bool,
        transcribe_callback: str | None,
    ) -> RecordingInfo:
        sid = new_id()
        target = self.directory / f"{sid}.wav"

        def move() -> None:
            self.directory.mkdir(parents=True, exist_ok=True)
            shutil.move(result.path, target)

        await asyncio.to_thread(move)
        return RecordingInfo(
            sid, target.resolve().as_uri(), round(result.duration), result.channels
        )

    async def discard(self, result: RecordResult) -> None:
        await asyncio.to_thread(result.path.unlink, missing_ok=True)
