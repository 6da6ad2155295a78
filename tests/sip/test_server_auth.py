"""Digest guessing against a user agent on loopback: 3000 wrong passwords, scanners."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.sip.test_transaction import UdpPhone
from tests.sip.test_useragent import (
    FAST,
    REALM,
    SilentUser,
    lookup_ha1,
    register,
    register_request,
    send,
)

from sautikit.sip import UserAgent
from sautikit.sip.digest import build_authorization, parse_challenge
from sautikit.sip.message import Request
from sautikit.sip.transaction import TimerConfig, TransactionLayer
from sautikit.sip.transport import SipTransportLayer
from sautikit.sip.uri import SipUri

# sipvicious (PyPI) installs its tools beside the interpreter running the tests.
SIPVICIOUS = Path(sys.executable).parent


@pytest.fixture
async def agent() -> AsyncIterator[UserAgent]:
    # The production throttle (10 failures a minute per address, 600 s refusal).
    made = await UserAgent.listen(
        "127.0.0.1", 0, tcp=False, timers=FAST, lookup_ha1=lookup_ha1, realm_for=lambda r: REALM
    )
    yield made
    await made.close()


async def client_on(host: str) -> TransactionLayer:
    transport = SipTransportLayer()
    await transport.start(host, 0, tcp=False)
    # Real-world timers: 100 requests at a time on a loaded machine must not time out.
    return TransactionLayer(transport, SilentUser(), TimerConfig())


async def close(layer: TransactionLayer) -> None:
    layer.close()
    await layer.transport.close()


async def test_3000_wrong_guesses_are_cut_off_and_the_right_password_still_works_elsewhere(
    agent: UserAgent, caplog: pytest.LogCaptureFixture
) -> None:
    guesser = await client_on("127.0.0.1")
    phone = await client_on("127.0.0.2")  # the user's own phone, another address
    try:
        first = await send(guesser, register_request(guesser, agent, "alice", cseq=1), agent)
        challenge = parse_challenge(first.headers.get_all("WWW-Authenticate")[0])

        def guess(number: int) -> Request:
            request = register_request(guesser, agent, "alice", cseq=number + 2)
            request.headers.add(
                "Authorization",
                build_authorization(
                    challenge,
                    method="REGISTER",
                    uri=str(request.uri),
                    username="alice",
                    password=f"guess-{number}",
                ),
            )
            return request

        caplog.set_level(logging.WARNING, "sautikit.sip.server_auth")
        statuses: list[int] = []
        for batch in range(30):
            answers = await asyncio.gather(
                *(send(guesser, guess(batch * 100 + n), agent) for n in range(100))
            )
            statuses += [answer.status for answer in answers]
        assert len(statuses) == 3000
        assert statuses.count(401) == 10  # re-challenged until the threshold...
        assert statuses.count(403) == 2990  # ...then refused without a challenge
        failures = [r for r in caplog.records if "authentication failed" in r.getMessage()]
        assert len(failures) == 10
        assert "'alice' from 127.0.0.1" in failures[0].getMessage()
        assert "guess-" not in caplog.text  # no secret in the log
        assert (
            sum("refused for 600 s: source 127.0.0.1" in r.getMessage() for r in caplog.records)
            == 1
        )
        assert agent.auth.throttle.failures_total == 10
        assert agent.auth.throttle.refusals_total == 2990
        # A fresh REGISTER from the guesser gets no fresh challenge either.
        again = await send(guesser, register_request(guesser, agent, "alice", cseq=9000), agent)
        assert again.status == 403

        ok = await register(phone, agent, "alice", "s3cret", algorithm="MD5", cseq=1)
        assert ok.status == 200
    finally:
        await close(guesser)
        await close(phone)


async def test_a_scanner_gets_silence_and_a_phone_its_answer(agent: UserAgent) -> None:
    loop = asyncio.get_running_loop()
    endpoint, raw = await loop.create_datagram_endpoint(UdpPhone, local_addr=("127.0.0.1", 0))
    try:
        for agent_name, branch in (
            ("friendly-scanner", "z9hG4bK-scan"),
            ("Linphone", "z9hG4bK-ok"),
        ):
            options = Request(
                method="OPTIONS", uri=SipUri.parse(f"sip:100@127.0.0.1:{agent.transport.port}")
            )
            options.headers.add("Via", f"SIP/2.0/UDP 127.0.0.1:{raw.peer.port};branch={branch}")
            options.headers.add("From", "<sip:100@127.0.0.1>;tag=scan")
            options.headers.add("To", "<sip:100@127.0.0.1>")
            options.headers.add("Call-ID", branch)
            options.headers.add("CSeq", "1 OPTIONS")
            options.headers.add("User-Agent", agent_name)
            raw.send(options, agent.transport.port)
        answer = await asyncio.wait_for(raw.received.get(), 5)
        assert answer.top_via.branch == "z9hG4bK-ok" and answer.status == 200
        assert raw.received.empty()
        assert agent.scanner_requests_dropped == 1
    finally:
        endpoint.close()


@pytest.mark.skipif(
    not (SIPVICIOUS / "sipvicious_svwar").exists(), reason="sipvicious is not installed"
)
async def test_sipvicious_finds_no_extension_and_cracks_no_password(
    agent: UserAgent, tmp_path: Path
) -> None:
    target = f"udp://127.0.0.1:{agent.transport.port}"
    (tmp_path / "names.txt").write_text("alice\nbob\nadmin\n")
    (tmp_path / "passwords.txt").write_text("1234\npassword\ns3cre\ns3cret\n")
    runs = (
        ["sipvicious_svwar", "-d", "names.txt", "--force", target],
        ["sipvicious_svwar", "-e", "100-120", "-m", "INVITE", "--force", target],
        ["sipvicious_svcrack", "-u", "alice", "-d", "passwords.txt", target],
    )
    for tool, *arguments in runs:
        process = await asyncio.create_subprocess_exec(
            str(SIPVICIOUS / tool),
            *arguments,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=tmp_path,
        )
        output, _ = await asyncio.wait_for(process.communicate(), 110)
        assert "found nothing" in output.decode(errors="replace"), output
    assert agent.scanner_requests_dropped >= 3
    assert agent.lookup(f"sip:alice@{REALM}") == []
