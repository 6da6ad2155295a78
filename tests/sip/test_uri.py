"""SIP URIs, name-addresses and Via values parse and print back to the same wire text."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sautikit.sip.errors import SipParseError
from sautikit.sip.uri import NameAddress, SipUri, Via, split_outside_quotes


@pytest.mark.parametrize(
    "text",
    [
        "sip:alice@atlanta.com",
        "sip:alice:secretword@atlanta.com;transport=tcp",
        "sips:alice@atlanta.com?subject=project&priority=urgent",
        "sip:+254700000001@10.0.0.1:5080;user=phone",
        "sip:carrier.example.com;lr",
        "sip:alice@[2001:db8::10]:5070;transport=udp",
        "sip:[::1]",
        "tel:+254-700-000-001;phone-context=example.com",
    ],
)
def test_uri_round_trip(text: str) -> None:
    assert str(SipUri.parse(text)) == text


def test_uri_fields() -> None:
    uri = SipUri.parse("SIP:bob:pw@[2001:db8::1]:5062;Transport=TCP;lr?X-Foo=1")
    assert uri.scheme == "sip"
    assert (uri.user, uri.password, uri.host, uri.port) == ("bob", "pw", "2001:db8::1", 5062)
    assert uri.params == {"transport": "TCP", "lr": None}
    assert uri.transport == "tcp"
    assert uri.headers == [("X-Foo", "1")]


def test_tel_uri_keeps_number_in_user() -> None:
    uri = SipUri.parse("tel:+254700000001")
    assert (uri.scheme, uri.user, uri.host) == ("tel", "+254700000001", "")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "http://example.com",
        "sip:",
        "sip:@host",
        "sip:alice@",
        "sip:alice@host:99999",
        "sip:alice@host:abc",
        "sip:alice@host:1²",
        "sip:alice@[2001:db8::1",
        "sip:alice@[not-v6]",
        "sip:alice@ho st",
        "sip:alice@host;=x",
        "tel:",
        "sip:alice@host?novalue",
    ],
)
def test_bad_uri_raises_parse_error(text: str) -> None:
    with pytest.raises(SipParseError):
        SipUri.parse(text)


def test_name_address_with_quoted_display_name() -> None:
    value = NameAddress.parse('"Wanjiku \\"Shiku\\" K." <sip:wanjiku@example.ke>;tag=a73kszlfl')
    assert value.display_name == 'Wanjiku "Shiku" K.'
    assert value.uri.user == "wanjiku"
    assert value.tag == "a73kszlfl"
    assert NameAddress.parse(str(value)) == value


def test_name_address_token_display_name_and_uri_params_stay_in_uri() -> None:
    value = NameAddress.parse("Bob Otieno <sip:bob@biloxi.com;transport=tcp>;tag=1928301774")
    assert value.display_name == "Bob Otieno"
    assert value.uri.params == {"transport": "tcp"}
    assert value.params == {"tag": "1928301774"}


def test_bare_addr_spec_params_belong_to_the_header() -> None:
    value = NameAddress.parse("sip:alice@atlanta.com;tag=88sja8x")
    assert value.uri.params == {}
    assert value.tag == "88sja8x"
    assert str(value) == "<sip:alice@atlanta.com>;tag=88sja8x"


def test_contact_with_quoted_param_containing_angle_brackets() -> None:
    text = '<sip:a@10.0.0.2:5060>;+sip.instance="<urn:uuid:f81d4fae>";expires=3600'
    value = NameAddress.parse(text)
    assert value.params["+sip.instance"] == '"<urn:uuid:f81d4fae>"'
    assert value.params["expires"] == "3600"


@pytest.mark.parametrize(
    "text",
    ['"unterminated <sip:a@b>', "<sip:a@b", "<sip:a@b> junk", '"name" sip:a@b', "*", "<>"],
)
def test_bad_name_address_raises_parse_error(text: str) -> None:
    with pytest.raises(SipParseError):
        NameAddress.parse(text)


def test_via_fields_and_round_trip() -> None:
    text = "SIP/2.0/UDP pc33.atlanta.com:5066;branch=z9hG4bK776asdhds;rport;received=192.0.2.1"
    via = Via.parse(text)
    assert via.transport == "UDP"
    assert via.sent_by == ("pc33.atlanta.com", 5066)
    assert via.branch == "z9hG4bK776asdhds"
    assert via.rport_requested and via.rport is None
    assert via.received == "192.0.2.1"
    assert str(via) == text


def test_via_with_valued_rport_ipv6_and_spaces_around_slashes() -> None:
    via = Via.parse("SIP / 2.0 / tcp [2001:db8::9];branch=z9hG4bKx;rport=5070;ttl=16;maddr=x.org")
    assert via.transport == "TCP"
    assert via.sent_by == ("2001:db8::9", None)
    assert via.rport == 5070
    assert (via.ttl, via.maddr) == (16, "x.org")
    assert str(via).startswith("SIP/2.0/TCP [2001:db8::9];")


@pytest.mark.parametrize(
    "text",
    [
        "SIP/2.0/UDP",
        "SIP/3.0/UDP host",
        "SIP/2.0/UDP host:70000",
        "SIP/2.0/UDP host;rport=abc",
        "SIP/2.0/UDP host;branch=",
        "garbage",
    ],
)
def test_bad_via_raises_parse_error(text: str) -> None:
    with pytest.raises(SipParseError):
        Via.parse(text)


def test_split_outside_quotes_respects_quotes_and_brackets() -> None:
    text = '"Doe, John" <sip:j@x;a=1,2>;tag=1, <sip:k@y>'
    assert split_outside_quotes(text, ",") == ['"Doe, John" <sip:j@x;a=1,2>;tag=1', " <sip:k@y>"]


@given(st.text(max_size=80))
def test_uri_parsers_only_raise_parse_error(text: str) -> None:
    for parse in (SipUri.parse, NameAddress.parse, Via.parse):
        try:
            value = parse(text)
        except SipParseError:
            continue
        assert str(parse(str(value))) == str(value)
