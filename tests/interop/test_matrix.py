"""The interop matrix (docs/pbx.md): SIPp, baresip 1.0 and linphone-cli 5.1, each against
its own ``sautikit serve`` on production defaults, feature by feature.

One body per feature; the peer is the ``deployment``'s parameter and the ``phone`` its
adapter (tests/interop/peers.py). Every body registers the phone with its login and checks
what a user of Sautikit sees: the login's registrations, the call records of the API, what
the app was asked, what the phone was told.
"""

from __future__ import annotations

import pytest
from tests.interop.conftest import DESK, NUMBER, TARGET, Deployment
from tests.interop.peers import (
    AWAIT_BYE,
    HANG_UP,
    HOLD,
    RESUME,
    Answer,
    Dial,
    Dtmf,
    Phone,
    Transfer,
)
from tests.sipp import SCENARIOS, Sipp
from tests.voice.voice_rig import document

pytestmark = pytest.mark.asyncio(loop_scope="module")

#: What NUMBER's app does for a call that the phone ends.
TALK = document({"say": {"text": "Hello from Sautikit."}}, {"pause": {"length": 40}})


def by_direction(calls: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    found = {str(call["direction"]): call for call in calls}
    assert len(found) == len(calls), calls
    return found


async def test_register(deployment: Deployment, phone: Phone) -> None:
    before = {r["contact"] for r in await deployment.registrations()}
    await phone.register(deployment.login)
    added = [r for r in await deployment.registrations() if r["contact"] not in before]
    (registration,) = added
    assert registration["received"]["transport"] == "udp", registration
    assert registration["contact"].startswith("sip:desk"), registration


async def test_call_out_and_the_phone_hangs_up(deployment: Deployment, phone: Phone) -> None:
    """The phone calls NUMBER (on-net, to its app) and hangs up."""
    deployment.app.route("/voice", TALK)
    await phone.register(deployment.login)
    before = await deployment.call_ids()
    await (await phone.begin([Dial(NUMBER), HANG_UP]))
    calls = by_direction(await deployment.ended_calls(before, 2))
    (asked,) = deployment.app.hits_to("/voice")
    assert (asked.fields["From"], asked.fields["To"]) == (DESK, NUMBER)
    device = calls["outbound"]  # the phone's call, billed to its number
    assert (device["from"], device["to"], device["on_net"]) == (DESK, NUMBER, True)
    assert device["status"] == "completed" and device["hangup_cause"] == "caller_hangup"
    assert calls["inbound"]["status"] == "completed"


async def test_call_in_and_sautikit_hangs_up(deployment: Deployment, phone: Phone) -> None:
    """An API call to DESK rings the registered phone; the API call's app speaks and hangs
    up, and the phone gets our BYE."""
    deployment.app.route(
        "/answered", document({"say": {"text": "This is Sautikit calling."}}, {"hangup": {}})
    )
    await phone.register(deployment.login)
    before = await deployment.call_ids()
    script = await phone.begin([Answer(), AWAIT_BYE])
    async with deployment.api() as api:
        body = {"to": DESK, "from": NUMBER, "action_url": deployment.app.url("/answered")}
        placed = await api.post("/v1/calls", json=body)
    assert placed.status_code == 201, placed.text
    await script
    calls = by_direction(await deployment.ended_calls(before, 2))
    assert calls["outbound"]["id"] == placed.json()["id"]
    assert calls["outbound"]["status"] == "completed"
    assert calls["inbound"]["to"] == DESK and calls["inbound"]["status"] == "completed"


async def test_dtmf(deployment: Deployment, phone: Phone) -> None:
    """The phone presses 5 (RFC 4733) in a call to NUMBER; the app's gather gets it."""
    keys = deployment.app.url("/keys")
    deployment.app.route(
        "/voice", document({"gather": {"numDigits": 1, "timeout": 20, "action": keys}})
    )
    # Still talking while the phone's repeated presses run out, then hang up.
    deployment.app.route("/keys", document({"pause": {"length": 4}}, {"hangup": {}}))
    await phone.register(deployment.login)
    before = await deployment.call_ids()
    await (await phone.begin([Dial(NUMBER), Dtmf("5")]))
    (pressed,) = await deployment.app.wait_for_hits("/keys")
    assert pressed.fields["Digits"] == "5"
    calls = by_direction(await deployment.ended_calls(before, 2))
    assert calls["outbound"]["status"] == "completed"


async def test_hold_and_resume(deployment: Deployment, phone: Phone) -> None:
    """The phone holds the call (re-INVITE a=sendonly), resumes it, and hangs up: each
    re-INVITE was agreed (SIPp checks our answer is recvonly, then not), and the call
    stayed up through both."""
    deployment.app.route("/voice", TALK)
    await phone.register(deployment.login)
    before = await deployment.call_ids()
    await (await phone.begin([Dial(NUMBER), HOLD, RESUME, HANG_UP]))
    calls = by_direction(await deployment.ended_calls(before, 2))
    assert calls["outbound"]["hangup_cause"] == "caller_hangup"
    assert calls["inbound"]["status"] == "completed"


async def test_blind_transfer(deployment: Deployment, phone: Phone) -> None:
    """The phone, rung for an API call to DESK, blind-transfers the caller (REFER) to
    TARGET beyond the carrier trunk: the target is rung as a leg of the caller's call and
    answers, the phone hears NOTIFY 200 and leaves, and the caller talks to the target
    until its app hangs up."""
    deployment.app.route("/answered", document({"pause": {"length": 6}}, {"hangup": {}}))
    await phone.register(deployment.login)
    before = await deployment.call_ids()
    target = Sipp(scenario=SCENARIOS / "uas_answer.xml", port=deployment.target_port, timeout=40)
    async with target:
        script = await phone.begin([Answer(), Transfer(TARGET)])
        async with deployment.api() as api:
            body = {"to": DESK, "from": NUMBER, "action_url": deployment.app.url("/answered")}
            placed = await api.post("/v1/calls", json=body)
        assert placed.status_code == 201, placed.text
        await script
        answered = await target.wait()
    assert answered.returncode == 0, answered.explain()  # answered, then got our BYE
    calls = await deployment.ended_calls(before, 3)
    legs = {call["to"]: call for call in calls if call["parent_call_id"]}
    assert set(legs) == {TARGET}, calls
    assert legs[TARGET]["status"] == "completed"
    assert legs[TARGET]["duration_seconds"] is not None and legs[TARGET]["duration_seconds"] >= 1


async def test_tls_and_srtp(deployment: Deployment, phone: Phone) -> None:
    """The phone registers over TLS and calls NUMBER; a peer that can insists on SRTP
    (SDES), so the call is up only if Sautikit agreed to it."""
    deployment.app.route("/voice", TALK)
    before_registrations = {r["contact"] for r in await deployment.registrations()}
    await phone.register(deployment.login, tls=True)
    added = [
        r for r in await deployment.registrations() if r["contact"] not in before_registrations
    ]
    assert [r["received"]["transport"] for r in added] == ["tls"], added
    before = await deployment.call_ids()
    await (await phone.begin([Dial(NUMBER), HANG_UP]))
    calls = by_direction(await deployment.ended_calls(before, 2))
    assert calls["outbound"]["status"] == "completed"
