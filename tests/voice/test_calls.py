"""Calls end to end: SIPp and the test phone on the line, the app on loopback HTTP.

Each test runs the real stack (tests/voice/stack.py) — SIP, RTP, the call manager, the
interpreter, the database and the API — and asserts what the caller, the callee and the
app developer would see: the app's callbacks, the recordings, the call records and their
events, and the SIP answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from tests.media.media_rig import amplitude_at, read_wav_channels, rms
from tests.sipp import SCENARIOS as SIP_SCENARIOS
from tests.sipp import Sipp, requires_sipp
from tests.voice.stack import CALLEE, NUMBER, Stack, open_stack
from tests.voice.voice_rig import AppServer, Reply, document

from sautikit.db import Database
from sautikit.db.models import Call, Rate, Trunk
from sautikit.db.types import utcnow
from sautikit.media import tone
from sautikit.media.audio import encode_wav
from sautikit.pbx import CallScript, Phone

pytestmark = requires_sipp

SCENARIOS = Path(__file__).parent / "scenarios"
PBX_SCENARIOS = Path(__file__).parent.parent / "pbx" / "scenarios"
sqlite_only = pytest.mark.parametrize("empty_database", ["sqlite"], indirect=True)


@pytest.fixture
async def stack(database: Database, app: AppServer, tmp_path: Path) -> AsyncIterator[Stack]:
    async with open_stack(database, app, tmp_path) as opened:
        yield opened


def caller(stack: Stack, scenario: Path, timeout: float = 30) -> Sipp:
    return Sipp(scenario=scenario, remote=stack.sip, service=NUMBER, timeout=timeout)


async def test_voicemail(stack: Stack) -> None:
    """The seed's voicemail box: say, record until #, the action callback, hang up."""
    stack.app.route(
        "/voice",
        document(
            {"say": {"text": "Leave a message.", "language": "en-US"}},
            {
                "record": {
                    "action": stack.app.url("/voicemail/recording"),
                    "method": "POST",
                    "timeout": 10,
                    "maxLength": 120,
                    "finishOnKey": "#",
                    "transcribe": True,
                    "transcribeCallback": stack.app.url("/voicemail/transcript"),
                }
            },
        ),
    )
    stack.app.route("/voicemail/recording", document({"hangup": {}}))
    result = await caller(stack, SCENARIOS / "caller_voicemail.xml").run()
    assert result.returncode == 0, result.explain()

    (call,) = await stack.wait_for_calls_to_end()
    (voice,) = stack.app.hits_to("/voice")
    assert voice.fields["From"] == "+254711000111" and voice.fields["To"] == NUMBER
    assert voice.fields["Direction"] == "inbound" and voice.fields["CallId"] == call.id
    (callback,) = stack.app.hits_to("/voicemail/recording")
    fields = callback.fields
    assert fields["CallId"] == call.id and fields["Digits"] == "#"
    assert 6 <= int(fields["RecordingDuration"]) <= 10  # 7 s of speech, cut at the key
    _, (voice_audio,) = await stack.recording_audio(fields["RecordingSid"])
    assert rms(voice_audio) > 300
    assert call.status == "completed" and call.hangup_cause == "normal_clearing"
    assert call.duration_seconds is not None and call.duration_seconds >= 9
    assert await stack.events(call.id) == [
        "call.started",
        "call.ringing",
        "call.answered",
        "call.recording.ready",
        "call.completed",
    ]


