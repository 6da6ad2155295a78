"""linphone-cli 5.1 against ``sautikit serve`` over SIP/TLS with SRTP, set up as an operator
would: a certificate and key in ``SAUTIKIT_SIP_TLS_CERT``/``_KEY``, the phone told to trust
the CA, its media encryption set to SRTP (mandatory). The phone registers over TLS, calls its
own number, whose app records it, and what it said is in the stored recording."""

from __future__ import annotations

import asyncio
import io
import wave
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
from sqlalchemy import select, update
from tests.linphone import Linphone, requires_linphone, tls_srtp_config
from tests.media.media_rig import rms
from tests.serve_process import NUMBER, ServeProcess, seed, serve_database
from tests.sipp import free_port
from tests.tls_certs import Certificates, make_certificates, tls_port_in
from tests.voice.voice_rig import AppServer, document, serve_app

from sautikit.billing.sip_credentials import create_credential
from sautikit.db import Database
from sautikit.db.models import Number, Recording, Trunk, Workspace
from sautikit.db.types import utcnow

pytestmark = [requires_linphone]


@pytest.fixture(scope="module")
def app() -> Iterator[AppServer]:
    with serve_app() as server:
        yield server


def speech_wav(path: Path, seconds: float = 12.0) -> Path:
    """Something to say: a warbling tone at 8 kHz, 16-bit mono (linphone's file player)."""
    t = np.arange(int(seconds * 8000)) / 8000
    signal = (9000 * np.sin(2 * np.pi * (400 + 150 * np.sin(2 * np.pi * 2 * t)) * t)).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(signal.tobytes())
    return path


def tls_srtp_phone(folder: Path, certificates: Certificates) -> Linphone:
    """linphone set as docs/pbx.md tells a user: TLS, the CA trusted, SRTP mandatory."""
    config = tls_srtp_config(certificates.ca) + f"[rtp]\naudio_rtp_port={free_port()}\n"
    return Linphone(folder, config)


async def ready_recording(database: Database, within: float = 40.0) -> Recording:
    for _ in range(int(within / 0.2)):
        async with database.sessions() as session:
            found = (await session.scalars(select(Recording))).all()
        ready = [row for row in found if row.status == "ready"]
        if ready:
            return ready[0]
        await asyncio.sleep(0.2)
    raise AssertionError(f"no stored recording: {[(r.status, r.source) for r in found]}")


async def test_linphone_registers_over_tls_and_calls_with_srtp_and_is_recorded(
    app: AppServer, tmp_path: Path
) -> None:
    app.reset()
    app.route(
        "/voice",
        document({"record": {"action": app.url("/recorded"), "playBeep": False, "maxLength": 5}}),
    )
    app.route("/recorded", document({"hangup": {}}))
    certificates = make_certificates(tmp_path / "certs")
    async with serve_database("sqlite", tmp_path) as (url, database):
        seeded = await seed(database, voice_url=app.url("/voice"), trunk_port=free_port())
        async with database.transaction() as session:
            # The phone is on loopback too: no trunk may vouch for it, so it answers digest.
            await session.execute(update(Trunk).values(inbound_addresses=["192.0.2.1"]))
            number = await session.scalar(select(Number).where(Number.e164 == NUMBER))
            assert number is not None
            credential = await create_credential(session, number, "front-desk")
        env = {
            "SAUTIKIT_SIP_TLS_CERT": str(certificates.cert),
            "SAUTIKIT_SIP_TLS_KEY": str(certificates.key),
            "SAUTIKIT_SIP_TLS_PORT": "0",
        }
        async with ServeProcess(tmp_path / "var", url, env=env) as serve:
            tls_port = tls_port_in(serve.log)
            phone = tls_srtp_phone(tmp_path / "linphone", certificates)
            await phone.start(debug=True)
            try:
                await phone.command("soundcard use files")
                proxy = f"<sip:localhost:{tls_port};transport=tls>"
                await phone.command(
                    f"register sip:front-desk@127.0.0.1 {proxy} {credential.password}"
                )
                await phone.expect(r"RegistrationOk|[Rr]egistration.*successful")
                await phone.command(f"call sip:{NUMBER}@localhost:{tls_port};transport=tls")
                await phone.expect(r"LinphoneCallStreamsRunning|connected\.", within=30)
                await phone.command(f"play {speech_wav(tmp_path / 'speech.wav')}")
                recording = await ready_recording(database)
            finally:
                output = await phone.stop()
            log = serve.log
            async with serve.api(seeded.headers) as api:
                shown = await api.get(f"/v1/recordings/{recording.id}")
                assert shown.status_code == 200, shown.text
                link = urlsplit(shown.json()["download_url"])
                audio = await api.get(f"{link.path}?{link.query}")
                assert audio.status_code == 200, audio.text
    # Our 200 OK as the phone printed it: SRTP keyed by SDES (the phone insists on it).
    assert "m=audio" in output and "RTP/SAVP" in output, output[-3000:]
    assert "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" in output, output[-3000:]
    with wave.open(io.BytesIO(audio.content)) as stored:
        samples = np.frombuffer(stored.readframes(stored.getnframes()), "<i2")
        channels = stored.getnchannels()
    heard = samples[0::channels]  # the record verb keeps the caller: the phone
    assert rms(heard) > 300, (rms(heard), log[-3000:], output[-3000:])


