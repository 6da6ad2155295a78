"""One ``sautikit serve`` per peer of the interop matrix, set up as an operator would.

The module-scoped :func:`deployment` is parametrised by peer, so pytest runs every feature
of one peer against one serve process, then the next peer's against a fresh one. The
process is configured through ``SAUTIKIT_*`` settings alone (TLS certificate and key, the
ports); its data is what an operator's commands make: a workspace, ``NUMBER`` answered by
the test app, ``DESK`` with no app (so it rings its registered phones) and a SIP login on
it (as ``POST /v1/numbers/{id}/sip-credentials`` makes one), a carrier trunk for
``+254`` leading to ``target_port`` that vouches for no loopback address, so every phone
answers digest.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import select, update
from tests.interop.peers import BaresipPhone, LinphonePhone, Login, Phone, Server, SippPhone
from tests.serve_process import NUMBER, ServeProcess, seed, serve_database
from tests.sipp import free_port
from tests.support import active_number
from tests.tls_certs import make_certificates, tls_port_in
from tests.voice.voice_rig import AppServer, serve_app

from sautikit.billing.sip_credentials import create_credential
from sautikit.db.models import Number, Trunk
from sautikit.media import tone
from sautikit.media.audio import encode_wav

__all__ = ["DESK", "NUMBER", "PEERS", "TARGET", "Deployment"]

#: A number with no app: calls to it ring the phones registered on its login.
DESK = "+254700000005"
#: A number beyond the carrier trunk (a transfer's target).
TARGET = "+254730000009"

#: The peers: the binary each needs (Debian package), and how to make its adapter.
PEERS = {"sipp": "sipp", "baresip": "baresip", "linphone": "linphonec"}


@dataclass
class Deployment:
    peer: str
    serve: ServeProcess
    app: AppServer
    headers: dict[str, str]
    server: Server
    login: Login
    desk_id: str
    #: Where the carrier trunk sends calls (nothing listens unless a test starts SIPp).
    target_port: int
    folder: Path

    def api(self) -> httpx.AsyncClient:
        return self.serve.api(self.headers)

    async def registrations(self) -> list[dict[str, Any]]:
        """The login's live registrations, as the credentials API lists them."""
        async with self.api() as api:
            answer = await api.get(f"/v1/numbers/{self.desk_id}/sip-credentials")
        assert answer.status_code == 200, answer.text
        (credential,) = answer.json()["data"]
        registrations: list[dict[str, Any]] = credential["registrations"]
        return registrations

    async def call_ids(self) -> set[str]:
        return {call["id"] for call in await self._calls()}

    async def _calls(self) -> list[dict[str, Any]]:
        async with self.api() as api:
            answer = await api.get("/v1/calls", params={"limit": 100})
        assert answer.status_code == 200, answer.text
        calls: list[dict[str, Any]] = answer.json()["data"]
        return calls

    async def ended_calls(
        self, before: set[str], count: int, within: float = 40
    ) -> list[dict[str, Any]]:
        """The ``count`` calls made since ``before`` (ids), once all have ended."""
        found: list[dict[str, Any]] = []
        for _ in range(int(within / 0.2)):
            found = [call for call in await self._calls() if call["id"] not in before]
            if len(found) >= count and all(call["ended_at"] for call in found):
                return found
            await asyncio.sleep(0.2)
        raise AssertionError(f"calls did not end: {found}\n{self.serve.log[-3000:]}")


@pytest.fixture(scope="module")
def app_server() -> Iterator[AppServer]:
    with serve_app() as server:
        yield server


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=sorted(PEERS))
async def deployment(
    request: pytest.FixtureRequest, app_server: AppServer, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Deployment]:
    peer: str = request.param
    if shutil.which(PEERS[peer]) is None:
        pytest.skip(f"{PEERS[peer]} is not installed")
    folder = tmp_path_factory.mktemp(f"interop-{peer}")
    certificates = make_certificates(folder / "certs")
    target_port = free_port()
    async with serve_database("sqlite", folder) as (url, database):
        seeded = await seed(database, voice_url=app_server.url("/voice"), trunk_port=target_port)
        async with database.transaction() as session:
            await session.execute(update(Trunk).values(inbound_addresses=["192.0.2.1"]))
            session.add(active_number(DESK, seeded.workspace_id))
            await session.flush()
            desk = await session.scalar(select(Number).where(Number.e164 == DESK))
            assert desk is not None
            created = await create_credential(session, desk, "desk")
        env = {
            "SAUTIKIT_SIP_TLS_CERT": str(certificates.cert),
            "SAUTIKIT_SIP_TLS_KEY": str(certificates.key),
            "SAUTIKIT_SIP_TLS_PORT": "0",
        }
        async with ServeProcess(folder / "var", url, env=env) as serve:
            server = Server("127.0.0.1", serve.sip_port, tls_port_in(serve.log), certificates.ca)
            login = Login("desk", created.password, f"sip:desk@{server.host}")
            yield Deployment(
                peer,
                serve,
                app_server,
                seeded.headers,
                server,
                login,
                desk.id,
                target_port,
                folder,
            )


@pytest_asyncio.fixture(loop_scope="module")
async def phone(deployment: Deployment, tmp_path: Path) -> AsyncIterator[Phone]:
    """A fresh phone of the deployment's peer kind (not yet registered); its log is kept
    in the test's folder."""
    deployment.app.reset()
    made: Phone
    if deployment.peer == "sipp":
        made = SippPhone(tmp_path / "sipp", deployment.server)
    elif deployment.peer == "baresip":
        voice = tmp_path / "voice.wav"
        voice.write_bytes(encode_wav(tone(800, 30.0)))
        made = BaresipPhone(tmp_path / "baresip", deployment.server, voice)
    else:
        made = LinphonePhone(tmp_path / "linphone", deployment.server)
    try:
        yield made
    finally:
        (tmp_path / "phone.log").write_text(await made.close())
        deployment.app.reset()


__all__ += ["NUMBER"]
