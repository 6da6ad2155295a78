"""REFER (RFC 3515) parts: the Refer-To read, the NOTIFY bodies and headers, and the
target a transfer dials. The whole transfer, against SIPp phones, is in
tests/voice/test_transfer.py."""

from __future__ import annotations

import pytest

from sautikit.sip import Request, SipUri
from sautikit.sip.refer import AttendedTransfer, notify_headers, refer_target, sipfrag
from sautikit.voice.control import DialTarget
from sautikit.voice.live import transfer_target


def _refer(*refer_to: str) -> Request:
    request = Request(method="REFER", uri=SipUri.parse("sip:sautikit@127.0.0.1"))
    for value in refer_to:
        request.headers.add("Refer-To", value)
    return request


def test_refer_to_names_the_target() -> None:
    assert str(refer_target(_refer("<sip:+254700000002@pbx.example>"))) == (
        "sip:+254700000002@pbx.example"
    )
    assert refer_target(_refer("sip:bob@pbx.example")).user == "bob"
    compact = Request(method="REFER", uri=SipUri.parse("sip:a@b"))
    compact.headers.add("r", "<sip:carol@pbx.example>")
    assert refer_target(compact).user == "carol"


@pytest.mark.parametrize("values", [(), ("<sip:a@b>", "<sip:c@d>"), ("<not a uri",)])
def test_a_refer_without_one_readable_refer_to_is_refused(values: tuple[str, ...]) -> None:
    with pytest.raises(ValueError):
        refer_target(_refer(*values))


def test_attended_transfer_is_told_apart() -> None:
    with pytest.raises(AttendedTransfer):
        refer_target(_refer("<sip:bob@pbx.example?Replaces=abc%40h%3Bto-tag%3D1%3Bfrom-tag%3D2>"))


def test_notify_bodies_and_subscription_state() -> None:
    assert sipfrag(100) == b"SIP/2.0 100 Trying\r\n"
    assert sipfrag(486) == b"SIP/2.0 486 Busy Here\r\n"
    assert dict(notify_headers(False)) == {
        "Event": "refer",
        "Subscription-State": "active;expires=60",
    }
    assert dict(notify_headers(True))["Subscription-State"] == "terminated;reason=noresource"


def test_a_keyed_number_is_dialled_as_a_number_and_anything_else_as_sip() -> None:
    assert transfer_target(SipUri.parse("sip:+254700000002@pbx")) == DialTarget(
        "number", "+254700000002"
    )
    assert transfer_target(SipUri.parse("sip:254700000002@pbx")) == DialTarget(
        "number", "+254700000002"
    )
    assert transfer_target(SipUri.parse("sip:bob@pbx.example")) == DialTarget(
        "sip", "sip:bob@pbx.example"
    )
