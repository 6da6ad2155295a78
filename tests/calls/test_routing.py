"""Which trunk carries a number, how its Request-URI is written, whose INVITEs are trusted."""

from __future__ import annotations

import pytest

from sautikit.calls.routing import (
    ON_NET_HEADER,
    NoRoute,
    PlatformAddress,
    on_net_route,
    on_net_token,
    route_destination,
    trunk_trusts,
    verify_on_net_token,
)
from sautikit.crypto import encrypt_secret
from sautikit.db.models import Trunk
from sautikit.sip.client_auth import ClientCredentials

KEY = b"operator-secret"


def _trunk(name: str, prefixes: list[str], **extra: object) -> Trunk:
    return Trunk(name=name, host=f"{name}.example", port=5060, transport="udp",
                 prefixes=prefixes, inbound_addresses=[], dial_prefix="", **extra)  # fmt: skip


def test_the_longest_prefix_wins() -> None:
    trunks = [_trunk("kenya", ["+254"]), _trunk("mobile", ["+2547"]), _trunk("uk", ["+44"])]
    assert route_destination(trunks, "e164", "+254722000000", secret_key=KEY).destination == (
        "mobile.example", 5060, "udp",
    )  # fmt: skip
    route = route_destination(trunks, "e164", "+254202000000", secret_key=KEY)
    assert route.target == "sip:+254202000000@kenya.example:5060"
    with pytest.raises(NoRoute):
        route_destination(trunks, "e164", "+12025550123", secret_key=KEY)


def test_dial_prefix_and_credentials() -> None:
    password = encrypt_secret("pa55", KEY, context="trunk:carrier")
    trunk = _trunk("carrier", ["+254"], username="acme", password_encrypted=password)
    trunk.dial_prefix = "00"
    route = route_destination([trunk], "e164", "+254722000000", secret_key=KEY)
    assert route.target == "sip:00254722000000@carrier.example:5060"
    assert route.credentials == ("acme", "pa55")


def test_sip_uris_go_straight_to_their_host() -> None:
    route = route_destination([], "sip", "sip:bob@pbx.example:5070", secret_key=KEY)
    assert (route.target, route.destination, route.credentials) == (
        "sip:bob@pbx.example:5070", None, None,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("address", "trusted"),
    [("196.201.0.7", True), ("196.201.1.7", False), ("10.0.0.5", True), ("not-an-ip", False)],
)
def test_inbound_trust_by_address(address: str, trusted: bool) -> None:
    trunk = _trunk("carrier", [])
    trunk.inbound_addresses = ["196.201.0.0/24", "10.0.0.5"]
    assert trunk_trusts([trunk], address) is trusted


def test_an_on_net_token_is_bound_to_its_caller_number_and_time() -> None:
    token = on_net_token(KEY, "+254700000001", "+254700000002", now=1000)
    assert verify_on_net_token(KEY, token, "+254700000001", "+254700000002", now=1010)
    assert not verify_on_net_token(KEY, token, "+254700000009", "+254700000002", now=1010)
    assert not verify_on_net_token(KEY, token, "+254700000001", "+254700000003", now=1010)
    assert not verify_on_net_token(b"another-key", token, "+254700000001", "+254700000002")
    assert not verify_on_net_token(KEY, token, "+254700000001", "+254700000002", now=1100)
    for forged in ("", "t=1000", "t=x,n=1,v1=00", token.replace("v1=", "v1=0")):
        assert not verify_on_net_token(KEY, forged, "+254700000001", "+254700000002", now=1010)


@pytest.mark.parametrize("listen", ["0.0.0.0", "127.0.0.1"])
def test_an_on_net_call_goes_to_this_platform_with_its_token(listen: str) -> None:
    platform = PlatformAddress(listen, 5080, "203.0.113.5")
    route = on_net_route("+254700000002", "+254700000001", platform, secret_key=KEY)
    assert route.target == "sip:+254700000002@203.0.113.5:5080"
    assert route.destination == ("127.0.0.1", 5080, "udp")  # never the public address
    ((name, token),) = route.headers
    assert name == ON_NET_HEADER
    assert verify_on_net_token(KEY, token, "+254700000001", "+254700000002")
    assert route.credentials is None


def test_a_trunks_digest_algorithms_go_with_its_credentials() -> None:
    password = encrypt_secret("pa55", KEY, context="trunk:carrier")
    trunk = _trunk("carrier", ["+254"], username="acme", password_encrypted=password)
    trunk.digest_algorithms = ["SHA-256"]
    credentials = route_destination([trunk], "e164", "+254722000000", secret_key=KEY).credentials
    assert credentials == ("acme", "pa55")
    assert isinstance(credentials, ClientCredentials) and credentials.algorithms == ("SHA-256",)
