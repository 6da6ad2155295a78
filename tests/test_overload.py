"""Overload control: past a threshold, new calls are refused at the door — SIP 503 with
Retry-After (and the same 503 for the INVITE's retransmissions), HTTP 503 with the error
envelope — before any database work, so nothing of a refused call is kept."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from tests.serve_process import CALLEE, NUMBER, ServeProcess, calls, seed, serve_database
from tests.sipp import Sipp, free_port, requires_sipp
from tests.voice.voice_rig import AppServer, serve_app

from sautikit.db import Database
from sautikit.loopwatch import LoopWatch
from sautikit.overload import OverloadController, OverloadLimits

# --- the controller -------------------------------------------------------------------------


def test_each_threshold_refuses_with_its_reason() -> None:
    in_setup, queued, waited, free = [0], [0], [0.0], [100]
    registry = CollectorRegistry()
    controller = OverloadController(
        OverloadLimits(
            max_setups=3, max_write_queue=10, max_write_wait=2, min_free_rtp_ports=4, retry_after=7
        ),
        setups=lambda: in_setup[0],
        write_queue=lambda: queued[0],
        write_wait=lambda: waited[0],
        free_rtp_ports=lambda: free[0],
    )
    controller.register(registry)
    assert controller.check() is None
    in_setup[0] = 3
    refusal = controller.check()
    assert refusal is not None and refusal.reason == "setups"
    assert refusal.retry_after_header == ("Retry-After", "7")
    in_setup[0], queued[0] = 0, 10
    assert (refusal := controller.check()) is not None and refusal.reason == "write_queue"
    queued[0], waited[0] = 0, 2.5
    assert (refusal := controller.check()) is not None and refusal.reason == "write_wait"
    waited[0], free[0] = 0.0, 3
    assert (refusal := controller.check()) is not None and refusal.reason == "rtp_ports"
    free[0] = 4
    assert controller.check() is None
    exported = generate_latest(registry).decode()
    assert 'sautikit_overload_refusals_total{reason="setups"} 1.0' in exported


def test_loop_lag_past_the_threshold_refuses() -> None:
    watch = LoopWatch()
    controller = OverloadController(OverloadLimits(max_loop_lag=0.1), loop_watch=watch)
    watch.record(0.001)
    assert controller.check() is None
    watch.record(0.5)  # held once: not yet overload
    assert controller.check() is None
    for _ in range(25):
        watch.record(0.5)  # held half a second, again and again
    assert (refusal := controller.check()) is not None and refusal.reason == "loop_lag"


def test_a_threshold_of_zero_is_off() -> None:
    controller = OverloadController(
        OverloadLimits(max_setups=0, max_write_queue=0, max_write_wait=0, min_free_rtp_ports=0),
        setups=lambda: 10**6,
        write_queue=lambda: 10**6,
        write_wait=lambda: 10.0**6,
        free_rtp_ports=lambda: 0,
    )
    assert controller.check() is None


# --- a real serve process past its threshold ------------------------------------------------


@pytest.fixture(scope="module")
def app_server() -> Iterator[AppServer]:
    with serve_app() as server:
        yield server


@pytest.fixture
def app(app_server: AppServer) -> Iterator[AppServer]:
    app_server.reset()
    yield app_server
    app_server.reset()


FLOOD = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="flood: each call is either let in (ringing) or refused with 503">
  <send retrans="500">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:+254711[call_number]@[local_ip]:[local_port]>;tag=[pid]f[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:sipp@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true" next="let_in"/>
  <recv response="503">
    <action>
      <ereg regexp="Retry-After: *[0-9]+" search_in="msg" check_it="true" assign_to="after"/>
      <log message="refused [call_number]"/>
    </action>
  </recv>
  <Reference variables="after"/>
  <send>
    <![CDATA[
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:+254711[call_number]@[local_ip]:[local_port]>;tag=[pid]f[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <nop next="end"/>
  <label id="let_in"/>
  <nop><action><log message="let in [call_number]"/></action></nop>
  <label id="end"/>
</scenario>
"""


def _serve_past(
    tmp_path: Path, url: str, limit: dict[str, str], rtp_ports: tuple[int, int] | None = None
) -> ServeProcess:
    """A serve process whose one overload ``limit`` decides, however loaded the machine
    is (the loop-lag and write-wait checks are off); its 503s say Retry-After: 9."""
    env = {
        "SAUTIKIT_OVERLOAD_RETRY_AFTER_SECONDS": "9",
        "SAUTIKIT_OVERLOAD_MAX_LOOP_LAG_MS": "0",
        "SAUTIKIT_OVERLOAD_MAX_WRITE_WAIT_MS": "0",
        **limit,
    }
    return ServeProcess(tmp_path / "var", url, rtp_ports=rtp_ports, env=env)


async def _flood(serve: ServeProcess, tmp_path: Path, *, calls: int, rate: int) -> tuple[int, int]:
    """``calls`` INVITEs from SIPp at ``rate`` a second: how many were let in (ringing)
    and how many refused with 503 and a Retry-After."""
    scenario, log = tmp_path / "flood.xml", tmp_path / f"flood-{calls}.log"
    scenario.write_text(FLOOD)
    flood = Sipp(
        scenario=scenario,
        remote=serve.sip,
        service=NUMBER,
        calls=calls,
        timeout=30,
        extra=["-r", str(rate), "-trace_logs", "-log_file", str(log)],
    )
    result = await flood.run()
    assert result.returncode == 0, result.explain()
    outcomes = log.read_text()
    return outcomes.count("let in"), outcomes.count("refused")


