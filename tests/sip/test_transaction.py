"""RFC 3261 §17 transactions over real loopback sockets, with a tiny T1 to stay fast."""

from __future__ import annotations

import asyncio
import shutil
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import pytest

from sautikit.sip.message import Request, Response, parse_message
from sautikit.sip.transaction import (
    NO_RESPONSE_REASON,
    UNREACHABLE_REASON,
    InviteServerTransaction,
    ServerTransaction,
    TimerConfig,
    TransactionLayer,
    TransactionState,
    TransactionStateError,
)
from sautikit.sip.transport import Peer, SipTransportLayer
from sautikit.sip.uri import SipUri

FAST = TimerConfig(t1=0.02, t2=0.08, t4=0.1)


class RecordingUser:
    """A transaction user that records what it is handed and answers through ``answer``."""

    def __init__(self, answer: Callable[[ServerTransaction], None] | None = None) -> None:
        self.answer = answer
        self.transactions: asyncio.Queue[ServerTransaction] = asyncio.Queue()
        self.acks: asyncio.Queue[Request] = asyncio.Queue()
        self.stray: asyncio.Queue[Response] = asyncio.Queue()

    def on_request(self, transaction: ServerTransaction) -> None:
        self.transactions.put_nowait(transaction)
        if self.answer is not None:
            self.answer(transaction)

    def on_ack(self, ack: Request, source: Peer) -> None:
        self.acks.put_nowait(ack)

    def on_stray_response(self, response: Response, source: Peer) -> None:
        self.stray.put_nowait(response)


