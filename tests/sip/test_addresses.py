"""Listen versus advertised addresses: a wildcard is never advertised."""

from __future__ import annotations

import pytest

from sautikit.sip.addresses import advertised_address, is_wildcard, primary_address
from sautikit.sip.transport import SipTransportLayer


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "[::]", ""])
def test_wildcards(host: str) -> None:
    assert is_wildcard(host)


@pytest.mark.parametrize("host", ["127.0.0.1", "203.0.113.5", "pbx.example.com", "::1"])
def test_not_wildcards(host: str) -> None:
    assert not is_wildcard(host)


def test_a_bound_address_is_advertised_as_is_unless_another_is_configured() -> None:
    assert advertised_address("10.0.0.5") == "10.0.0.5"
    assert advertised_address("10.0.0.5", "203.0.113.5") == "203.0.113.5"
    assert advertised_address("0.0.0.0", "sip.example.com") == "sip.example.com"


def test_a_wildcard_advertises_the_primary_address_and_cannot_be_configured() -> None:
    chosen = advertised_address("0.0.0.0")
    assert chosen == primary_address() and not is_wildcard(chosen)
    with pytest.raises(ValueError, match="cannot be advertised"):
        advertised_address("10.0.0.5", "0.0.0.0")


async def test_a_transport_on_every_interface_puts_a_real_address_in_its_via() -> None:
    transport = SipTransportLayer()
    await transport.start("0.0.0.0", 0, tcp=False)
    try:
        via = transport.make_via("udp", "z9hG4bK-x")
        assert via.host == primary_address() and via.host != "0.0.0.0"
    finally:
        await transport.close()
