"""RFC 3261 §12-§13 dialog bookkeeping from captured messages, with no sockets."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sautikit.sip.dialog import Dialog, DialogId, DialogState, SuccessRetransmitter
from sautikit.sip.message import Headers, Request, Response, parse_message
from sautikit.sip.transaction import TimerConfig
from sautikit.sip.transport import Peer
from sautikit.sip.uri import NameAddress

# An INVITE as SIPp 3.6.1 sends it, after two proxies added Record-Route.
INVITE = (
    b"INVITE sip:bob@pbx.test SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK-p2\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-p1\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.9:5061;branch=z9hG4bK-uac\r\n"
    b"Record-Route: <sip:10.0.0.2;lr>\r\n"
    b"Record-Route: <sip:10.0.0.1:5070;lr;transport=tcp>\r\n"
    b'From: "SIPp" <sip:sipp@192.0.2.9:5061>;tag=caller-tag\r\n'
    b"To: <sip:bob@pbx.test>\r\n"
    b"Call-ID: 1-2345@192.0.2.9\r\n"
    b"CSeq: 7 INVITE\r\n"
    b"Contact: <sip:sipp@192.0.2.9:5061>\r\n"
    b"Max-Forwards: 68\r\n"
    b"Content-Length: 0\r\n\r\n"
)

OUR_CONTACT = NameAddress.parse("<sip:sautikit@198.51.100.1:5060>")


def invite() -> Request:
    message = parse_message(INVITE)
    assert isinstance(message, Request)
    return message


def answer(request: Request, status: int = 200, tag: str = "callee-tag") -> Response:
    response = request.create_response(status, to_tag=tag)
    for value in request.headers.get_all("Record-Route"):
        response.headers.add("Record-Route", value)
    response.headers.add("Contact", "<sip:bob@203.0.113.5:5080>")
    return response


def test_uas_dialog_keeps_record_route_order_and_targets_the_callers_contact() -> None:
    request = invite()
    dialog = Dialog.from_uas(request, answer(request), OUR_CONTACT)
    assert dialog.id == DialogId("1-2345@192.0.2.9", "callee-tag", "caller-tag")
    assert dialog.state is DialogState.CONFIRMED and not dialog.is_uac
    assert [str(r.uri) for r in dialog.route_set] == [
        "sip:10.0.0.2;lr",
        "sip:10.0.0.1:5070;lr;transport=tcp",
    ]
    assert str(dialog.remote_target) == "sip:sipp@192.0.2.9:5061"
    assert dialog.remote_cseq == 7

    bye = dialog.create_request("BYE")
    assert bye.method == "BYE" and str(bye.uri) == "sip:sipp@192.0.2.9:5061"
    assert bye.headers.get_all("Route") == [
        "<sip:10.0.0.2;lr>",
        "<sip:10.0.0.1:5070;lr;transport=tcp>",
    ]
    assert bye.from_.tag == "callee-tag" and bye.to.tag == "caller-tag"
    assert str(bye.from_.uri) == "sip:bob@pbx.test"
    assert "Contact" not in bye.headers
    assert dialog.next_hop() == Peer("udp", "10.0.0.2", 5060)


def test_the_callers_in_dialog_request_finds_the_callees_dialog() -> None:
    request = invite()
    response = answer(request)
    callee = Dialog.from_uas(request, response, OUR_CONTACT)
    caller = Dialog.from_uac(request, response)
    bye = caller.create_request("BYE")
    assert DialogId.of_request(bye) == callee.id
    assert DialogId.of_response(bye.create_response(200)) == caller.id


def test_uac_dialog_reverses_the_route_set_and_increments_cseq() -> None:
    request = invite()
    dialog = Dialog.from_uac(request, answer(request))
    assert dialog.is_uac and dialog.id == DialogId("1-2345@192.0.2.9", "caller-tag", "callee-tag")
    assert [str(r.uri) for r in dialog.route_set] == [
        "sip:10.0.0.1:5070;lr;transport=tcp",
        "sip:10.0.0.2;lr",
    ]
    assert dialog.next_hop() == Peer("tcp", "10.0.0.1", 5070)
    reinvite = dialog.create_request("INVITE", body=b"v=0\r\n")
    bye = dialog.create_request("BYE")
    assert (reinvite.cseq.number, bye.cseq.number) == (8, 9)
    assert reinvite.headers.get("Contact") == "<sip:sipp@192.0.2.9:5061>"
    assert reinvite.headers.get("Content-Type") == "application/sdp"
    assert str(reinvite.uri) == "sip:bob@203.0.113.5:5080"


def test_ack_for_2xx_reuses_the_invite_cseq_and_carries_its_credentials() -> None:
    request = invite()
    request.headers.add("Proxy-Authorization", 'Digest username="sipp"')
    dialog = Dialog.from_uac(request, answer(request))
    before = dialog.local_cseq
    ack = dialog.create_ack(request)
    assert ack.cseq == (7, "ACK") and dialog.local_cseq == before
    assert ack.headers.get("Proxy-Authorization") == 'Digest username="sipp"'
    assert len(ack.headers.get_all("Route")) == 2
    assert "Via" not in ack.headers  # the sender adds one with a new branch
    with pytest.raises(ValueError):
        dialog.create_request("ACK")


def test_early_dialog_from_a_provisional_is_replaced_by_the_2xx_route_and_target() -> None:
    request = invite()
    ringing = request.create_response(180, to_tag="callee-tag")
    ringing.headers.add("Contact", "<sip:early@203.0.113.5>")
    dialog = Dialog.from_uac(request, ringing)
    early = (dialog.state, str(dialog.remote_target), list(dialog.route_set))
    assert early == (DialogState.EARLY, "sip:early@203.0.113.5", [])
    dialog.confirm(answer(request))
    assert dialog.state is DialogState.CONFIRMED
    assert str(dialog.remote_target) == "sip:bob@203.0.113.5:5080"
    assert len(dialog.route_set) == 2


def test_out_of_order_request_is_detected_by_its_lower_cseq() -> None:
    request = invite()
    dialog = Dialog.from_uas(request, answer(request), OUR_CONTACT)
    later = Request(method="INFO", uri=request.uri, headers=_with_cseq(request, "9 INFO"))
    stale = Request(method="INFO", uri=request.uri, headers=_with_cseq(request, "8 INFO"))
    ack = Request(method="ACK", uri=request.uri, headers=_with_cseq(request, "7 ACK"))
    assert dialog.accept_remote_cseq(later)
    assert not dialog.accept_remote_cseq(stale)
    assert dialog.accept_remote_cseq(ack)
    assert dialog.remote_cseq == 9


def _with_cseq(request: Request, cseq: str) -> Headers:
    headers = Headers(list(request.headers))
    headers.set("CSeq", cseq)
    return headers


def test_refresh_target_follows_a_reinvite_contact_and_terminated_dialog_refuses() -> None:
    request = invite()
    dialog = Dialog.from_uas(request, answer(request), OUR_CONTACT)
    moved = Request(method="INVITE", uri=request.uri)
    moved.headers.add("Contact", "<sip:sipp@192.0.2.10:5090;transport=tcp>")
    dialog.refresh_target(moved)
    assert str(dialog.remote_target) == "sip:sipp@192.0.2.10:5090;transport=tcp"
    dialog.route_set = []
    assert dialog.next_hop() == Peer("tcp", "192.0.2.10", 5090)
    dialog.terminate()
    with pytest.raises(ValueError):
        dialog.create_request("BYE")


def test_dialog_needs_a_to_tag() -> None:
    request = invite()
    with pytest.raises(ValueError):
        Dialog.from_uac(request, request.create_response(200))


@given(st.lists(st.integers(min_value=0, max_value=2**31 - 1), min_size=1, max_size=30))
def test_remote_cseq_only_ever_moves_forward(numbers: list[int]) -> None:
    request = invite()
    dialog = Dialog.from_uas(request, answer(request), OUR_CONTACT)
    highest = request.cseq.number
    for number in numbers:
        probe = Request(
            method="INFO", uri=request.uri, headers=_with_cseq(request, f"{number} INFO")
        )
        assert dialog.accept_remote_cseq(probe) == (number >= highest)
        highest = max(highest, number)
        assert dialog.remote_cseq == highest


class ManualTimer:
    def __init__(self, delay: float, callback: Callable[[], object]) -> None:
        self.delay = delay
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualTimers:
    """Stands in for ``loop.call_later`` so timer-driven code runs step by step."""

    def __init__(self) -> None:
        self.timers: list[ManualTimer] = []

    def call_later(
        self, delay: float, callback: Callable[..., object], *args: object
    ) -> ManualTimer:
        timer = ManualTimer(delay, lambda: callback(*args))
        self.timers.append(timer)
        return timer

    @property
    def pending(self) -> list[ManualTimer]:
        return [timer for timer in self.timers if not timer.cancelled]

    def fire(self, delay_below: float) -> float:
        """Run the latest pending timer shorter than ``delay_below``; return its delay."""
        timer = [t for t in self.pending if t.delay < delay_below][-1]
        timer.cancelled = True
        timer.callback()
        return timer.delay


@pytest.fixture
async def manual_timers(monkeypatch: pytest.MonkeyPatch) -> ManualTimers:
    timers = ManualTimers()
    monkeypatch.setattr(asyncio.get_running_loop(), "call_later", timers.call_later)
    return timers


TIMERS = TimerConfig(t1=0.5, t2=4.0)


async def test_2xx_is_resent_at_t1_doubling_to_t2_until_acknowledged(
    manual_timers: ManualTimers,
) -> None:
    sent: list[Response] = []
    timeouts: list[bool] = []
    response = answer(invite())
    retransmitter = SuccessRetransmitter(
        response, sent.append, TIMERS, lambda: timeouts.append(True)
    )
    retransmitter.start()
    delays = [manual_timers.fire(delay_below=TIMERS.transaction_timeout) for _ in range(6)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert len(sent) == 6 and all(item is response for item in sent)
    retransmitter.acknowledge()
    assert manual_timers.pending == [] and timeouts == []


async def test_2xx_without_ack_gives_up_after_64_t1_and_reports_once(
    manual_timers: ManualTimers,
) -> None:
    timeouts: list[bool] = []
    retransmitter = SuccessRetransmitter(
        answer(invite()), lambda _: None, TIMERS, lambda: timeouts.append(True)
    )
    retransmitter.start()
    assert manual_timers.fire(delay_below=100) == 32.0  # 64·T1
    assert timeouts == [True] and not retransmitter.active
    assert manual_timers.pending == []


async def test_2xx_over_tcp_is_not_resent_but_the_ack_is_still_awaited(
    manual_timers: ManualTimers,
) -> None:
    sent: list[Response] = []
    timeouts: list[bool] = []
    retransmitter = SuccessRetransmitter(
        answer(invite()), sent.append, TIMERS, lambda: timeouts.append(True), reliable=True
    )
    retransmitter.start()
    assert [timer.delay for timer in manual_timers.pending] == [32.0]
    manual_timers.fire(delay_below=100)
    assert sent == [] and timeouts == [True]


def test_a_pinned_remote_peer_wins_over_the_contact_but_not_over_a_route() -> None:
    request = invite()
    dialog = Dialog.from_uas(request, answer(request), OUR_CONTACT)
    behind_nat = Peer("udp", "198.51.100.77", 40123)
    dialog.remote_peer = behind_nat
    assert dialog.next_hop() == Peer("udp", "10.0.0.2", 5060)  # the route set still rules
    dialog.route_set = []
    assert dialog.next_hop() == behind_nat
