"""A browser client calls out over SIP on WebSocket, signed in with its token: admitted,
routed to the carrier and billed as its caller id's call, like a device's."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.serve_process import CALLEE, NUMBER, ServeProcess, calls, seed, serve_database
from tests.sip.test_websocket import next_message
from tests.sipp import SCENARIOS as SIP_SCENARIOS
from tests.sipp import Sipp, free_port, requires_sipp
from websockets.asyncio.client import ClientConnection, connect

from sautikit.sip.message import Response
from sautikit.sip.websocket import SIP_SUBPROTOCOL

OFFER = (
    "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
    "t=0 0\r\nm=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
)


def invite(user: str, to: str, token: str, cseq: int = 1) -> str:
    body = OFFER.format(port=free_port())
    return (
        f"INVITE sip:{to}@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bKinv{cseq}\r\n"
        "Max-Forwards: 69\r\n"
        f"To: <sip:{to}@127.0.0.1>\r\n"
        f"From: <sip:{user}@127.0.0.1>;tag=brwsr1\r\n"
        "Call-ID: browser-call-1\r\n"
        f"CSeq: {cseq} INVITE\r\n"
        f"Authorization: Bearer {token}\r\n"
        "Contact: <sip:0ltdt0sa@df7jal23ls0d.invalid;transport=ws;ob>\r\n"
        "Content-Type: application/sdp\r\n"
        "User-Agent: JsSIP 3.13.8\r\n"
        f"Content-Length: {len(body)}\r\n\r\n{body}"
    )


def in_dialog(method: str, ok: Response, user: str, cseq: int, branch: str) -> str:
    target = ok.contacts[0].uri if ok.contacts else "sip:127.0.0.1"
    return (
        f"{method} {target} SIP/2.0\r\n"
        f"Via: SIP/2.0/WS df7jal23ls0d.invalid;branch={branch}\r\n"
        "Max-Forwards: 69\r\n"
        f"To: {ok.headers.get('To')}\r\n"
        f"From: <sip:{user}@127.0.0.1>;tag=brwsr1\r\n"
        "Call-ID: browser-call-1\r\n"
        f"CSeq: {cseq} {method}\r\n"
        "Content-Length: 0\r\n\r\n"
    )


async def final_answer(browser: ClientConnection) -> Response:
    while True:
        message = await next_message(browser)
        if isinstance(message, Response) and message.status >= 200:
            return message


@requires_sipp
async def test_a_browser_client_calls_out_as_its_caller_id(tmp_path: Path) -> None:
    ws_port = free_port()
    env = {"SAUTIKIT_SIP_WS_PORT": str(ws_port)}
    async with (
        serve_database("sqlite", tmp_path) as (url, database),
        Sipp(scenario=SIP_SCENARIOS / "uas_answer.xml", timeout=30) as carrier,
    ):
        seeded = await seed(database, voice_url="http://127.0.0.1:9/none", trunk_port=carrier.port)
        async with (
            ServeProcess(tmp_path / "var", url, env=env) as serve,
            serve.api(seeded.headers) as api,
        ):
            plain = (await api.post("/v1/sip/token", json={"identity": "bob"})).json()
            issued = await api.post(
                "/v1/sip/token", json={"identity": "alice", "caller_id": NUMBER}
            )
            answer = issued.json()
            user = answer["sip_uri"].removeprefix("sip:").split("@")[0]
            async with connect(answer["ws_url"], subprotocols=[SIP_SUBPROTOCOL]) as browser:
                # A token without a caller id takes calls but places none.
                bob = plain["sip_uri"].removeprefix("sip:").split("@")[0]
                first = invite(bob, CALLEE, plain["token"]).replace("browser-call-1", "bob-1")
                await browser.send(first)
                refused = await final_answer(browser)
                assert refused.status == 403  # (over WebSocket no ACK is retransmitted for)
                await browser.send(invite(user, CALLEE, answer["token"], cseq=2))
                ok = await final_answer(browser)
                assert ok.status == 200, ok
                await browser.send(in_dialog("ACK", ok, user, 2, "z9hG4bKack2"))
                await asyncio.sleep(1.0)
                await browser.send(in_dialog("BYE", ok, user, 3, "z9hG4bKbye3"))
                bye_ok = await final_answer(browser)
                assert bye_ok.status == 200
            result = await carrier.wait()
            for _ in range(100):
                done = [call for call in await calls(database) if call.ended_at is not None]
                if done:
                    break
                await asyncio.sleep(0.1)
    assert result.returncode == 0, result.explain()
    (call,) = done
    assert (call.direction, call.from_number, call.to_number) == ("outbound", NUMBER, CALLEE)
    assert call.status == "completed" and call.price_minor is not None