@sqlite_only
async def test_dial_with_record_from_answer(stack: Stack) -> None:
    """The seed's Dial: both parties bridged and recorded, one per channel."""
    stack.app.route(
        "/voice",
        lambda hit: document(
            {"say": {"text": "This call will be recorded."}},
            {
                "dial": {
                    "number": CALLEE,
                    "record": "record-from-answer",
                    "callerId": hit.fields["To"],
                    "action": stack.app.url("/dialled"),
                }
            },
        ),
    )
    stack.app.route("/dialled", document({"hangup": {}}))
    async with Sipp(scenario=PBX_SCENARIOS / "callee_answers_and_speaks.xml", timeout=30) as callee:
        await stack.route_trunk_to(callee.port)
        result = await caller(stack, SCENARIOS / "caller_talks_then_hangs_up.xml").run()
        callee_result = await callee.wait()
    assert result.returncode == 0, result.explain()
    assert callee_result.returncode == 0, callee_result.explain()

    parent, child = await stack.wait_for_calls_to_end(count=2)
    assert child.parent_call_id == parent.id
    assert (child.direction, child.from_number, child.to_number) == ("outbound", NUMBER, CALLEE)
    assert child.status == "completed" and parent.status == "completed"
    (dialled,) = await stack.app.wait_for_hits("/dialled")
    assert dialled.fields["DialCallStatus"] == "completed"
    assert dialled.fields["DialCallId"] == child.id
    _, (left, right) = await stack.recording_audio(dialled.fields["RecordingSid"])
    assert dialled.fields["RecordingChannels"] == "2"
    assert rms(left) > 300 and rms(right) > 300  # the caller left, the callee right
    # Each leg's record keeps how its audio fared: SIPp on loopback loses nothing.
    for leg in (parent, child):
        assert leg.quality is not None, leg.id
        assert leg.quality["packets"] > 100 and leg.quality["lost"] == 0
        assert leg.quality["mos_estimate"] > 4.0 and not leg.quality["one_way_audio"]


@sqlite_only
async def test_ivr_collects_keys(stack: Stack) -> None:
    stack.app.route(
        "/voice",
        document(
            {
                "getDigits": {
                    "action": stack.app.url("/choice"),
                    "finishOnKey": "#",
                    "timeout": 10,
                    "nested": [{"say": {"text": "Press one for sales."}}],
                }
            }
        ),
    )
    stack.app.route("/choice", document({"pause": {"length": 10}}))
    result = await caller(stack, SCENARIOS / "caller_keys.xml").run()
    assert result.returncode == 0, result.explain()
    (call,) = await stack.wait_for_calls_to_end()
    (choice,) = stack.app.hits_to("/choice")
    assert choice.fields["Digits"] == "12"
    assert call.hangup_cause == "caller_hangup"


@sqlite_only
async def test_three_party_conference(stack: Stack, tmp_path: Path) -> None:
    stack.app.route(
        "/voice",
        document({"conference": {"name": "standup", "beep": False, "record": True}}),
    )
    listings: list[dict] = []

    async def look() -> None:
        await asyncio.sleep(2.5)
        answer = await stack.api.get("/v1/conferences/standup", headers=stack.headers)
        listings.append(answer.json())

    async def join(frequency: int, index: int) -> Path:
        voice = tmp_path / f"voice{index}.wav"
        voice.write_bytes(encode_wav(tone(frequency, 5.0)))
        heard = tmp_path / f"heard{index}.wav"
        async with Phone(rtp_ports=(44200 + index * 50, 44249 + index * 50)) as phone:
            await phone.call(
                NUMBER,
                CallScript(voice=voice, record_to=heard, hangup_after=5.0),
                server=stack.sip,
            )
        return heard

    heard = await asyncio.gather(join(440, 0), join(700, 1), join(1000, 2), look())
    await stack.wait_for_calls_to_end(count=3)
    assert len(listings[0]["participants"]) == 3
    for path, own in zip(heard[:3], (440, 700, 1000), strict=True):
        _, (audio,) = read_wav_channels(path)
        middle = audio[8000 * 2 : 8000 * 4]
        others = {440, 700, 1000} - {own}
        # Each hears the other two, never itself (mix-minus).
        assert all(amplitude_at(middle, f) > 3 * amplitude_at(middle, own) for f in others)


@sqlite_only
@pytest.mark.parametrize(
    "reply",
    [Reply(500), Reply(body=b"<html>not json</html>"), Reply(body=b'{"actions": [{"sya": {}}]}')],
)
async def test_app_failure_apologises_and_records_the_error(stack: Stack, reply: Reply) -> None:
    stack.app.route("/voice", reply)
    async with Phone(rtp_ports=(44400, 44449)) as phone:
        report = await phone.call(NUMBER, CallScript(linger=15), server=stack.sip)
    assert report.end_reason == "remote_hangup"
    (call,) = await stack.wait_for_calls_to_end()
    assert call.hangup_cause == "application_error"
    assert call.error is not None and call.error["code"].startswith("application.")


