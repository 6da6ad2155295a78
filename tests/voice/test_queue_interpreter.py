"""The enqueue verb in the interpreter, over a scripted call and queue: announcements between
stretches of hold music, the wait document loop, and what ``action`` is told."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from tests.voice.voice_rig import AppServer, FakeCall, LocalRecordingSink, document

from sautikit.voice.callbacks import AppClient
from sautikit.voice.control import DequeueResult, QueueResult, QueueStanding, QueueStay
from sautikit.voice.interpreter import Interpreter
from sautikit.voice.prompts import PromptCache
from sautikit.voice.queues import announcement, hold_music


@dataclass
class ScriptedTicket:
    """A place in a queue that moves up one each time it is asked, and is taken by an agent
    once ``taken`` is set."""

    queue_id: str = "queue-1"
    position: int = 3
    average: int = 90
    taken: asyncio.Event = field(default_factory=asyncio.Event)
    left_with: list[QueueResult] = field(default_factory=list)

    async def standing(self) -> QueueStanding:
        standing = QueueStanding(self.queue_id, self.position, 3, 10, 12, self.average)
        self.position = max(1, self.position - 1)
        return standing

    async def wait_for_agent(self) -> bool:
        await self.taken.wait()
        return True

    async def talk(self) -> QueueStay:
        return QueueStay("bridged", 40, "agent-call", 65)

    async def leave(self, result: QueueResult) -> QueueStay:
        self.left_with.append(result)
        return QueueStay(result, 12)


@dataclass
class QueuedCall(FakeCall):
    ticket: ScriptedTicket | None = None
    takes_after_says: int = 2

    async def enqueue(self, name: str, *, max_size: int | None) -> ScriptedTicket | None:
        await self._step("enqueue", name, max_size)
        return self.ticket

    async def dequeue(self, name: str, *, timeout: float) -> DequeueResult:  # noqa: ASYNC109
        await self._step("dequeue", name, timeout)
        return DequeueResult("bridged", "caller-call", 40, 65)

    async def say(
        self, text: str, *, language: str, voice: str | None, loop: int, interruptible: bool
    ) -> object:
        heard = await super().say(
            text, language=language, voice=voice, loop=loop, interruptible=interruptible
        )
        if self.ticket is not None and len(self.said()) >= self.takes_after_says:
            self.ticket.taken.set()
        await asyncio.sleep(0)
        return heard


@pytest.fixture
def call(tmp_path: Path) -> QueuedCall:
    return QueuedCall(spool=tmp_path / "spool", ticket=ScriptedTicket())


def _interpreter(call: QueuedCall, http: httpx.AsyncClient, tmp_path: Path) -> Interpreter:
    return Interpreter(
        call,  # type: ignore[arg-type]
        AppClient(http, "whsec_queue", timeout=1.0),
        recordings=LocalRecordingSink(tmp_path / "recordings"),
        prompts=PromptCache(http),
        play_allowed=lambda host: host == "127.0.0.1",
    )


async def test_position_and_wait_are_announced_between_hold_music_until_an_agent_takes_them(
    app: AppServer, call: QueuedCall, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    start = app.route(
        "/voice",
        document(
            {
                "enqueue": {
                    "name": "support",
                    "maxSize": 10,
                    "announcePosition": True,
                    "announceWaitTime": True,
                    "announceEvery": 10,
                    "action": app.url("/left"),
                }
            }
        ),
    )
    app.route("/left", document({"hangup": {}}))
    await asyncio.wait_for(_interpreter(call, http, tmp_path).run(start), 10)
    assert call.log[1] == ("enqueue", "support", 10)
    assert call.said()[:2] == [
        "You are number 3 in the queue. The expected wait is about 4 minutes.",
        "You are number 2 in the queue. The expected wait is about 3 minutes.",
    ]
    assert ("play", len(hold_music()), 1_000_000) in call.log
    (left,) = app.hits_to("/left")
    assert left.fields["QueueResult"] == "bridged"
    assert left.fields["QueueTime"] == "40"
    assert left.fields["DequeuingCallId"] == "agent-call"
    assert left.fields["QueueCallDuration"] == "65"
    assert left.fields["QueueSid"] == "queue-1"


async def test_the_wait_document_loops_and_leave_ends_the_stay(
    app: AppServer, call: QueuedCall, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    call.takes_after_says = 1000
    waits = []

    def wait(hit: object) -> object:
        waits.append(hit)
        if len(waits) < 3:
            return document(
                {"say": {"text": "Please hold."}}, {"dial": {"number": "+254720000001"}}
            )
        return document({"leave": {}})

    start = app.route(
        "/voice",
        document({"enqueue": {"name": "support", "waitUrl": app.url("/wait")}}, {"hangup": {}}),
    )
    app.route("/wait", wait)  # type: ignore[arg-type]
    await asyncio.wait_for(_interpreter(call, http, tmp_path).run(start), 10)
    assert call.said() == ["Please hold.", "Please hold."]
    assert call.ticket is not None and call.ticket.left_with == ["leave"]
    assert [code for code, _ in call.errors] == ["application.not_allowed_in_queue"] * 2
    assert "dial" not in call.steps()
    assert waits[0].fields["QueuePosition"] == "3"  # type: ignore[attr-defined]
    assert waits[1].fields["QueuePosition"] == "2"  # type: ignore[attr-defined]


async def test_a_full_queue_goes_on_with_the_next_action(
    app: AppServer, call: QueuedCall, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    call.ticket = None
    start = app.route(
        "/voice",
        document({"enqueue": {"name": "support"}}, {"say": {"text": "Call back later."}}),
    )
    await asyncio.wait_for(_interpreter(call, http, tmp_path).run(start), 10)
    assert call.said() == ["Call back later."]


def test_announcements_say_only_what_is_asked_and_known() -> None:
    standing = QueueStanding("q", 1, 4, 10, 5, 0)
    assert announcement(standing, position=True, wait_time=True) == "You are next in the queue."
    assert announcement(standing, position=False, wait_time=True) is None
    busy = QueueStanding("q", 2, 4, 10, 5, 30)
    assert announcement(busy, position=False, wait_time=True) == (
        "The expected wait is about 1 minute."
    )