def _refusals(metrics: str, reason: str) -> float:
    pattern = rf'sautikit_overload_refusals_total\{{reason="{reason}"\}} ([0-9.]+)'
    found = re.search(pattern, metrics)
    assert found is not None, metrics
    return float(found.group(1))


def _invite(sip_port: int, local_port: int, branch: str) -> bytes:
    sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    sdp += "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    return (
        f"INVITE sip:{NUMBER}@127.0.0.1:{sip_port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{local_port};branch={branch}\r\n"
        f"From: <sip:+254799000001@127.0.0.1:{local_port}>;tag=retransmitter\r\n"
        f"To: <sip:{NUMBER}@127.0.0.1:{sip_port}>\r\n"
        f"Call-ID: {branch}@127.0.0.1\r\nCSeq: 1 INVITE\r\n"
        f"Contact: <sip:r@127.0.0.1:{local_port}>\r\nMax-Forwards: 70\r\n"
        f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n{sdp}"
    ).encode()


async def _final_answer(sock: socket.socket) -> str:
    """The first final (non-1xx) response on ``sock``."""
    loop = asyncio.get_running_loop()
    while True:
        data = (await asyncio.wait_for(loop.sock_recv(sock, 65536), 20)).decode()
        status = int(data.split(" ", 2)[1])
        if status >= 200:
            return data


@pytest.mark.sipp
@requires_sipp
async def test_past_the_setup_threshold_new_calls_get_503_at_once(
    served_database: tuple[str, Database], app: AppServer, tmp_path: Path
) -> None:
    """Two calls wait in setup (their app is slow) with SAUTIKIT_OVERLOAD_MAX_SETUPS=2:
    a flood of INVITEs is refused with 503 + Retry-After, a retransmitted INVITE gets the
    same 503 again, POST /v1/calls answers 503 with the envelope — and the database keeps
    the two calls let in, nothing of the refused ones."""
    url, database = served_database
    voice, reached = app.slow("/voice")
    seeded = await seed(database, voice_url=voice, trunk_port=free_port())
    serve = _serve_past(tmp_path, url, {"SAUTIKIT_OVERLOAD_MAX_SETUPS": "2"})
    async with serve, serve.api(seeded.headers) as api:
        assert await _flood(serve, tmp_path, calls=12, rate=20) == (2, 10)
        await asyncio.wait_for(reached.wait(), 20)

        # A carrier that lost our 503 sends the INVITE again: the same 503, not a new call.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            sock.setblocking(False)
            invite = _invite(serve.sip[1], sock.getsockname()[1], "z9hG4bK-retransmitted-1")
            answers = []
            for _ in range(2):
                sock.sendto(invite, serve.sip)
                answers.append(await _final_answer(sock))
        first, again = answers
        assert first.startswith("SIP/2.0 503") and again.startswith("SIP/2.0 503")
        assert re.search(r"(?im)^Retry-After: *9\b", first)
        to_tag = re.compile(r"(?im)^To:.*;tag=([^;\s]+)")
        first_tag, again_tag = to_tag.search(first), to_tag.search(again)
        assert first_tag is not None and again_tag is not None
        assert first_tag.group(1) == again_tag.group(1)  # one transaction answered twice

        placed = await api.post(
            "/v1/calls", json={"to": CALLEE, "from": NUMBER, "action_url": app.url("/x")}
        )
        assert placed.status_code == 503, placed.text
        assert placed.headers["Retry-After"] == "9"
        assert placed.json()["error"]["code"] == "service.overloaded"
        assert _refusals((await api.get("/metrics")).text, "setups") >= 12

        kept = await calls(database)
        assert len(kept) == 2  # only the two let in; refused calls left no row
        assert all(call.direction == "inbound" for call in kept)


def _free_rtp_pair() -> tuple[int, int]:
    """An even UDP port whose odd neighbour is free too: one RTP/RTCP pair."""
    for _ in range(100):
        port = free_port() & ~1
        with (
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rtp,
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rtcp,
        ):
            try:
                rtp.bind(("127.0.0.1", port))
                rtcp.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port, port + 1
    raise RuntimeError("no free RTP/RTCP port pair")


@pytest.mark.sipp
@requires_sipp
async def test_a_call_that_finds_no_free_rtp_port_gets_503_with_retry_after(
    app: AppServer, tmp_path: Path
) -> None:
    """An operator's RTP range of one port pair: the first call holds it (its app is
    slow), the second finds none free and gets the overload answer — 503 with Retry-After,
    counted as an ``rtp_ports`` refusal — and leaves no call row. The free-port threshold
    is off so the allocator itself runs out, as when another process holds the ports."""
    async with serve_database("sqlite", tmp_path) as (url, database):
        voice, reached = app.slow("/voice")
        seeded = await seed(database, voice_url=voice, trunk_port=free_port())
        serve = _serve_past(
            tmp_path, url, {"SAUTIKIT_OVERLOAD_MIN_FREE_RTP_PORTS": "0"}, _free_rtp_pair()
        )
        async with serve, serve.api(seeded.headers) as api:
            assert await _flood(serve, tmp_path, calls=2, rate=2) == (1, 1)
            await asyncio.wait_for(reached.wait(), 20)
            assert _refusals((await api.get("/metrics")).text, "rtp_ports") == 1
            kept = await calls(database)
            assert len(kept) == 1  # the call let in; the refused one left no row
        assert "no free RTP port pair" in serve.log
