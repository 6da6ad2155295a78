"""``sautikit serve`` with SIP over WebSocket on: a browser client gets a token from the
API and registers with it, as JsSIP does; a binding never outlives its token."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from tests.serve_process import NUMBER, ServeProcess, seed, serve_database
from tests.sip.test_websocket import jssip_register, next_message
from tests.sipp import free_port
from websockets.asyncio.client import connect

from sautikit.db.models import SipRegistration
from sautikit.sip.message import Response
from sautikit.sip.websocket import SIP_SUBPROTOCOL


async def test_a_browser_registers_over_websocket_with_a_token_from_the_api(
    tmp_path: Path,
) -> None:
    ws_port = free_port()
    env = {"SAUTIKIT_SIP_WS_PORT": str(ws_port)}
    async with serve_database("sqlite", tmp_path) as (url, database):
        seeded = await seed(database, voice_url="http://127.0.0.1:9/none", trunk_port=free_port())
        async with (
            ServeProcess(tmp_path / "var", url, env=env) as serve,
            serve.api(seeded.headers) as api,
        ):
            assert f"WS on 127.0.0.1:{ws_port}" in serve.log
            issued = await api.post(
                "/v1/sip/token", json={"identity": "alice", "caller_id": NUMBER, "ttl": 120}
            )
            assert issued.status_code == 200, issued.text
            answer = issued.json()
            assert answer["ws_url"] == f"ws://127.0.0.1:{ws_port}"
            user = answer["sip_uri"].removeprefix("sip:").split("@")[0]
            async with connect(answer["ws_url"], subprotocols=[SIP_SUBPROTOCOL]) as browser:
                forged = answer["token"][:-4] + (
                    "AAAA" if answer["token"][-4:] != "AAAA" else "BBBB"
                )
                await browser.send(jssip_register(user, 1, f"Bearer {forged}"))
                refused = await next_message(browser)
                assert isinstance(refused, Response) and refused.status == 401
                await browser.send(jssip_register(user, 2, f"Bearer {answer['token']}"))
                registered = await next_message(browser)
                assert isinstance(registered, Response) and registered.status == 200, registered
                assert int(registered.headers.get("Expires") or 0) <= 120
                async with database.sessions() as session:
                    rows = (
                        await session.scalars(
                            select(SipRegistration).where(SipRegistration.aor == f"sip:{user}")
                        )
                    ).all()
                assert [row.source_transport for row in rows] == ["ws"]
    assert "SIP digest authentication failed" in serve.log  # the forged one counted
