"""``sautikit serve`` under SIGTERM: drain, keep the API up for live calls, end cleanly.

Each test runs the real process (tests/serve_process.py) with a real call on it — the API
places it, a SIPp callee on the trunk answers — and signals it the way an orchestrator
does. What is asserted is what an operator and an app developer would see: ``/readyz``,
the API's answers during the grace, the SIP the callee receives, how the process exits,
and the call's record, bill, events and recording afterwards.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from tests.serve_process import (
    CALLEE,
    NUMBER,
    ServeProcess,
    calls,
    events,
    seed,
)
from tests.sipp import SCENARIOS as SIP_SCENARIOS
from tests.sipp import Sipp, requires_sipp
from tests.voice.voice_rig import AppServer, document, serve_app

from sautikit.db import Database
from sautikit.db.models import Recording, WalletReservation

pytestmark = [pytest.mark.sipp, requires_sipp]

PBX_SCENARIOS = Path(__file__).parent / "pbx" / "scenarios"
#: Room for a loaded machine on top of the promised grace + 5 s (the bound, not a timing).
EXIT_SLACK = 10.0


@pytest.fixture(scope="module")
def app_server() -> Iterator[AppServer]:
    with serve_app() as server:
        yield server


@pytest.fixture
def app(app_server: AppServer) -> Iterator[AppServer]:
    app_server.reset()
    yield app_server
    app_server.reset()


async def until(condition_met: object, what: str, seconds: float = 60.0) -> None:
    """Poll an async predicate (a zero-argument coroutine function) until it holds."""
    assert callable(condition_met)
    for _ in range(int(seconds / 0.05)):
        if await condition_met():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


async def place_call(api: httpx.AsyncClient, action_url: str) -> str:
    placed = await api.post(
        "/v1/calls", json={"to": CALLEE, "from": NUMBER, "action_url": action_url}
    )
    assert placed.status_code == 201, placed.text
    call_id: str = placed.json()["id"]
    return call_id


async def holds(database: Database) -> int:
    async with database.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(WalletReservation)) or 0)


async def test_sigterm_drains_while_the_api_still_controls_the_live_call(
    served_database: tuple[str, Database], app: AppServer, tmp_path: Path
) -> None:
    """During the grace: /readyz 503, new calls 503 (SIP and API), the live call still
    answers GET and can be hung up through the API; with no call left the process exits."""
    url, database = served_database
    answered = app.route("/answered", document({"pause": {"length": 60}}))
    async with Sipp(scenario=SIP_SCENARIOS / "uas_answer.xml", timeout=60) as callee:
        seeded = await seed(database, voice_url=app.url("/voice"), trunk_port=callee.port)
        async with (
            ServeProcess(tmp_path / "var", url, grace=60) as serve,
            serve.api(seeded.headers) as api,
        ):
            assert (await api.get("/readyz")).status_code == 200
            call_id = await place_call(api, answered)

            async def app_answered() -> bool:
                return bool(app.hits_to("/answered"))

            await until(app_answered, "the callee answered and the app was asked")
            serve.send_signal(signal.SIGTERM)

            async def not_ready() -> bool:
                return (await api.get("/readyz")).status_code == 503

            await until(not_ready, "/readyz answering 503", seconds=15)
            shown = await api.get(f"/v1/calls/{call_id}")
            assert shown.status_code == 200 and shown.json()["status"] == "answered"
            refused = await api.post(
                "/v1/calls", json={"to": CALLEE, "from": NUMBER, "action_url": answered}
            )
            assert refused.status_code == 503
            assert refused.json()["error"]["code"] == "service.unavailable"
            caller = await Sipp(
                scenario=SIP_SCENARIOS / "uac_offer_g711_dtmf.xml",
                remote=serve.sip,
                service=NUMBER,
            ).run()
            assert "503" in caller.explain()

            hung_up = await api.post(f"/v1/calls/{call_id}", json={"status": "completed"})
            assert hung_up.status_code == 200, hung_up.text
            result = await callee.wait()
            assert result.returncode == 0, result.explain()  # the callee got our BYE
            assert await serve.wait_exit(EXIT_SLACK) == 0, serve.log[-3000:]

    (call,) = await calls(database)
    assert (call.status, call.hangup_cause) == ("completed", "normal_clearing")
    assert call.ended_at is not None and call.price_minor is not None and call.price_minor > 0
    assert (await events(database, call.id))[-1] == "call.completed"
    assert await holds(database) == 0


async def test_sigterm_ends_a_recording_call_cleanly_at_the_end_of_the_grace(
    served_database: tuple[str, Database], app: AppServer, tmp_path: Path
) -> None:
    """A call still live when the grace ends gets BYE; its row is finished, billed and
    released, and the recording in progress is stored with its callback and event."""
    url, database = served_database
    grace = 1.0
    answered = app.route(
        "/answered",
        document({"record": {"action": app.url("/recorded"), "timeout": 30, "maxLength": 120}}),
    )
    app.route("/recorded", document({"hangup": {}}))
    async with Sipp(scenario=PBX_SCENARIOS / "callee_answers_and_speaks.xml", timeout=60) as callee:
        seeded = await seed(database, voice_url=app.url("/voice"), trunk_port=callee.port)
        async with (
            ServeProcess(tmp_path / "var", url, grace=grace) as serve,
            serve.api(seeded.headers) as api,
        ):
            call_id = await place_call(api, answered)

            async def recording() -> bool:
                async with database.sessions() as session:
                    return bool(await session.scalar(select(func.count(Recording.id))))

            await until(recording, "the record verb's recording began")
            await asyncio.sleep(1.5)  # some of the callee's speech reaches the spool
            serve.send_signal(signal.SIGTERM)
            assert await serve.wait_exit(grace + 5 + EXIT_SLACK) == 0, serve.log[-3000:]
        result = await callee.wait()
    assert result.returncode == 0, result.explain()  # the callee got our BYE

    (call,) = await calls(database)
    assert call.id == call_id
    assert (call.status, call.hangup_cause) == ("completed", "normal_clearing")
    assert call.price_minor is not None and call.price_minor > 0
    assert await holds(database) == 0
    kinds = await events(database, call.id)
    assert "call.recording.ready" in kinds and "call.completed" in kinds
    async with database.sessions() as session:
        (stored,) = (await session.scalars(select(Recording))).all()
    assert stored.status == "ready" and stored.size_bytes
    (callback,) = app.hits_to("/recorded")
    assert callback.fields["RecordingSid"] == stored.id
