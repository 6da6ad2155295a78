"""Browser clients sign in over SIP on WebSocket with a bearer token instead of digest:
accepted, bounded by the token's life, refused when expired, forged or someone else's."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from tests.sip.test_useragent import FAST, REALM, lookup_ha1
from tests.sip.test_websocket import jssip_register, next_message
from websockets.asyncio.client import ClientConnection, connect

from sautikit.sip import UserAgent
from sautikit.sip.message import Response
from sautikit.sip.token_auth import ClientTokens, client_sip_user
from sautikit.sip.websocket import SIP_SUBPROTOCOL, WebSocketListeners

KEY = b"k" * 32
WORKSPACE = "0193a4b2-7f00-7000-8000-000000000001"
ALICE = client_sip_user(WORKSPACE, "alice")


@pytest.fixture
async def agent() -> AsyncIterator[UserAgent]:
    agent = await UserAgent.listen(
        "127.0.0.1",
        0,
        websocket=WebSocketListeners(ws_port=0),
        timers=FAST,
        lookup_ha1=lookup_ha1,
        realm_for=lambda request: REALM,
        verify_bearer=ClientTokens(KEY).authenticate,
    )
    yield agent
    await agent.close()


async def register(client: ClientConnection, user: str, token: str, cseq: int = 1) -> Response:
    await client.send(jssip_register(user, cseq, f"Bearer {token}"))
    answer = await next_message(client)
    assert isinstance(answer, Response)
    return answer


def browser(agent: UserAgent) -> connect:
    url = f"ws://127.0.0.1:{agent.transport.ws_port}"
    return connect(url, subprotocols=[SIP_SUBPROTOCOL])


async def test_a_token_registers_a_browser_until_the_token_ends(agent: UserAgent) -> None:
    token, _ = ClientTokens(KEY).issue(WORKSPACE, "alice", ttl=120)
    async with browser(agent) as client:
        answer = await register(client, ALICE, token)
        assert answer.status == 200
        granted = int(answer.headers.get("Expires") or 0)
        assert 110 <= granted <= 120  # asked 600: a binding never outlives its token
        (binding,) = agent.lookup(f"sip:{ALICE}@127.0.0.1")
        assert binding.source is not None and binding.source.transport == "ws"
        # A refresh with a new token extends it again (the documented refresh).
        fresh, _ = ClientTokens(KEY).issue(WORKSPACE, "alice", ttl=300)
        assert int((await register(client, ALICE, fresh, 2)).headers.get("Expires") or 0) > 200


async def test_expired_forged_and_other_workspace_tokens_are_refused(agent: UserAgent) -> None:
    expired, _ = ClientTokens(KEY, clock=lambda: 1_000_000.0).issue(WORKSPACE, "alice", ttl=60)
    forged, _ = ClientTokens(b"x" * 32).issue(WORKSPACE, "alice")
    other, _ = ClientTokens(KEY).issue("0193a4b2-7f00-7000-8000-000000000002", "alice")
    failures = agent.auth.throttle
    async with browser(agent) as client:
        answer = await register(client, ALICE, expired)
        assert answer.status == 401
        challenge = answer.headers.get("WWW-Authenticate") or ""
        assert challenge.startswith("Bearer ") and 'error="invalid_token"' in challenge
        assert "expired" in challenge
        assert (await register(client, ALICE, forged, 2)).status == 401
        assert (await register(client, ALICE, "not.a.jwt", 3)).status == 401
        # Another workspace's alice is another user: her token registers only her.
        assert (await register(client, ALICE, other, 4)).status == 403
    assert failures.source_blocked("127.0.0.1") is False
    assert agent.lookup(f"sip:{ALICE}@127.0.0.1") == []


async def test_a_token_over_udp_is_not_a_login(agent: UserAgent) -> None:
    """Tokens are for WebSocket clients; elsewhere only digest counts."""
    token, _ = ClientTokens(KEY).issue(WORKSPACE, "alice")
    loop = asyncio.get_running_loop()
    answers: asyncio.Queue[bytes] = asyncio.Queue()

    class Udp(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: object) -> None:
            answers.put_nowait(data)

    transport, _ = await loop.create_datagram_endpoint(Udp, local_addr=("127.0.0.1", 0))
    try:
        local = transport.get_extra_info("sockname")[1]
        request = jssip_register(ALICE, 1, f"Bearer {token}").replace(
            "SIP/2.0/WS df7jal23ls0d.invalid;", f"SIP/2.0/UDP 127.0.0.1:{local};rport;"
        )
        transport.sendto(request.encode(), ("127.0.0.1", agent.transport.port))
        answer = await asyncio.wait_for(answers.get(), 5)
        assert answer.startswith(b"SIP/2.0 401")
        assert b"Digest " in answer and b"Bearer" not in answer
    finally:
        transport.close()
