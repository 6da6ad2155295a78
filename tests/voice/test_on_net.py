"""On-net routing (SPEC §9): a call to a number that a workspace of this deployment holds
stays on the platform, whichever way it is made — ``POST /v1/calls``, a ``dial`` action, a
registered device — and reaches that number's app or registered devices, rated at the
deck's ``on_net`` rate for the caller and as inbound for the callee.

The carrier trunk routes every ``+254`` number to a port where nothing listens and trusts
no address, so a call that went to it, or that got in only because loopback was trusted,
would fail: only the on-net token lets the platform's own INVITE in.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select
from tests.baresip import Baresip, requires_baresip
from tests.media.media_rig import rms
from tests.sipp import SCENARIOS as SIP_SCENARIOS
from tests.sipp import Sipp, requires_sipp
from tests.support import active_number
from tests.voice.stack import NUMBER, Stack, open_stack
from tests.voice.voice_rig import AppServer, document

from sautikit import accounts
from sautikit.billing.ledger import top_up
from sautikit.billing.numbers import SUSPENDED
from sautikit.billing.rating import price_for
from sautikit.calls.routing import MAX_ON_NET_HOPS
from sautikit.db import Database
from sautikit.db.models import Call, Number, Rate, SipCredential
from sautikit.media import tone
from sautikit.media.audio import encode_wav
from sautikit.sip import compute_ha1

pytestmark = requires_sipp

SCENARIOS = Path(__file__).parent / "scenarios"
#: A number of a second workspace on the same deployment.
OTHER = "+254700000002"
ON_NET_RATE = 120
OUTBOUND_RATE = 600


@dataclass(frozen=True)
class Other:
    workspace_id: str
    number_id: str


@pytest.fixture
async def stack(database: Database, app: AppServer, tmp_path: Path) -> AsyncIterator[Stack]:
    async with open_stack(database, app, tmp_path) as opened:
        await opened.route_trunk_to(5999, trusted=())  # nobody there, nobody trusted
        async with database.transaction() as session:
            for direction, rate in (("on_net", ON_NET_RATE), ("outbound", OUTBOUND_RATE)):
                session.add(
                    Rate(
                        direction=direction,
                        prefix="+254",
                        destination="Kenya",
                        rate_per_minute_minor=rate,
                    )
                )
        yield opened


async def other_workspace(stack: Stack, *, voice_url: str | None) -> Other:
    async with stack.database.transaction() as session:
        workspace = await accounts.create_workspace(session, "Beta")
        number = active_number(OTHER, workspace.id, voice_url=voice_url)
        session.add(number)
        await top_up(session, workspace.id, 10_000, idempotency_key="seed")
        await session.flush()
        return Other(workspace.id, number.id)


async def add_device(stack: Stack, other: Other, username: str, password: str) -> None:
    async with stack.database.transaction() as session:
        session.add(
            SipCredential(
                workspace_id=other.workspace_id,
                number_id=other.number_id,
                username=username,
                ha1_md5=compute_ha1(username, other.workspace_id, password, "MD5"),
                ha1_sha256=compute_ha1(username, other.workspace_id, password, "SHA-256"),
            )
        )
    await stack.manager.reload_trunks()


async def calls_by_workspace(stack: Stack, count: int) -> dict[str, list[Call]]:
    ended = await stack.wait_for_calls_to_end(count=count, seconds=40)
    found: dict[str, list[Call]] = {}
    for call in ended:
        found.setdefault(call.workspace_id, []).append(call)
    return found


def assert_billed_on_net(call: Call) -> None:
    assert call.on_net and call.direction == "outbound" and call.status == "completed"
    assert call.duration_seconds is not None and call.duration_seconds > 0
    assert call.price_minor == price_for(call.duration_seconds, ON_NET_RATE)


def assert_inbound_of(call: Call, other: Other, caller: str) -> None:
    assert (call.direction, call.from_number, call.to_number) == ("inbound", caller, OTHER)
    assert call.number_id == other.number_id and not call.on_net
    assert call.status == "completed" and call.price_minor == 0  # inbound is free


async def test_an_api_call_to_another_workspaces_number_reaches_its_app(stack: Stack) -> None:
    other = await other_workspace(stack, voice_url=stack.app.url("/beta"))
    beta = document({"say": {"text": "Beta speaking."}}, {"pause": {"length": 2}})
    stack.app.route("/beta", beta)
    stack.app.route("/answered", document({"pause": {"length": 20}}))
    body = {"to": OTHER, "from": NUMBER, "action_url": stack.app.url("/answered")}
    placed = await stack.api.post("/v1/calls", json=body, headers=stack.headers)
    assert placed.status_code == 201, placed.text

    calls = await calls_by_workspace(stack, 2)
    (mine,) = calls[stack.workspace_id]
    (theirs,) = calls[other.workspace_id]
    assert mine.id == placed.json()["id"] and mine.to_number == OTHER
    shown = (await stack.api.get(f"/v1/calls/{mine.id}", headers=stack.headers)).json()
    assert shown["on_net"] is True and shown["price_minor"] == mine.price_minor
    assert_billed_on_net(mine)
    assert_inbound_of(theirs, other, NUMBER)
    assert mine.hangup_cause == "callee_hangup"  # Beta's app hung up, after its pause
    (beta,) = stack.app.hits_to("/beta")
    assert (beta.fields["From"], beta.fields["To"]) == (NUMBER, OTHER)
    assert beta.fields["Direction"] == "inbound"
    # Nothing went to the trunk: it would have failed the call.
    assert mine.error is None


@requires_baresip
async def test_a_dial_to_a_number_of_this_deployment_rings_its_device(
    stack: Stack, tmp_path: Path
) -> None:
    other = await other_workspace(stack, voice_url=None)  # the number rings its devices
    await add_device(stack, other, "bob", "b0bpass")
    voice = tmp_path / "bob.wav"
    voice.write_bytes(encode_wav(tone(1000, 14.0)))
    bob = Baresip(
        tmp_path / "bob",
        "bob",
        voice,
        (37800, 37899),
        register=("127.0.0.1", stack.pbx.port, "b0bpass"),
    )
    await bob.start(seconds=14)
    await bob.wait_registered(lambda: bool(stack.pbx.agent.lookup("sip:bob@any")))
    stack.app.route(
        "/voice",
        document(
            {
                "dial": {
                    "number": OTHER,
                    "record": "record-from-answer",
                    "action": stack.app.url("/dialled"),
                }
            }
        ),
    )
    stack.app.route("/dialled", document({"hangup": {}}))
    await stack.route_trunk_to(5999)  # the caller is the carrier (trusted by address)
    caller = await Sipp(
        scenario=SCENARIOS / "caller_talks_then_hangs_up.xml",
        remote=stack.sip,
        service=NUMBER,
        timeout=30,
    ).run()
    assert caller.returncode == 0, caller.explain()
    await bob.wait()

    calls = await calls_by_workspace(stack, 3)
    parent, child = sorted(calls[stack.workspace_id], key=lambda call: call.parent_call_id or "")
    (theirs,) = calls[other.workspace_id]
    assert child.parent_call_id == parent.id and child.to_number == OTHER
    assert_billed_on_net(child)
    assert not parent.on_net and parent.direction == "inbound"
    # The caller id of the dialled leg is the parent's From: SIPp's number.
    assert_inbound_of(theirs, other, child.from_number)
    (dialled,) = await stack.app.wait_for_hits("/dialled")
    assert dialled.fields["DialCallStatus"] == "completed"
    _, (left, right) = await stack.recording_audio(dialled.fields["RecordingSid"])
    assert rms(left) > 300 and rms(right) > 300  # the caller, and bob's phone


async def test_a_device_calling_a_number_of_this_deployment_stays_on_it(stack: Stack) -> None:
    other = await other_workspace(stack, voice_url=stack.app.url("/beta"))
    beta = document({"say": {"text": "Beta speaking."}}, {"pause": {"length": 1}})
    stack.app.route("/beta", beta)
    await stack.add_device("alice", "s3cret")  # a device of NUMBER's workspace
    device = await Sipp(
        scenario=SIP_SCENARIOS / "uac_invite_auth.xml",
        remote=stack.sip,
        service=OTHER,
        timeout=20,
    ).run()
    assert device.returncode == 0, device.explain()

    calls = await calls_by_workspace(stack, 2)
    (mine,) = calls[stack.workspace_id]
    (theirs,) = calls[other.workspace_id]
    assert (mine.from_number, mine.to_number) == (NUMBER, OTHER)
    assert_billed_on_net(mine)
    assert_inbound_of(theirs, other, NUMBER)
    assert stack.app.hits_to("/beta")


async def test_a_number_nobody_holds_still_goes_to_the_carrier(stack: Stack) -> None:
    stack.app.route("/answered", document({"hangup": {}}))
    body = {"to": "+254720000009", "from": NUMBER, "action_url": stack.app.url("/answered")}
    async with Sipp(scenario=SIP_SCENARIOS / "uas_answer.xml", timeout=20) as carrier:
        await stack.route_trunk_to(carrier.port, trusted=())
        placed = await stack.api.post("/v1/calls", json=body, headers=stack.headers)
        assert placed.status_code == 201, placed.text
        result = await carrier.wait()
    assert result.returncode == 0, result.explain()
    (call,) = await stack.wait_for_calls_to_end()
    assert not call.on_net and call.status == "completed"
    assert call.duration_seconds is not None
    assert call.price_minor == price_for(call.duration_seconds, OUTBOUND_RATE)
    async with stack.database.sessions() as session:
        stored = await session.scalar(select(Call.on_net).where(Call.id == call.id))
    assert stored is False


async def test_a_number_whose_app_dials_itself_stops_at_the_hop_limit(stack: Stack) -> None:
    stack.app.route(
        "/voice", document({"dial": {"number": NUMBER, "action": stack.app.url("/dialled")}})
    )
    stack.app.route("/dialled", document({"hangup": {}}))
    stack.app.route("/answered", document({"pause": {"length": 20}}))
    body = {"to": NUMBER, "from": NUMBER, "action_url": stack.app.url("/answered")}
    placed = await stack.api.post("/v1/calls", json=body, headers=stack.headers)
    assert placed.status_code == 201, placed.text
    calls = await stack.wait_for_calls_to_end(count=2 * MAX_ON_NET_HOPS, seconds=60)
    # The API call, then per hop an inbound call and (but for the last) its dial's leg.
    assert len(calls) == 2 * MAX_ON_NET_HOPS
    assert sum(call.on_net for call in calls) == MAX_ON_NET_HOPS
    statuses = [hit.fields["DialCallStatus"] for hit in stack.app.hits_to("/dialled")]
    assert statuses.count("completed") == MAX_ON_NET_HOPS - 1
    assert len(statuses) == MAX_ON_NET_HOPS  # the last dial was refused


async def test_a_held_number_with_no_app_and_no_phone_is_not_sent_to_a_carrier(
    stack: Stack,
) -> None:
    await other_workspace(stack, voice_url=None)  # rings its devices: it has none
    body = {"to": OTHER, "from": NUMBER, "action_url": stack.app.url("/answered")}
    placed = await stack.api.post("/v1/calls", json=body, headers=stack.headers)
    assert placed.status_code == 201, placed.text
    (call,) = await stack.wait_for_calls_to_end()
    # The number answered 480 on the platform (nobody to ring): unanswered, free, and
    # never offered to the trunk (which would have failed it as unreachable).
    assert call.on_net and (call.status, call.hangup_cause) == ("no_answer", "no_answer")
    assert call.price_minor == 0 and call.error is None


async def test_a_failed_on_net_leg_names_the_platform_number_not_a_trunk(stack: Stack) -> None:
    other = await other_workspace(stack, voice_url=stack.app.url("/voice"))
    async with stack.database.transaction() as session:
        number = await session.get(Number, other.number_id)
        assert number is not None
        number.status = SUSPENDED  # held (so on-net) but it neither rings nor calls out
    body = {"to": OTHER, "from": NUMBER, "action_url": stack.app.url("/answered")}
    placed = await stack.api.post("/v1/calls", json=body, headers=stack.headers)
    assert placed.status_code == 201, placed.text
    (call,) = await stack.wait_for_calls_to_end()
    assert call.on_net and (call.status, call.hangup_cause) == ("failed", "network_error")
    assert call.error is not None and call.error["code"] == "call.on_net_rejected"
    assert call.error["sip_status"] == 404
    message = call.error["message"]
    assert message.startswith(f"the number {OTHER} on this platform answered 404")
    assert "trunk" not in message and "127.0.0.1" not in message
