"""SIP devices (SPEC §6): a softphone registers with its number's credential, receives the
number's calls when no app answers it, and calls out as the number, billed like any call."""

from __future__ import annotations

import asyncio
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from tests.baresip import Baresip, requires_baresip
from tests.linphone import Linphone, requires_linphone
from tests.media.media_rig import rms
from tests.sipp import SCENARIOS as SIP_SCENARIOS
from tests.sipp import Sipp, requires_sipp
from tests.voice.stack import CALLEE, NUMBER, Stack, open_stack
from tests.voice.voice_rig import AppServer

from sautikit.db import Database
from sautikit.db.models import Number
from sautikit.media import tone
from sautikit.media.audio import encode_wav
from sautikit.sip import SipUri

pytestmark = [requires_sipp, pytest.mark.parametrize("empty_database", ["sqlite"], indirect=True)]

SCENARIOS = Path(__file__).parent / "scenarios"


@pytest.fixture
async def stack(database: Database, app: AppServer, tmp_path: Path) -> AsyncIterator[Stack]:
    async with open_stack(database, app, tmp_path) as opened:
        yield opened


def register_alice(stack: Stack) -> Sipp:
    """SIPp's REGISTER as alice, password s3cret (uac_register_auth.xml)."""
    return Sipp(scenario=SIP_SCENARIOS / "uac_register_auth.xml", remote=stack.sip, service="alice")


async def test_a_device_registers_with_digest(stack: Stack) -> None:
    await stack.add_device("alice", "s3cret")
    result = await register_alice(stack).run()
    assert result.returncode == 0, result.explain()
    (binding,) = stack.pbx.agent.lookup("sip:alice@127.0.0.1")
    assert binding.contact.startswith("sip:alice@127.0.0.1")


async def test_a_wrong_password_is_refused(stack: Stack) -> None:
    await stack.add_device("alice", "not-s3cret")
    result = await register_alice(stack).run()
    assert result.returncode != 0
    assert stack.pbx.agent.lookup("sip:alice@127.0.0.1") == []
    metrics = (await stack.api.get("/metrics")).text
    assert "sautikit_sip_auth_failures_total 1.0" in metrics


async def test_a_device_calls_out_as_its_number(stack: Stack) -> None:
    await stack.add_device("alice", "s3cret")
    async with Sipp(scenario=SIP_SCENARIOS / "uas_answer.xml", timeout=20) as callee:
        await stack.route_trunk_to(callee.port, trusted=())  # the device must authenticate
        device = await Sipp(
            scenario=SIP_SCENARIOS / "uac_invite_auth.xml",
            remote=stack.sip,
            service=CALLEE,
            timeout=20,
        ).run()
        result = await callee.wait()
    assert device.returncode == 0, device.explain()
    assert result.returncode == 0, result.explain()
    (call,) = await stack.wait_for_calls_to_end()
    assert (call.direction, call.from_number, call.to_number) == ("outbound", NUMBER, CALLEE)
    assert call.status == "completed" and call.price_minor is not None


async def test_an_unauthenticated_stranger_cannot_call_out(stack: Stack) -> None:
    await stack.route_trunk_to(5999, trusted=())
    result = await Sipp(
        scenario=SIP_SCENARIOS / "uac_offer_g711_dtmf.xml", remote=stack.sip, service=CALLEE
    ).run()
    assert result.returncode != 0
    assert "407" in result.explain()
    assert await stack.calls() == []