class UdpPhone(asyncio.DatagramProtocol):
    """A raw UDP socket that plays the far end by hand, to see every retransmission."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[Request | Response] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.received.put_nowait(parse_message(data))

    @property
    def peer(self) -> Peer:
        assert self.transport is not None
        return Peer("udp", "127.0.0.1", self.transport.get_extra_info("sockname")[1])

    def send(self, message: Request | Response, port: int) -> None:
        assert self.transport is not None
        self.transport.sendto(message.encode(), ("127.0.0.1", port))


MakeLayer = Callable[..., Awaitable[TransactionLayer]]


@pytest.fixture
async def make_layer() -> AsyncIterator[MakeLayer]:
    layers: list[TransactionLayer] = []

    async def make(
        user: RecordingUser, timers: TimerConfig = FAST, udp: bool = True, tcp: bool = False
    ) -> TransactionLayer:
        transport = SipTransportLayer()
        await transport.start("127.0.0.1", 0, udp=udp, tcp=tcp)
        layer = TransactionLayer(transport, user, timers)
        layers.append(layer)
        return layer

    yield make
    for layer in layers:
        layer.close()
        await layer.transport.close()


@pytest.fixture
async def phone() -> AsyncIterator[UdpPhone]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(UdpPhone, local_addr=("127.0.0.1", 0))
    yield protocol
    transport.close()


def new_request(
    method: str, target: int, call_id: str = "call-1", via: str | None = None
) -> Request:
    request = Request(method=method, uri=SipUri.parse(f"sip:bob@127.0.0.1:{target}"))
    if via is not None:
        request.headers.add("Via", via)
    request.headers.add("From", "Alice <sip:alice@127.0.0.1>;tag=alice-1")
    request.headers.add("To", "Bob <sip:bob@127.0.0.1>")
    request.headers.add("Call-ID", call_id)
    request.headers.add("CSeq", f"1 {method}")
    request.headers.add("Max-Forwards", "70")
    return request


def phone_request(
    phone: UdpPhone, method: str, target: int, branch: str = "z9hG4bKphone1"
) -> Request:
    via = f"SIP/2.0/UDP 127.0.0.1:{phone.peer.port};branch={branch};rport"
    return new_request(method, target, via=via)


async def next_item(queue: asyncio.Queue[Any]) -> Any:
    return await asyncio.wait_for(queue.get(), 5)


async def settle(timers: TimerConfig = FAST) -> None:
    """Let several T1 periods pass, for checks that nothing more arrives."""
    await asyncio.sleep(8 * timers.t1)


async def falls_quiet(queue: asyncio.Queue[Any]) -> bool:
    """True when nothing more arrives once messages already in flight have landed."""
    await settle()
    while not queue.empty():
        queue.get_nowait()
    await settle()
    return queue.empty()


async def test_invite_is_retransmitted_until_a_provisional_arrives(
    make_layer: MakeLayer, phone: UdpPhone
) -> None:
    alice = await make_layer(RecordingUser())
    responses: asyncio.Queue[Response] = asyncio.Queue()
    transaction = alice.send_request(
        new_request("INVITE", phone.peer.port), phone.peer, responses.put_nowait
    )
    copies = [await next_item(phone.received) for _ in range(3)]
    assert {invite.top_via.branch for invite in copies} == {transaction.request.top_via.branch}
    assert all(invite.method == "INVITE" for invite in copies)
    phone.send(copies[0].create_response(180, to_tag="bob-1"), alice.transport.port)
    assert (await next_item(responses)).status == 180
    assert transaction.state is TransactionState.PROCEEDING
    assert await falls_quiet(phone.received)


async def test_non_invite_is_retransmitted_and_times_out_with_408(
    make_layer: MakeLayer, phone: UdpPhone
) -> None:
    alice = await make_layer(RecordingUser(), TimerConfig(t1=0.005, t2=0.02, t4=0.05))
    transaction = alice.send_request(new_request("OPTIONS", phone.peer.port), phone.peer)
    final = await asyncio.wait_for(transaction.final_response, 5)
    assert final.status == 408
    assert final.call_id == "call-1"
    assert phone.received.qsize() > 3
    assert alice.active_transactions == 0


async def test_timer_b_gives_the_tu_a_408(make_layer: MakeLayer, phone: UdpPhone) -> None:
    alice = await make_layer(RecordingUser(), TimerConfig(t1=0.005))
    seen: list[Response] = []
    transaction = alice.send_request(
        new_request("INVITE", phone.peer.port), phone.peer, seen.append
    )
    final = await asyncio.wait_for(transaction.final_response, 5)
    assert final.status == 408
    assert [response.status for response in seen] == [408]
    assert transaction.state is TransactionState.TERMINATED


async def test_timer_b_s_408_is_told_from_a_peer_s_by_its_reason(
    make_layer: MakeLayer, phone: UdpPhone
) -> None:
    alice = await make_layer(RecordingUser(), TimerConfig(t1=0.005))
    transaction = alice.send_request(new_request("INVITE", phone.peer.port), phone.peer)
    final = await asyncio.wait_for(transaction.final_response, 5)
    assert (final.status, final.reason) == (408, NO_RESPONSE_REASON)


@pytest.mark.parametrize("method", ["INVITE", "OPTIONS"])
async def test_icmp_port_unreachable_fails_the_request_at_once(
    make_layer: MakeLayer, method: str
) -> None:
    # Default timers: timer B/F would take 32 s; the test's 5 s wait passes only if the
    # ICMP error (loopback never rate-limits it) fails the request first.
    alice = await make_layer(RecordingUser(), TimerConfig())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        closed = int(probe.getsockname()[1])
    transaction = alice.send_request(new_request(method, closed), Peer("udp", "127.0.0.1", closed))
    final = await asyncio.wait_for(transaction.final_response, 5)
    assert (final.status, final.reason) == (503, UNREACHABLE_REASON)
    assert alice.active_transactions == 0


async def test_486_is_acked_by_the_transaction_and_repeats_are_absorbed(
    make_layer: MakeLayer, phone: UdpPhone
) -> None:
    alice = await make_layer(RecordingUser())
    seen: list[Response] = []
    invite = new_request("INVITE", phone.peer.port)
    invite.headers.add("Route", "<sip:proxy.example.com;lr>")
    transaction = alice.send_request(invite, phone.peer, seen.append)
    received = await next_item(phone.received)
    busy = received.create_response(486, to_tag="bob-busy")
    phone.send(busy, alice.transport.port)
    ack = await next_item(phone.received)
    while ack.method == "INVITE":  # retransmissions sent before the 486 arrived
        ack = await next_item(phone.received)
    assert ack.method == "ACK"
    assert str(ack.uri) == str(invite.uri)
    assert ack.cseq.number == 1 and ack.cseq.method == "ACK"
    assert ack.to.tag == "bob-busy"
    assert ack.top_via.branch == transaction.request.top_via.branch
    assert len(ack.vias) == 1
    assert [str(route.uri) for route in ack.routes] == ["sip:proxy.example.com;lr"]
    phone.send(busy, alice.transport.port)  # the ACK "got lost": the 486 comes again
    again = await next_item(phone.received)
    assert again.method == "ACK"
    await settle()
    assert [response.status for response in seen] == [486]
    assert transaction.state is TransactionState.COMPLETED


async def test_out_of_order_and_duplicated_responses(
    make_layer: MakeLayer, phone: UdpPhone
) -> None:
    alice = await make_layer(RecordingUser())
    seen: list[int] = []
    transaction = alice.send_request(
        new_request("INVITE", phone.peer.port), phone.peer, lambda r: seen.append(r.status)
    )
    invite = await next_item(phone.received)
    ok = invite.create_response(200, to_tag="bob-ok")
    for response in (ok, invite.create_response(180, to_tag="bob-ok"), ok):
        phone.send(response, alice.transport.port)
    await settle()
    # The late 180 is dropped; the repeated 2xx reaches the TU so its dialog can re-ACK.
    assert seen == [200, 200]
    assert transaction.state is TransactionState.ACCEPTED

    statuses: list[int] = []
    alice.send_request(
        new_request("OPTIONS", phone.peer.port, "call-2"),
        phone.peer,
        lambda r: statuses.append(r.status),
    )
    request = await next_item(phone.received)
    while request.method != "OPTIONS":  # INVITE copies sent before the 200 arrived
        request = await next_item(phone.received)
    for status in (200, 100, 200):
        phone.send(request.create_response(status, to_tag="t"), alice.transport.port)
    await settle()
    assert statuses == [200]


async def test_responses_matching_no_transaction_go_to_the_tu(
    make_layer: MakeLayer, phone: UdpPhone
) -> None:
    user = RecordingUser()
    alice = await make_layer(user)
    ours = str(alice.transport.make_via("udp", "z9hG4bKnotours"))
    stray = new_request("INVITE", phone.peer.port, via=ours).create_response(200, to_tag="x")
    foreign = phone_request(phone, "INVITE", alice.transport.port).create_response(180)
    phone.send(foreign, alice.transport.port)  # a Via we never wrote: dropped (§18.1.2)
    phone.send(stray, alice.transport.port)
    assert (await next_item(user.stray)).status == 200
    assert user.stray.empty()


async def test_server_sends_100_trying_and_answers_a_repeated_invite_once(
    make_layer: MakeLayer, phone: UdpPhone
) -> None:
    user = RecordingUser()
    bob = await make_layer(user)
    invite = phone_request(phone, "INVITE", bob.transport.port)
    phone.send(invite, bob.transport.port)
    transaction = await next_item(user.transactions)
    trying = await next_item(phone.received)
    assert trying.status == 100 and trying.to.tag is None
    phone.send(invite, bob.transport.port)
    assert (await next_item(phone.received)).status == 100
    transaction.respond(transaction.request.create_response(180, to_tag="bob-1"))
    assert (await next_item(phone.received)).status == 180
    phone.send(invite, bob.transport.port)
    assert (await next_item(phone.received)).status == 180
    assert user.transactions.empty()


async def test_server_retransmits_its_final_response_until_the_ack(
    make_layer: MakeLayer, phone: UdpPhone
) -> None:
    user = RecordingUser(lambda tx: tx.respond(tx.request.create_response(486, to_tag="b")))
    bob = await make_layer(user)
    invite = phone_request(phone, "INVITE", bob.transport.port)
    phone.send(invite, bob.transport.port)
    transaction = await next_item(user.transactions)
    assert (await next_item(phone.received)).status == 100  # sent before the TU saw it
    first, second = await next_item(phone.received), await next_item(phone.received)
    assert first.status == second.status == 486  # timer G resends without any prompt
    phone.send(invite, bob.transport.port)  # the request repeats: the 486 answers it again
    assert (await next_item(phone.received)).status == 486
    ack = phone_request(phone, "ACK", bob.transport.port)
    ack.headers.set("To", str(first.to))
    phone.send(ack, bob.transport.port)
    for _ in range(50):
        if transaction.state is not TransactionState.COMPLETED:
            break
        await asyncio.sleep(FAST.t1)
    assert transaction.state in (TransactionState.CONFIRMED, TransactionState.TERMINATED)
    assert await falls_quiet(phone.received)
    assert user.acks.empty()  # the ACK for a failure belongs to the transaction
    assert user.transactions.empty()
    with pytest.raises(TransactionStateError):
        transaction.respond(transaction.request.create_response(200, to_tag="b"))


async def test_non_invite_server_answers_repeats_with_its_final_response(
    make_layer: MakeLayer, phone: UdpPhone
) -> None:
    user = RecordingUser(lambda tx: tx.respond(tx.request.create_response(200, to_tag="b")))
    bob = await make_layer(user)
    options = phone_request(phone, "OPTIONS", bob.transport.port)
    for _ in range(3):
        phone.send(options, bob.transport.port)
    statuses = [(await next_item(phone.received)).status for _ in range(3)]
    assert statuses == [200, 200, 200]
    await next_item(user.transactions)
    assert user.transactions.empty()


async def test_invite_486_and_ack_between_two_layers(make_layer: MakeLayer) -> None:
    bob_user = RecordingUser(lambda tx: tx.respond(tx.request.create_response(486, to_tag="b")))
    bob = await make_layer(bob_user)
    alice = await make_layer(RecordingUser())
    bob_peer = Peer("udp", "127.0.0.1", bob.transport.port)
    transaction = alice.send_request(new_request("INVITE", bob.transport.port), bob_peer)
    assert (await asyncio.wait_for(transaction.final_response, 5)).status == 486
    server = await next_item(bob_user.transactions)
    for _ in range(50):
        if server.state is not TransactionState.COMPLETED:
            break
        await asyncio.sleep(FAST.t1)
    assert server.state in (TransactionState.CONFIRMED, TransactionState.TERMINATED)


async def test_2xx_ack_reaches_the_tu_and_invite_repeats_get_the_2xx_again(
    make_layer: MakeLayer, phone: UdpPhone
) -> None:
    user = RecordingUser(lambda tx: tx.respond(tx.request.create_response(200, to_tag="b")))
    bob = await make_layer(user)
    alice_user = RecordingUser()
    alice = await make_layer(alice_user)
    bob_peer = Peer("udp", "127.0.0.1", bob.transport.port)
    transaction = alice.send_request(new_request("INVITE", bob.transport.port), bob_peer)
    ok = await asyncio.wait_for(transaction.final_response, 5)
    assert ok.status == 200 and ok.to.tag == "b"
    server = await next_item(user.transactions)
    assert server.state is TransactionState.ACCEPTED
    ack = new_request("ACK", bob.transport.port)
    ack.headers.set("To", str(ok.to))
    ack.headers.prepend("Via", str(alice.transport.make_via("udp", "z9hG4bKack2xx")))
    await alice.send_stateless(ack, bob_peer)
    assert (await next_item(user.acks)).cseq.method == "ACK"
    # The dialog layer repeats its 2xx through the transaction while it is Accepted.
    server.respond(ok)
    await settle()
    assert user.transactions.empty()


async def test_a_repeated_invite_in_accepted_gets_the_same_2xx_not_a_new_transaction(
    make_layer: MakeLayer, phone: UdpPhone
) -> None:
    user = RecordingUser(lambda tx: tx.respond(tx.request.create_response(200, to_tag="b")))
    bob = await make_layer(user)
    invite = phone_request(phone, "INVITE", bob.transport.port)
    phone.send(invite, bob.transport.port)
    assert (await next_item(phone.received)).status == 100
    ok = await next_item(phone.received)
    assert ok.status == 200
    phone.send(invite, bob.transport.port)
    again = await next_item(phone.received)
    assert again.status == 200 and again.to.tag == ok.to.tag
    await next_item(user.transactions)
    assert user.transactions.empty()


async def test_cancel_is_matched_to_its_invite_server_transaction(make_layer: MakeLayer) -> None:
    def answer(transaction: ServerTransaction) -> None:
        request = transaction.request
        if request.method == "INVITE":
            transaction.respond(request.create_response(180, to_tag="b"))
        elif request.method == "CANCEL":
            invite = transaction.matched_invite
            assert isinstance(invite, InviteServerTransaction)
            transaction.respond(request.create_response(200, to_tag="b"))
            invite.respond(invite.request.create_response(487, to_tag="b"))

    bob_user = RecordingUser(answer)
    bob = await make_layer(bob_user)
    alice = await make_layer(RecordingUser())
    bob_peer = Peer("udp", "127.0.0.1", bob.transport.port)
    ringing: asyncio.Queue[Response] = asyncio.Queue()
    invite = alice.send_request(
        new_request("INVITE", bob.transport.port), bob_peer, ringing.put_nowait
    )
    assert (await next_item(ringing)).status == 100
    assert (await next_item(ringing)).status == 180
    cancel = alice.send_request(invite.request.create_cancel(), bob_peer)
    assert (await asyncio.wait_for(cancel.final_response, 5)).status == 200
    assert (await asyncio.wait_for(invite.final_response, 5)).status == 487
    invite_server = await next_item(bob_user.transactions)
    cancel_server = await next_item(bob_user.transactions)
    assert cancel_server.matched_invite is invite_server


async def test_cancel_without_an_invite_has_no_match(
    make_layer: MakeLayer, phone: UdpPhone
) -> None:
    user = RecordingUser(lambda tx: tx.respond(tx.request.create_response(481)))
    bob = await make_layer(user)
    phone.send(phone_request(phone, "CANCEL", bob.transport.port), bob.transport.port)
    transaction = await next_item(user.transactions)
    assert transaction.matched_invite is None
    assert (await next_item(phone.received)).status == 481


async def test_invite_over_tcp_without_retransmissions(make_layer: MakeLayer) -> None:
    bob_user = RecordingUser(lambda tx: tx.respond(tx.request.create_response(486, to_tag="b")))
    bob = await make_layer(bob_user, udp=False, tcp=True)
    alice = await make_layer(RecordingUser(), udp=False, tcp=True)
    bob_peer = Peer("tcp", "127.0.0.1", bob.transport.port)
    transaction = alice.send_request(new_request("INVITE", bob.transport.port), bob_peer)
    assert transaction.request.top_via.transport == "TCP"
    assert (await asyncio.wait_for(transaction.final_response, 5)).status == 486
    server = await next_item(bob_user.transactions)
    for _ in range(50):
        if server.state is TransactionState.TERMINATED:
            break
        await asyncio.sleep(FAST.t1)
    assert server.state is TransactionState.TERMINATED  # timer I is zero on TCP
    assert bob_user.transactions.empty()


async def test_transport_failure_gives_the_tu_a_503(make_layer: MakeLayer) -> None:
    alice = await make_layer(RecordingUser(), udp=False, tcp=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    transaction = alice.send_request(
        new_request("OPTIONS", closed_port), Peer("tcp", "127.0.0.1", closed_port)
    )
    assert (await asyncio.wait_for(transaction.final_response, 5)).status == 503


@pytest.mark.sipp
@pytest.mark.skipif(shutil.which("sipp") is None, reason="SIPp is not installed")
@pytest.mark.parametrize("sipp_transport", ["u1", "t1"])
async def test_sipp_uac_completes_a_call_against_a_transaction_layer_responder(
    make_layer: MakeLayer, tmp_path: Any, sipp_transport: str
) -> None:
    def answer(transaction: ServerTransaction) -> None:
        response = transaction.request.create_response(200, to_tag="sautikit")
        if transaction.request.method == "INVITE":
            response.headers.add("Contact", f"<sip:responder@127.0.0.1:{responder.transport.port}>")
        transaction.respond(response)

    responder = await make_layer(RecordingUser(answer), TimerConfig(), tcp=True)
    process = await asyncio.create_subprocess_exec(
        "sipp",
        "-sn",
        "uac",
        f"127.0.0.1:{responder.transport.port}",
        "-t",
        sipp_transport,
        "-i",
        "127.0.0.1",
        "-p",
        "0",
        "-m",
        "1",
        "-nostdin",
        "-timeout",
        "15",
        "-timeout_error",
        cwd=tmp_path,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, stderr.decode(errors="replace")


async def test_a_crashing_tu_answers_500_instead_of_leaving_the_caller_hanging(
    make_layer: MakeLayer, phone: UdpPhone
) -> None:
    def crash(transaction: ServerTransaction) -> None:
        raise RuntimeError("application bug")

    bob = await make_layer(RecordingUser(crash))
    phone.send(phone_request(phone, "INVITE", bob.transport.port), bob.transport.port)
    assert (await next_item(phone.received)).status == 100
    assert (await next_item(phone.received)).status == 500


async def test_closing_the_layer_cancels_pending_waits(
    make_layer: MakeLayer, phone: UdpPhone
) -> None:
    alice = await make_layer(RecordingUser())
    transaction = alice.send_request(new_request("INVITE", phone.peer.port), phone.peer)
    alice.close()
    with pytest.raises(asyncio.CancelledError):
        await transaction.final_response
    assert alice.active_transactions == 0


async def test_timer_h_tells_the_tu_when_the_ack_never_comes(
    make_layer: MakeLayer, phone: UdpPhone
) -> None:
    failures: asyncio.Queue[str] = asyncio.Queue()

    def busy(transaction: ServerTransaction) -> None:
        transaction.on_failure = lambda tx, reason: failures.put_nowait(reason)
        transaction.respond(transaction.request.create_response(486, to_tag="b"))

    bob = await make_layer(RecordingUser(busy), TimerConfig(t1=0.005, t2=0.02))
    invite = phone_request(phone, "INVITE", bob.transport.port)
    phone.send(invite, bob.transport.port)
    assert "timer H" in await next_item(failures)
    assert phone.received.qsize() > 3  # timer G kept resending the 486
    assert bob.active_transactions == 0
