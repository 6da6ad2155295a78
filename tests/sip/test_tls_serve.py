"""``sautikit serve`` with the TLS and SRTP settings an operator sets, against SIPp.

Debian's SIPp 3.6.1 is built without OpenSSL (``-t l1`` answers "To use a TLS transport you
must compile SIPp with OpenSSL"), and no package registry ships one with it. Where
``SAUTIKIT_TEST_SIPP_TLS`` names a SIPp built with it, SIPp itself registers and calls over
TLS (``-t l1``, verifying Sautikit's certificate against the test CA). Everywhere, SIPp also
speaks TCP to a ``socat`` that carries it over TLS: what Sautikit sees is a TLS client all
the same, and a REGISTER from it is bound to that TLS connection. A workspace that requires
SRTP refuses SIPp's plain RTP call with 488.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update
from tests.serve_process import (
    CALLEE,
    NUMBER,
    ServeProcess,
    seed,
    serve_database,
)
from tests.sipp import SCENARIOS, Sipp, free_port, requires_sipp, sipp_with_tls
from tests.tls_certs import Certificates, make_certificates, tls_bridge, tls_port_in
from tests.voice.voice_rig import document, serve_app

from sautikit.db import Database
from sautikit.db.models import Call, Number, SipCredential, SipRegistration, Trunk, Workspace
from sautikit.media.session import RtpSession
from sautikit.media.srtp import SrtpContext
from sautikit.sip import IncomingCall, SdpSession, UserAgent
from sautikit.sip.digest import compute_ha1
from sautikit.sip.tls import server_context

pytestmark = [
    pytest.mark.sipp,
    requires_sipp,
    pytest.mark.skipif(shutil.which("socat") is None, reason="socat is not installed"),
]


async def add_alice(database: Database) -> None:
    """A SIP credential alice / s3cret on NUMBER (what the credentials API stores)."""
    async with database.transaction() as session:
        number = await session.scalar(select(Number).where(Number.e164 == NUMBER))
        assert number is not None and number.workspace_id is not None
        realm = number.workspace_id
        session.add(
            SipCredential(
                workspace_id=realm,
                number_id=number.id,
                username="alice",
                ha1_md5=compute_ha1("alice", realm, "s3cret", "MD5"),
                ha1_sha256=compute_ha1("alice", realm, "s3cret", "SHA-256"),
            )
        )
        # SIPp is on loopback too: no trunk may vouch for it.
        await session.execute(update(Trunk).values(inbound_addresses=["192.0.2.1"]))


async def test_sipp_registers_over_tls_and_the_binding_is_the_tls_connection(
    tmp_path: Path,
) -> None:
    certificates = make_certificates(tmp_path / "certs")
    async with serve_database("sqlite", tmp_path) as (url, database):
        await seed(database, voice_url="http://127.0.0.1:9/none", trunk_port=free_port())
        await add_alice(database)
        env = {
            "SAUTIKIT_SIP_TLS_CERT": str(certificates.cert),
            "SAUTIKIT_SIP_TLS_KEY": str(certificates.key),
            "SAUTIKIT_SIP_TLS_PORT": "0",
        }
        async with (
            ServeProcess(tmp_path / "var", url, env=env) as serve,
            tls_bridge(certificates.ca, tls_port_in(serve.log)) as bridge,
        ):
            result = await Sipp(
                scenario=SCENARIOS / "uac_register_auth.xml",
                remote=("127.0.0.1", bridge),
                transport="t1",
                service="alice",
            ).run()
            assert result.returncode == 0, result.explain() + serve.log[-3000:]
            async with database.sessions() as session:
                (registration,) = (await session.scalars(select(SipRegistration))).all()
    assert registration.source_transport == "tls"
    assert registration.source_host == "127.0.0.1"


async def test_a_workspace_requiring_srtp_refuses_plain_rtp_with_488(tmp_path: Path) -> None:
    async with serve_database("sqlite", tmp_path) as (url, database):
        seeded = await seed(database, voice_url="http://127.0.0.1:9/none", trunk_port=free_port())
        async with ServeProcess(tmp_path / "var", url) as serve, serve.api(seeded.headers) as api:
            changed = await api.patch("/v1/settings", json={"srtp": "required"})
            assert changed.status_code == 200, changed.text
            assert changed.json()["srtp"] == "required"
            caller = await Sipp(
                scenario=SCENARIOS / "uac_offer_g711_dtmf.xml", remote=serve.sip, service=NUMBER
            ).run()
            log = serve.log
    assert caller.returncode != 0 and "488" in caller.explain(), caller.explain()
    assert "SRTP is required" in log
    async with database.sessions() as session:
        workspace = await session.get(Workspace, seeded.workspace_id)
        assert workspace is not None and workspace.srtp == "required"


async def place_call(api: httpx.AsyncClient, action_url: str) -> httpx.Response:
    """POST /v1/calls as an app does, retrying while a loaded machine's overload control
    answers 503 with Retry-After (what is tested here is the call, not the load)."""
    for _ in range(30):
        placed = await api.post(
            "/v1/calls", json={"to": CALLEE, "from": NUMBER, "action_url": action_url}
        )
        if placed.status_code != 503:
            break
        await asyncio.sleep(1)
    assert placed.status_code == 201, placed.text
    return placed


class TlsCarrier:
    """A carrier's SBC that speaks only SIP over TLS (Sautikit's own stack, on the test CA's
    certificate) and answers with SRTP when offered: it checks what the platform sends."""

    def __init__(self, certificates: Certificates) -> None:
        self.certificates = certificates
        self.invites: list[tuple[str, str]] = []  # (transport, Request-URI)
        self.media: RtpSession | None = None
        self.agent: UserAgent | None = None
        self.answered = asyncio.Event()

    async def start(self) -> int:
        self.agent = await UserAgent.listen(
            "127.0.0.1",
            0,
            udp=False,
            tcp=False,
            tls=server_context(self.certificates.cert, self.certificates.key),
            tls_port=0,
            on_incoming_call=self._incoming,
        )
        return self.agent.transport.tls_port

    async def _incoming(self, call: IncomingCall) -> None:
        self.invites.append((call.source.transport, str(call.request.uri)))
        assert call.offer is not None
        self.media = await RtpSession.open("127.0.0.1", 0, rtcp_port=0)
        answer, agreed = SdpSession("127.0.0.1").answer(call.offer, self.media.local_address[1])
        self.media.set_remote((agreed.remote_address, agreed.remote_port))
        if agreed.srtp is not None:
            keys = agreed.srtp
            self.media.set_srtp(SrtpContext(keys.suite, keys.local_key, keys.remote_key))
        await call.answer(answer)
        self.answered.set()

    async def close(self) -> None:
        if self.media is not None:
            self.media.close()
        if self.agent is not None:
            await self.agent.close()


async def test_a_call_to_a_tls_trunk_that_requires_srtp_is_verified_and_encrypted(
    tmp_path: Path,
) -> None:
    """``trunks add --transport tls --srtp required`` in the database's terms: the INVITE
    goes over TLS to the carrier (its certificate checked against SAUTIKIT_SIP_TLS_CA_FILE
    and its name), offers SRTP, and the carrier hears SRTP it can decrypt."""
    certificates = make_certificates(tmp_path / "certs")
    carrier = TlsCarrier(certificates)
    carrier_port = await carrier.start()
    try:
        async with serve_database("sqlite", tmp_path) as (url, database):
            seeded = await seed(database, voice_url="http://127.0.0.1:9/none", trunk_port=1)
            async with database.transaction() as session:
                await session.execute(
                    update(Trunk).values(
                        host="localhost", port=carrier_port, transport="tls", srtp="required"
                    )
                )
            env = {"SAUTIKIT_SIP_TLS_CA_FILE": str(certificates.ca)}
            with serve_app() as app:
                action_url = app.route("/answered", document({"pause": {"length": 30}}))
                async with (
                    ServeProcess(tmp_path / "var", url, env=env) as serve,
                    serve.api(seeded.headers) as api,
                ):
                    placed = await place_call(api, action_url)
                    await asyncio.wait_for(carrier.answered.wait(), 20)
                    media = carrier.media
                    assert media is not None
                    for _ in range(200):
                        if media.stats.packets_received >= 10:
                            break
                        await asyncio.sleep(0.05)
                    hung_up = await api.post(
                        f"/v1/calls/{placed.json()['id']}", json={"status": "completed"}
                    )
                    assert hung_up.status_code == 200, hung_up.text
                    log = serve.log
    finally:
        await carrier.close()
    assert carrier.invites == [("tls", f"sip:{CALLEE}@localhost:{carrier_port};transport=tls")]
    assert media.srtp is not None, "the platform offered no SRTP"
    assert media.stats.packets_received >= 10, (media.stats, log[-3000:])
    assert media.stats.srtp_refused == 0


SIPP_TLS = sipp_with_tls()


@dataclass(frozen=True)
class SippOverTls:
    """How SIPp reaches the TLS listener: its own TLS, or TCP into a socat bridge."""

    transport: str
    binary: str | None
    extra: list[str]


async def register_and_call_over_tls(
    tmp_path: Path,
    certificates: Certificates,
    connect: Callable[[int], contextlib.AbstractAsyncContextManager[tuple[str, int]]],
    sipp: SippOverTls,
) -> None:
    """alice registers over TLS and calls the number; its app answers; SIPp hangs up."""
    with serve_app() as app:
        app.route("/voice", document({"pause": {"length": 30}}))
        async with serve_database("sqlite", tmp_path) as (url, database):
            await seed(database, voice_url=app.url("/voice"), trunk_port=free_port())
            await add_alice(database)
            env = {
                "SAUTIKIT_SIP_TLS_CERT": str(certificates.cert),
                "SAUTIKIT_SIP_TLS_KEY": str(certificates.key),
                "SAUTIKIT_SIP_TLS_PORT": "0",
            }
            async with (
                ServeProcess(tmp_path / "var", url, env=env) as serve,
                connect(tls_port_in(serve.log)) as remote,
            ):
                for scenario, service, timeout in (
                    ("uac_register_auth.xml", "alice", 60.0),
                    ("uac_invite_auth.xml", NUMBER, 20.0),
                ):
                    result = await Sipp(
                        scenario=SCENARIOS / scenario,
                        remote=remote,
                        transport=sipp.transport,
                        service=service,
                        binary=sipp.binary,
                        extra=sipp.extra,
                        timeout=timeout,
                    ).run()
                    assert result.returncode == 0, result.explain() + serve.log[-3000:]
                for _ in range(100):  # the rows are finished just after SIPp's BYE
                    async with database.sessions() as session:
                        (registration,) = (await session.scalars(select(SipRegistration))).all()
                        calls = (await session.scalars(select(Call))).all()
                    if any(call.status == "completed" for call in calls):
                        break
                    await asyncio.sleep(0.2)
    assert registration.source_transport == "tls"
    # The device's call (and its on-net leg to the number's app) ran and ended normally.
    assert any(call.status == "completed" for call in calls), [
        (call.direction, call.status) for call in calls
    ]


async def test_sipp_through_a_tls_bridge_registers_and_places_a_call_answered_by_the_app(
    tmp_path: Path,
) -> None:
    """Debian's SIPp (no OpenSSL) speaks TCP into socat, which carries it over verified TLS:
    the REGISTER, the INVITE, its ACK and the BYE all cross Sautikit's TLS listener."""
    certificates = make_certificates(tmp_path / "certs")

    @contextlib.asynccontextmanager
    async def bridged(tls_port: int) -> AsyncIterator[tuple[str, int]]:
        async with tls_bridge(certificates.ca, tls_port) as port:
            yield ("127.0.0.1", port)

    await register_and_call_over_tls(
        tmp_path, certificates, bridged, SippOverTls(transport="t1", binary=None, extra=[])
    )


@pytest.mark.skipif(SIPP_TLS is None, reason="no TLS-built SIPp: set SAUTIKIT_TEST_SIPP_TLS")
async def test_sipp_over_tls_registers_and_places_a_call_answered_by_the_app(
    tmp_path: Path,
) -> None:
    certificates = make_certificates(tmp_path / "certs")
    tls_options = [
        "-tls_ca", str(certificates.ca),  # verify Sautikit's certificate
        "-tls_cert", str(certificates.cert),  # SIPp loads one even as a client
        "-tls_key", str(certificates.key),
    ]  # fmt: skip

    @contextlib.asynccontextmanager
    async def direct(tls_port: int) -> AsyncIterator[tuple[str, int]]:
        yield ("127.0.0.1", tls_port)

    await register_and_call_over_tls(
        tmp_path,
        certificates,
        direct,
        SippOverTls(transport="l1", binary=SIPP_TLS, extra=tls_options),
    )