@requires_baresip
async def test_a_registered_softphone_rings_for_its_number(stack: Stack, tmp_path: Path) -> None:
    await stack.add_device("alice", "s3cret")
    await stack.set_routing(voice_url=None)
    voice = tmp_path / "alice.wav"
    voice.write_bytes(encode_wav(tone(1000, 12.0)))
    phone = Baresip(
        tmp_path / "alice",
        "alice",
        voice,
        (37200, 37299),
        register=("127.0.0.1", stack.pbx.port, "s3cret"),
    )
    await phone.start(seconds=12)
    await phone.wait_registered(lambda: bool(stack.pbx.agent.lookup("sip:alice@127.0.0.1")))
    result = await Sipp(
        scenario=SCENARIOS / "caller_talks_then_hangs_up.xml",
        remote=stack.sip,
        service=NUMBER,
        timeout=20,
    ).run()
    assert result.returncode == 0, result.explain()
    await phone.wait()
    (call,) = await stack.wait_for_calls_to_end()
    assert call.status == "completed" and call.hangup_cause == "caller_hangup"
    with wave.open(str(phone.heard())) as heard:
        audio = np.frombuffer(heard.readframes(heard.getnframes()), "<i2")
    assert rms(audio) > 300  # alice heard the caller's speech


@requires_linphone
async def test_linphone_registers_with_what_the_credential_answer_says(
    stack: Stack, tmp_path: Path
) -> None:
    async with stack.database.sessions() as session:
        number_id = await session.scalar(select(Number.id).where(Number.e164 == NUMBER))
    answer = await stack.api.post(
        f"/v1/numbers/{number_id}/sip-credentials",
        json={"username": "front-desk"},
        headers=stack.headers,
    )
    assert answer.status_code == 201, answer.text
    credential = answer.json()
    registrar = credential["registrar"]
    assert (registrar["host"], registrar["port"]) == ("127.0.0.1", stack.pbx.port)
    # The PBX picks up new logins on its maintenance timer (every 10 s).
    for _ in range(300):
        if stack.manager.devices.directory.login("front-desk") is not None:
            break
        await asyncio.sleep(0.1)
    phone = Linphone(tmp_path / "linphone")
    await phone.start()
    try:
        # Typed as a user would: the identity, the server, the password — nothing else.
        proxy = f"sip:{registrar['host']}:{registrar['port']}"
        await phone.command(f"register {credential['identity']} {proxy} {credential['password']}")
        for _ in range(150):
            if stack.pbx.agent.lookup(credential["identity"]):
                break
            await asyncio.sleep(0.1)
        bindings = stack.pbx.agent.lookup(credential["identity"])
    finally:
        output = await phone.stop()
    assert [SipUri.parse(b.contact).user for b in bindings] == ["front-desk"], output[-2000:]


@requires_baresip
async def test_baresip_registers_with_what_the_credential_answer_says(
    stack: Stack, tmp_path: Path
) -> None:
    """docs/pbx.md's baresip account line, written from a real credential answer."""
    async with stack.database.sessions() as session:
        number_id = await session.scalar(select(Number.id).where(Number.e164 == NUMBER))
    answer = await stack.api.post(
        f"/v1/numbers/{number_id}/sip-credentials",
        json={"username": "front-desk"},
        headers=stack.headers,
    )
    assert answer.status_code == 201, answer.text
    credential = answer.json()
    registrar = credential["registrar"]
    assert "udp" in registrar["transports"] and registrar["digest_algorithms"] == ["MD5"]
    await stack.manager.reload_trunks()  # at once, not on the maintenance timer
    voice = tmp_path / "desk.wav"
    voice.write_bytes(encode_wav(tone(1000, 6.0)))
    phone = Baresip(tmp_path / "desk", "front-desk", voice, (37300, 37399))
    account = (
        f"<{credential['identity']}:{registrar['port']};transport=udp>"
        f";auth_pass={credential['password']};regint=60"
    )
    (phone.folder / "accounts").write_text(account + ";answermode=auto;audio_codecs=PCMU\n")
    await phone.start(seconds=6)
    try:
        for _ in range(100):
            if stack.pbx.agent.lookup(credential["identity"]):
                break
            await asyncio.sleep(0.1)
        bindings = stack.pbx.agent.lookup(credential["identity"])
    finally:
        phone.kill()
    (binding,) = bindings  # baresip's Contact user is its own: front-desk-0x…
    assert binding.aor == "sip:front-desk"