OTHER_NUMBER = "+254700000002"


async def test_a_phone_registered_over_tls_is_rung_on_its_connection_with_srtp(
    tmp_path: Path,
) -> None:
    """Two phones of a workspace that requires SRTP: one calls the other's number; the
    callee is reached over the TLS connection it registered on (nothing listens for it
    elsewhere), both legs are SRTP, and what the caller plays reaches the callee."""
    certificates = make_certificates(tmp_path / "certs")
    async with serve_database("sqlite", tmp_path) as (url, database):
        seeded = await seed(database, voice_url="http://127.0.0.1:9/none", trunk_port=free_port())
        async with database.transaction() as session:
            await session.execute(update(Trunk).values(inbound_addresses=["192.0.2.1"]))
            await session.execute(
                update(Workspace).where(Workspace.id == seeded.workspace_id).values(srtp="required")
            )
            own = await session.scalar(select(Number).where(Number.e164 == NUMBER))
            assert own is not None
            other = Number(
                e164=OTHER_NUMBER,
                monthly_price_minor=10_000,
                status="active",
                workspace_id=seeded.workspace_id,
                claimed_at=utcnow(),
                paid_until=own.paid_until,
            )
            session.add(other)
            await session.flush()
            caller_login = await create_credential(session, own, "reception")
            callee_login = await create_credential(session, other, "front-desk")
        env = {
            "SAUTIKIT_SIP_TLS_CERT": str(certificates.cert),
            "SAUTIKIT_SIP_TLS_KEY": str(certificates.key),
            "SAUTIKIT_SIP_TLS_PORT": "0",
        }
        async with ServeProcess(tmp_path / "var", url, env=env) as serve:
            tls_port = tls_port_in(serve.log)
            proxy = f"<sip:localhost:{tls_port};transport=tls>"
            caller = tls_srtp_phone(tmp_path / "caller", certificates)
            callee = tls_srtp_phone(tmp_path / "callee", certificates)
            heard = tmp_path / "heard.wav"
            await caller.start(debug=True)
            await callee.start(debug=True)
            try:
                for phone, login in ((caller, caller_login), (callee, callee_login)):
                    await phone.command("soundcard use files")
                    await phone.command(
                        f"register sip:{login.record.username}@127.0.0.1 {proxy} {login.password}"
                    )
                    await phone.expect(r"RegistrationOk|[Rr]egistration.*successful")
                await caller.command(f"call sip:{OTHER_NUMBER}@localhost:{tls_port};transport=tls")
                await callee.expect(r"IncomingReceived|incoming call", within=30)
                await callee.command("answer")
                await callee.expect(r"LinphoneCallStreamsRunning|connected\.", within=30)
                await callee.command(f"record {heard}")
                await caller.expect(r"LinphoneCallStreamsRunning|connected\\.", within=30)
                await caller.command(f"play {speech_wav(tmp_path / 'speech.wav')}")
                await asyncio.sleep(4)  # some seconds of speech cross both SRTP legs
                await caller.command("terminate")
                await callee.expect(r"LinphoneCallEnd|[Cc]all.*ended", within=20)
            finally:
                callee_output = await callee.stop()
                caller_output = await caller.stop()
                (tmp_path / "callee.log").write_text(callee_output)
                (tmp_path / "caller.log").write_text(caller_output)
            log = serve.log
    # The callee's INVITE came on its own TLS connection, offering SRTP (the workspace's rule).
    assert "RTP/SAVP" in callee_output and "a=crypto:1 AES_CM_128_HMAC_SHA1_80" in callee_output
    assert "received" in callee_output and "INVITE sip:front-desk@" in callee_output
    with wave.open(str(heard)) as stored:
        samples = np.frombuffer(stored.readframes(stored.getnframes()), "<i2")
    assert rms(samples) > 300, (rms(samples), log[-3000:], caller_output[-2000:])
