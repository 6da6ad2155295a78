"""Destination authorisation (SPEC §8): allow-lists, defaults, malformed input."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sautikit import accounts
from sautikit.billing.authorisation import (
    Destination,
    DestinationNotAllowed,
    InvalidDestination,
    authorise_destination,
    normalise_host_entry,
    normalise_prefix,
    parse_destination,
    play_url_allowed,
)
from sautikit.db import Database


@dataclass(frozen=True)
class Policy:
    destination_allowlist: list[str] = field(default_factory=lambda: ["+254"])
    sip_host_allowlist: list[str] = field(default_factory=list)
    play_host_allowlist: list[str] = field(default_factory=list)


KENYA_ONLY = Policy()
WIDE = Policy(
    destination_allowlist=["+254", "+2557", "+44"],
    sip_host_allowlist=[
        "pbx.example.com",
        "sip.carrier.example:5070",
        "[2c0f:fe38::5]",
        "41.90.1.10",
    ],
)


@pytest.mark.parametrize(
    ("policy", "destination", "expected"),
    [
        (KENYA_ONLY, "+254711000001", Destination("e164", "+254711000001")),
        (KENYA_ONLY, " tel:+254711000001;phone-context=x ", Destination("e164", "+254711000001")),
        (WIDE, "+255712345678", Destination("e164", "+255712345678")),
        (WIDE, "+447700900123", Destination("e164", "+447700900123")),
        (
            WIDE,
            "sip:alice@PBX.example.com",
            Destination("sip", "sip:alice@PBX.example.com", "pbx.example.com", None),
        ),
        (
            WIDE,
            "sip:+254711000001@sip.carrier.example:5070;transport=tcp",
            Destination(
                "sip",
                "sip:+254711000001@sip.carrier.example:5070;transport=tcp",
                "sip.carrier.example",
                5070,
            ),
        ),
        (
            WIDE,
            "sip:bob@[2c0f:fe38::5]:5080",
            Destination("sip", "sip:bob@[2c0f:fe38::5]:5080", "2c0f:fe38::5", 5080),
        ),
        (WIDE, "sips:41.90.1.10", Destination("sip", "sips:41.90.1.10", "41.90.1.10", None)),
    ],
)
def test_allowed_destinations(policy: Policy, destination: str, expected: Destination) -> None:
    assert authorise_destination(policy, destination) == expected


@pytest.mark.parametrize(
    ("policy", "destination", "reason"),
    [
        (KENYA_ONLY, "+447700900123", "destination allow-list"),
        (KENYA_ONLY, "+25571234567", "destination allow-list"),  # +255, not +254
        (WIDE, "+255612345678", "destination allow-list"),  # +2556 is not +2557
        (KENYA_ONLY, "sip:alice@pbx.example.com", "SIP host allow-list"),  # empty: none
        (WIDE, "sip:alice@evil.example.com", "SIP host allow-list"),
        (WIDE, "sip:alice@sip.carrier.example", "SIP host allow-list"),  # port 5060 ≠ 5070
        (WIDE, "sip:alice@sub.pbx.example.com", "SIP host allow-list"),
    ],
)
def test_refused_destinations(policy: Policy, destination: str, reason: str) -> None:
    with pytest.raises(DestinationNotAllowed, match=reason):
        authorise_destination(policy, destination)


def test_private_ip_literals_need_the_operators_switch() -> None:
    policy = Policy(sip_host_allowlist=["127.0.0.1:5090", "10.1.2.3"])
    with pytest.raises(DestinationNotAllowed, match="private address"):
        authorise_destination(policy, "sip:bot@127.0.0.1:5090")
    with pytest.raises(DestinationNotAllowed, match="private address"):
        authorise_destination(policy, "sip:10.1.2.3")
    allowed = authorise_destination(policy, "sip:bot@127.0.0.1:5090", allow_private_hosts=True)
    assert (allowed.host, allowed.port) == ("127.0.0.1", 5090)


@pytest.mark.parametrize(
    "destination",
    [
        "",
        "0711000001",
        "254711000001",
        "+",
        "+0711000001",
        "+2547",
        "+2547110000011234567",
        "+254 711 000 001",
        "tel:0711",
        "http://example.com/",
        "sip:",
        "sip:@pbx.example.com",
        "sip:alice:secret@pbx.example.com",
        "sip:alice@pbx.example.com?Subject=hi",
        "sip:alice@bad host",
    ],
)
def test_malformed_destinations_are_invalid(destination: str) -> None:
    with pytest.raises(InvalidDestination):
        authorise_destination(WIDE, destination)


async def test_a_new_workspace_may_dial_kenya_only(database: Database) -> None:
    async with database.transaction() as session:
        workspace = await accounts.create_workspace(session, "w")
        await session.flush()
        await session.refresh(workspace)
    assert authorise_destination(workspace, "+254722000000").address == "+254722000000"
    with pytest.raises(DestinationNotAllowed):
        authorise_destination(workspace, "+12025550100")
    with pytest.raises(DestinationNotAllowed):
        authorise_destination(workspace, "sip:alice@pbx.example.com")


@given(
    st.one_of(
        st.text(max_size=60),
        st.builds(
            lambda scheme, rest: scheme + rest,
            st.sampled_from(["sip:", "sips:", "tel:", "+"]),
            st.text(max_size=50),
        ),
    )
)
def test_parse_destination_only_raises_invalid_destination(text: str) -> None:
    try:
        parsed = parse_destination(text)
    except InvalidDestination:
        return
    assert parsed.kind in ("e164", "sip")


@given(
    st.text(alphabet="+0123456789", max_size=18),
    st.lists(st.text(alphabet="+0123456789", min_size=1, max_size=6), max_size=4),
)
def test_an_allowed_number_always_starts_with_an_allowed_prefix(
    number: str, prefixes: list[str]
) -> None:
    try:
        parsed = authorise_destination(Policy(destination_allowlist=prefixes), number)
    except (InvalidDestination, DestinationNotAllowed):
        return
    assert any(parsed.address.startswith(prefix) for prefix in prefixes)


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        ("PBX.Example.com", "pbx.example.com"),
        (" pbx.example.com:5070 ", "pbx.example.com:5070"),
        ("192.0.2.1", "192.0.2.1"),
        ("[2001:DB8::1]:5060", "[2001:db8::1]:5060"),
    ],
)
def test_host_entries_are_normalised(text: str, normalised: str) -> None:
    assert str(normalise_host_entry(text)) == normalised


@pytest.mark.parametrize(
    "text", ["", "alice@pbx.example.com", "pbx.example.com:99999", "pbx;transport=tcp", "a b"]
)
def test_bad_host_entries_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a host name"):
        normalise_host_entry(text)


@pytest.mark.parametrize("text", ["254", "+", "+0", "+254a", "+1234567890123456"])
def test_bad_prefixes_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"E\.164 prefix"):
        normalise_prefix(text)


@pytest.mark.parametrize(
    ("allowlist", "url", "allowed"),
    [
        ([], "https://cdn.example.com/hello.wav", True),
        ([], "ftp://cdn.example.com/hello.wav", False),
        ([], "file:///etc/passwd", False),
        ([], "https:///no-host.wav", False),
        (["cdn.example.com"], "https://CDN.example.com/a.mp3", True),
        (["cdn.example.com"], "https://cdn.example.com:8443/a.mp3", True),
        (["cdn.example.com"], "https://other.example.com/a.mp3", False),
        (["cdn.example.com:8443"], "https://cdn.example.com/a.mp3", False),
        (["cdn.example.com:443"], "https://cdn.example.com/a.mp3", True),
        (["cdn.example.com:80"], "http://cdn.example.com/a.mp3", True),
        (["cdn.example.com"], "https://cdn.example.com:bad/a.mp3", False),
    ],
)
def test_play_url_allow_list(allowlist: list[str], url: str, allowed: bool) -> None:
    assert play_url_allowed(Policy(play_host_allowlist=allowlist), url) is allowed


@given(st.text(max_size=40))
def test_allow_list_entries_raise_only_value_error(text: str) -> None:
    for normalise in (normalise_host_entry, normalise_prefix):
        try:
            normalised = str(normalise(text))
        except ValueError:
            continue
        assert normalised == str(normalise(normalised))  # stored form is stable


@given(st.text(max_size=60))
def test_play_url_allowed_answers_any_text_with_a_bool(url: str) -> None:
    for allowlist in ([], ["cdn.example.com"]):
        assert play_url_allowed(Policy(play_host_allowlist=allowlist), url) in (True, False)
