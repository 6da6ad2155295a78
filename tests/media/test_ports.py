"""Tests for sautikit.media.ports: RTP/RTCP pairs bound on 127.0.0.1 from a small range."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from sautikit.media.ports import PortsExhausted, RtpPortAllocator, RtpPortPair

HOST = "127.0.0.1"


@pytest.fixture
def free_range() -> tuple[int, int]:
    """Eight ports starting at an even port the OS just handed out as free."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((HOST, 0))
        port = probe.getsockname()[1]
    start = port & ~1
    if start + 7 > 65535:
        start -= 8
    return start, start + 7


@pytest.fixture
def allocator(free_range: tuple[int, int]) -> Iterator[RtpPortAllocator]:
    allocator = RtpPortAllocator(*free_range)
    yield allocator
    allocator.close()


def test_pairs_are_even_rtp_and_next_odd_rtcp_both_bound(allocator: RtpPortAllocator) -> None:
    pair = allocator.allocate(HOST)
    assert pair.rtp_port % 2 == 0
    assert pair.rtcp_port == pair.rtp_port + 1
    assert allocator.range_start <= pair.rtp_port < pair.rtcp_port <= allocator.range_end
    assert pair.rtp_socket.getsockname() == (HOST, pair.rtp_port)
    assert pair.rtcp_socket.getsockname() == (HOST, pair.rtcp_port)
    assert allocator.in_use == 1


def test_handed_out_sockets_receive_datagrams(allocator: RtpPortAllocator) -> None:
    pair = allocator.allocate(HOST)
    pair.rtp_socket.setblocking(True)
    pair.rtp_socket.settimeout(5)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        sender.sendto(b"rtp", (HOST, pair.rtp_port))
        assert pair.rtp_socket.recvfrom(16)[0] == b"rtp"


def test_released_ports_are_not_reused_immediately(allocator: RtpPortAllocator) -> None:
    first = allocator.allocate(HOST)
    allocator.release(first)
    second = allocator.allocate(HOST)
    assert second.rtp_port != first.rtp_port
    assert first.rtp_socket.fileno() == -1  # released sockets are closed
    assert allocator.in_use == 1


def test_exhaustion_and_release(allocator: RtpPortAllocator) -> None:
    assert allocator.capacity == 4
    pairs: list[RtpPortPair] = []
    with pytest.raises(PortsExhausted, match="no free RTP port pair"):
        while True:  # at most 4 pairs, fewer if another program holds some of the ports
            pairs.append(allocator.allocate(HOST))
    assert 1 <= len(pairs) <= 4
    assert len({p.rtp_port for p in pairs}) == len(pairs)
    allocator.release(pairs[0])
    allocator.release(pairs[0])  # twice is harmless
    assert allocator.allocate(HOST).rtp_port == pairs[0].rtp_port


def test_ports_taken_by_another_program_are_skipped(free_range: tuple[int, int]) -> None:
    start, end = free_range
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        try:
            squatter.bind((HOST, start + 1))  # the RTCP half of the first pair
        except OSError:
            pytest.skip("the port was taken between probing and binding")
        allocator = RtpPortAllocator(start, end)
        pairs = []
        with pytest.raises(PortsExhausted):
            while True:
                pairs.append(allocator.allocate(HOST))
        assert start not in {p.rtp_port for p in pairs}
        allocator.close()
        assert allocator.in_use == 0
        assert all(p.rtp_socket.fileno() == -1 for p in pairs)


def test_odd_range_start_is_rounded_up_to_even() -> None:
    allocator = RtpPortAllocator(20001, 20004)
    assert allocator.capacity == 1
    assert allocator._rtp_ports[0] == 20002


@pytest.mark.parametrize(
    ("start", "end"), [(0, 10), (30000, 20000), (20001, 20002), (65535, 65536)]
)
def test_ranges_without_a_pair_are_refused(start: int, end: int) -> None:
    with pytest.raises(ValueError, match="no even/odd"):
        RtpPortAllocator(start, end)


def test_host_names_are_refused_without_a_dns_lookup(allocator: RtpPortAllocator) -> None:
    with pytest.raises(OSError):
        allocator.allocate("localhost")
    assert allocator.in_use == 0