@sqlite_only
async def test_fallback_url_takes_over(stack: Stack) -> None:
    stack.app.route("/voice", Reply(503))
    fallback = stack.app.route("/fallback", document({"say": {"text": "Hi."}}, {"hangup": {}}))
    await stack.set_routing(fallback_url=fallback)
    async with Phone(rtp_ports=(44450, 44499)) as phone:
        report = await phone.call(NUMBER, CallScript(linger=15), server=stack.sip)
    assert report.answered
    (call,) = await stack.wait_for_calls_to_end()
    assert call.hangup_cause == "normal_clearing" and call.status == "completed"
    assert stack.app.hits_to("/fallback")[0].fields["ErrorCode"]


@sqlite_only
async def test_unknown_number_is_404(stack: Stack) -> None:
    result = await Sipp(
        scenario=SIP_SCENARIOS / "uac_offer_g711_dtmf.xml",
        remote=stack.sip,
        service="+254799999999",
        timeout=10,
    ).run()
    assert result.returncode != 0
    assert "404" in result.explain()
    assert await stack.calls() == []


# --- outbound calls through the API --------------------------------------------------------


async def _place(stack: Stack, **extra: object) -> dict:
    body = {"to": CALLEE, "from": NUMBER, "action_url": stack.app.url("/answered"), **extra}
    answer = await stack.api.post("/v1/calls", json=body, headers=stack.headers)
    assert answer.status_code == 201, answer.text
    assert answer.json()["status"] == "queued"
    return answer.json()


async def test_outbound_call_runs_its_actions(stack: Stack) -> None:
    stack.app.route(
        "/answered", document({"say": {"text": "Your order is ready."}}, {"hangup": {}})
    )
    async with Sipp(scenario=SIP_SCENARIOS / "uas_answer.xml", timeout=20) as callee:
        await stack.route_trunk_to(callee.port)
        placed = await _place(stack)
        result = await callee.wait()
    assert result.returncode == 0, result.explain()
    (call,) = await stack.wait_for_calls_to_end()
    assert call.id == placed["id"] and call.status == "completed"
    (answered,) = stack.app.hits_to("/answered")
    assert answered.fields["Direction"] == "outbound" and answered.fields["To"] == CALLEE
    shown = (await stack.api.get(f"/v1/calls/{call.id}", headers=stack.headers)).json()
    assert [event["kind"] for event in shown["events"]] == [
        "call.started",
        "call.ringing",
        "call.answered",
        "call.completed",
    ]
    assert shown["price_minor"] > 0 and shown["currency"] == "KES"


@sqlite_only
@pytest.mark.parametrize(
    ("scenario", "ring", "status", "cause"),
    [("uas_busy.xml", 10, "busy", "busy"), ("uas_no_answer.xml", 1, "no_answer", "no_answer")],
)
async def test_outbound_busy_and_no_answer(
    stack: Stack, scenario: str, ring: int, status: str, cause: str
) -> None:
    async with Sipp(scenario=SIP_SCENARIOS / scenario, timeout=15) as callee:
        await stack.route_trunk_to(callee.port)
        await _place(stack, timeout=ring)
        result = await callee.wait()
    assert result.returncode == 0, result.explain()
    (call,) = await stack.wait_for_calls_to_end()
    assert (call.status, call.hangup_cause, call.price_minor) == (status, cause, 0)
    assert (await stack.events(call.id))[-1] == "call.failed"
    assert stack.app.hits_to("/answered") == []


