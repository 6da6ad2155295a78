"""Outbound HTTP refuses the operator's own network unless the operator allows it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from sautikit.net import OutboundAddressRefused, is_public_address, outbound_client


@pytest.fixture
def loopback_server() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"inside")

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.9", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),
        ("8.8.8.8", True),
        ("41.90.1.1", True),
        ("2001:4860::8888", True),
    ],
)
def test_address_classes(address: str, public: bool) -> None:
    assert is_public_address(address) is public


async def test_loopback_is_refused_by_default(loopback_server: str) -> None:
    async with outbound_client(allow_private=False) as http:
        with pytest.raises(OutboundAddressRefused, match=r"127\.0\.0\.1"):
            await http.get(loopback_server)
        host_url = loopback_server.replace("127.0.0.1", "localhost")
        with pytest.raises(OutboundAddressRefused):
            await http.get(host_url)


async def test_the_operator_may_allow_loopback(loopback_server: str) -> None:
    async with outbound_client(allow_private=True) as http:
        answer = await http.get(loopback_server)
    assert answer.text == "inside"