@sqlite_only
async def test_live_hangup_and_redirect_through_the_api(stack: Stack) -> None:
    stack.app.route("/answered", document({"pause": {"length": 30}}))
    redirected = stack.app.route(
        "/new", document({"say": {"text": "Moved."}}, {"pause": {"length": 30}})
    )
    async with Sipp(scenario=SIP_SCENARIOS / "uas_answer.xml", timeout=20) as callee:
        await stack.route_trunk_to(callee.port)
        placed = await _place(stack)
        for _ in range(50):
            if stack.app.hits_to("/answered"):
                break
            await asyncio.sleep(0.1)
        url = f"/v1/calls/{placed['id']}"
        moved = await stack.api.post(url, json={"action_url": redirected}, headers=stack.headers)
        assert moved.status_code == 200, moved.text
        for _ in range(50):
            if stack.app.hits_to("/new"):
                break
            await asyncio.sleep(0.1)
        ended = await stack.api.post(url, json={"status": "completed"}, headers=stack.headers)
        assert ended.status_code == 200
        result = await callee.wait()
    assert result.returncode == 0, result.explain()
    assert stack.app.hits_to("/new")
    (call,) = await stack.wait_for_calls_to_end()
    assert call.status == "completed" and call.hangup_cause == "normal_clearing"
    again = await stack.api.post(url, json={"status": "completed"}, headers=stack.headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "calls.not_live"


@sqlite_only
async def test_outbound_refusals(stack: Stack) -> None:
    body = {"to": "+447700900123", "from": NUMBER, "action_url": stack.app.url("/a")}
    refused = await stack.api.post("/v1/calls", json=body, headers=stack.headers)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "destinations.not_allowed"
    body = {"to": CALLEE, "from": "+254700000999", "action_url": stack.app.url("/a")}
    not_ours = await stack.api.post("/v1/calls", json=body, headers=stack.headers)
    assert not_ours.json()["error"]["code"] == "numbers.not_owned"
    assert await stack.calls() == []


@sqlite_only
async def test_a_retried_post_dials_once(stack: Stack) -> None:
    stack.app.route("/answered", document({"hangup": {}}))
    async with Sipp(scenario=SIP_SCENARIOS / "uas_answer.xml", timeout=20) as callee:
        await stack.route_trunk_to(callee.port)
        body = {"to": CALLEE, "from": NUMBER, "action_url": stack.app.url("/answered")}
        headers = {**stack.headers, "Idempotency-Key": "dial-once"}
        first = await stack.api.post("/v1/calls", json=body, headers=headers)
        second = await stack.api.post("/v1/calls", json=body, headers=headers)
        result = await callee.wait()
    assert result.returncode == 0, result.explain()
    assert first.json()["id"] == second.json()["id"]
    assert len(await stack.wait_for_calls_to_end()) == 1


# --- shutdown and recovery ----------------------------------------------------------------


@sqlite_only
async def test_shutdown_refuses_new_calls(stack: Stack) -> None:
    stack.manager.accepting = False
    answer = await stack.api.post(
        "/v1/calls",
        json={"to": CALLEE, "from": NUMBER, "action_url": stack.app.url("/a")},
        headers=stack.headers,
    )
    assert answer.status_code == 503
    result = await Sipp(
        scenario=SIP_SCENARIOS / "uac_offer_g711_dtmf.xml", remote=stack.sip, service=NUMBER
    ).run()
    assert "503" in result.explain()


async def test_recovery_closes_calls_a_crash_left_live(stack: Stack) -> None:
    answered = utcnow() - timedelta(minutes=5)
    async with stack.database.transaction() as session:
        session.add(
            Call(
                id="01a20d00-0000-7000-8000-000000000001",
                workspace_id=stack.workspace_id,
                direction="inbound",
                from_number="+254711000111",
                to_number=NUMBER,
                status="answered",
                owner="test-node",
                started_at=answered,
                answered_at=answered,
                last_seen_at=answered + timedelta(seconds=42),
            )
        )
    await stack.manager.recover()
    (call,) = await stack.calls()
    assert (call.status, call.hangup_cause, call.duration_seconds) == (
        "completed",
        "network_error",
        42,
    )


@sqlite_only
async def test_shutdown_ends_live_calls_after_the_grace(stack: Stack) -> None:
    stack.app.route("/answered", document({"pause": {"length": 60}}))
    async with Sipp(scenario=SIP_SCENARIOS / "uas_answer.xml", timeout=20) as callee:
        await stack.route_trunk_to(callee.port)
        await _place(stack)
        for _ in range(50):
            if stack.app.hits_to("/answered"):
                break
            await asyncio.sleep(0.1)
        await stack.manager.shutdown(grace=0.5)
        result = await callee.wait()
    assert result.returncode == 0, result.explain()  # SIPp got our BYE
    (call,) = await stack.wait_for_calls_to_end()
    assert (call.status, call.hangup_cause) == ("completed", "normal_clearing")


@pytest.mark.parametrize("empty_database", ["sqlite"], indirect=True)
async def test_a_call_is_cut_off_when_the_money_runs_out(
    database: Database, app: AppServer, tmp_path: Path
) -> None:
    """SPEC §6: a call lasts at most what the balance pays for, then ends with
    insufficient_funds. Here the wallet pays 3 s at KES 60 a minute (100 minor a second)."""
    async with open_stack(
        database, app, tmp_path, credit_minor=300, min_call_funding_seconds=2
    ) as stack:
        async with database.transaction() as session:
            session.add(Rate(direction="outbound", prefix="+25472", rate_per_minute_minor=6000))
        stack.app.route("/answered", document({"pause": {"length": 60}}))
        async with Sipp(scenario=SIP_SCENARIOS / "uas_answer.xml", timeout=20) as callee:
            await stack.route_trunk_to(callee.port)
            await _place(stack)
            result = await callee.wait()  # SIPp hears our BYE when the money runs out
        assert result.returncode == 0, result.explain()
        (call,) = await stack.wait_for_calls_to_end()
        assert call.hangup_cause == "insufficient_funds"
        assert (call.duration_seconds, call.price_minor) == (3, 300)
        balance = await stack.api.get("/v1/wallet/balance", headers=stack.headers)
        assert balance.json()["balance_minor"] == 0


@sqlite_only
async def test_recovery_prices_an_ended_call_left_unbilled(stack: Stack) -> None:
    """A crash between a hangup and its debit: the next start debits it, once."""
    answered = utcnow() - timedelta(minutes=2)
    async with stack.database.transaction() as session:
        session.add(
            Call(
                id="01a20d00-0000-7000-8000-000000000002",
                workspace_id=stack.workspace_id,
                direction="outbound",
                from_number=NUMBER,
                to_number=CALLEE,
                status="completed",
                answered_at=answered,
                ended_at=answered + timedelta(seconds=61),
                duration_seconds=61,
            )
        )
    before = (await stack.api.get("/v1/wallet/balance", headers=stack.headers)).json()
    await stack.manager.recover()
    await stack.manager.recover()
    (call,) = await stack.calls()
    assert call.price_minor == 305  # ceil(61 × 300 / 60)
    after = (await stack.api.get("/v1/wallet/balance", headers=stack.headers)).json()
    assert before["balance_minor"] - after["balance_minor"] == 305


@sqlite_only
async def test_listing_filters_and_isolation(stack: Stack, make_key) -> None:
    async with stack.database.transaction() as session:
        for index, (direction, status) in enumerate(
            [("inbound", "completed"), ("outbound", "busy"), ("outbound", "completed")]
        ):
            session.add(
                Call(
                    id=f"01a20d00-0000-7000-8000-00000000001{index}",
                    workspace_id=stack.workspace_id,
                    direction=direction,
                    from_number=NUMBER,
                    to_number=CALLEE,
                    status=status,
                )
            )

    async def ids(**params: str) -> list[str]:
        answer = await stack.api.get("/v1/calls", params=params, headers=stack.headers)
        return [call["id"][-2:] for call in answer.json()["data"]]

    assert await ids() == ["12", "11", "10"]  # newest first
    assert await ids(direction="outbound") == ["12", "11"]
    assert await ids(status="completed", direction="outbound") == ["12"]
    assert await ids(to=CALLEE, limit="1") == ["12"]
    _, stranger = await make_key(["calls.read"])
    answer = await stack.api.get("/v1/calls/01a20d00-0000-7000-8000-000000000010", headers=stranger)
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "calls.not_found"
    assert (await stack.api.get("/v1/calls", headers=stranger)).json()["data"] == []


@sqlite_only
async def test_an_allow_listed_sip_uri_is_dialled_directly(stack: Stack) -> None:
    stack.app.route("/answered", document({"hangup": {}}))
    async with Sipp(scenario=SIP_SCENARIOS / "uas_answer.xml", timeout=20) as callee:
        target = f"sip:bob@127.0.0.1:{callee.port}"
        body = {"to": target, "from": NUMBER, "action_url": stack.app.url("/answered")}
        refused = await stack.api.post("/v1/calls", json=body, headers=stack.headers)
        assert refused.json()["error"]["code"] == "destinations.not_allowed"  # empty list
        settings = {"sip_host_allowlist": [f"127.0.0.1:{callee.port}"]}
        changed = await stack.api.patch("/v1/settings", json=settings, headers=stack.headers)
        assert changed.status_code == 200, changed.text
        placed = await stack.api.post("/v1/calls", json=body, headers=stack.headers)
        assert placed.status_code == 201, placed.text
        result = await callee.wait()
    assert result.returncode == 0, result.explain()
    (call,) = await stack.wait_for_calls_to_end()
    assert (call.to_number, call.status) == (target, "completed")


@sqlite_only
async def test_a_number_no_trunk_carries_fails(stack: Stack) -> None:
    async with stack.database.transaction() as session:
        await session.execute(update(Trunk).values(prefixes=["+2541"]))
    await stack.manager.reload_trunks()
    await _place(stack)
    (call,) = await stack.wait_for_calls_to_end()
    assert (call.status, call.hangup_cause, call.price_minor) == ("failed", "network_error", 0)
    assert (await stack.events(call.id))[-1] == "call.failed"


@pytest.mark.parametrize("empty_database", ["sqlite"], indirect=True)
async def test_a_rated_inbound_call_the_wallet_cannot_pay_is_refused(
    database: Database, app: AppServer, tmp_path: Path
) -> None:
    async with open_stack(database, app, tmp_path, credit_minor=0) as stack:
        async with database.transaction() as session:
            session.add(
                Rate(
                    workspace_id=stack.workspace_id,
                    direction="inbound",
                    prefix="+254",
                    rate_per_minute_minor=100,
                )
            )
        result = await caller(stack, SIP_SCENARIOS / "uac_offer_g711_dtmf.xml").run()
        assert "402" in result.explain()
        assert await stack.calls() == []  # nothing half-recorded
        assert stack.app.hits == []


@sqlite_only
async def test_callbacks_are_forms_of_strings_unless_json_is_chosen(stack: Stack) -> None:
    """SPEC §3: the workspace's choice, overridden by the number's, set through the API."""
    stack.app.route("/voice", document({"pause": {"length": 30}}))  # the caller hangs up
    (number,) = (await stack.api.get("/v1/numbers", headers=stack.headers)).json()["data"]
    routing = f"/v1/numbers/{number['id']}/routing"

    async def one_call() -> dict[str, str]:
        stack.app.hits.clear()
        result = await caller(stack, SCENARIOS / "caller_talks_then_hangs_up.xml").run()
        assert result.returncode == 0, result.explain()
        await stack.wait_for_calls_to_end(count=1)
        (voice,) = stack.app.hits_to("/voice")
        assert voice.fields["To"] == NUMBER
        return voice.headers

    assert (await one_call())["content-type"] == "application/x-www-form-urlencoded"
    changed = await stack.api.patch(
        "/v1/settings", json={"callback_encoding": "json"}, headers=stack.headers
    )
    assert changed.json()["callback_encoding"] == "json"
    assert (await one_call())["content-type"] == "application/json"
    changed = await stack.api.patch(
        routing, json={"callback_encoding": "form"}, headers=stack.headers
    )
    assert changed.json()["callback_encoding"] == "form"
    assert (await one_call())["content-type"] == "application/x-www-form-urlencoded"
