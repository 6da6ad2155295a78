"""A phone behind a home router, built from Linux network namespaces on this machine.

Three places: this process's own namespace (the server, the "internet" side), a ``nat``
namespace (the router: ``public_ip`` outward, masquerading with nftables) and a
``phone`` namespace (the LAN: ``phone_ip``, default route through the router). The server
sees the phone's traffic from ``router_ip`` on ports the router picked; the phone's
Contact and SDP name ``phone_ip``, which the server's namespace cannot reach: a blackhole
route makes sure nothing sent there leaves this machine.

Needs root, ``ip`` (iproute2) and ``nft`` (nftables). Each rig gets names of its own
(from the pid) and subnets of its own: subnet number ``n`` is held by an exclusive lock
on a file in /run/lock for the rig's life and is skipped while any interface or route of
this machine uses it, so parallel test workers (and several checkouts) never share one.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["NatRig", "nat_rig", "requires_netns"]

requires_netns = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("nft") is None,
    reason="network namespaces need root, iproute2 and nftables (Debian nftables)",
)


@dataclass(frozen=True)
class NatRig:
    phone_ns: str
    nat_ns: str
    #: The server's address on the "internet" link (this namespace).
    server_ip: str
    #: The router's outside address: what the server sees the phone's packets come from.
    router_ip: str
    #: The phone's LAN address (what its Contact and SDP say).
    phone_ip: str

    def command(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside the phone's namespace."""
        return ["ip", "netns", "exec", self.phone_ns, *argv]


_LOCKS = Path("/run/lock") if Path("/run/lock").is_dir() else Path("/tmp")


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=20)


def _subnet_in_use(n: int) -> bool:
    """Whether an address or route of this namespace already lies in one of rig ``n``'s
    subnets (another rig, or the machine's own network)."""
    listed = subprocess.run(
        ["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True, timeout=20
    ).stdout
    listed += subprocess.run(
        ["ip", "-4", "route", "show", "table", "all"], capture_output=True, text=True, timeout=20
    ).stdout
    return f"100.64.{n}." in listed or f"192.168.{n}." in listed


@contextmanager
def _subnet_number() -> Iterator[int]:
    """A subnet number 1..250 no other rig holds, locked until the caller is done."""
    start = os.getpid() % 250
    for step in range(250):
        n = (start + step) % 250 + 1
        with (_LOCKS / f"sautikit-netns-{n}.lock").open("a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            if _subnet_in_use(n):
                continue
            yield n
            return
    raise RuntimeError("every NAT rig subnet (1..250) is taken")


@contextmanager
def nat_rig() -> Iterator[NatRig]:
    with _subnet_number() as n, _nat_rig(n) as rig:
        yield rig


@contextmanager
def _nat_rig(n: int) -> Iterator[NatRig]:
    tag = f"se{os.getpid() % 100000}"
    rig = NatRig(
        phone_ns=f"{tag}-phone",
        nat_ns=f"{tag}-nat",
        server_ip=f"100.64.{n}.1",
        router_ip=f"100.64.{n}.2",
        phone_ip=f"192.168.{n}.2",
    )
    lan = f"192.168.{n}.0/24"
    outside, outside_peer = f"{tag}o", f"{tag}O"
    inside, inside_peer = f"{tag}i", f"{tag}I"
    try:
        _run("ip", "netns", "add", rig.nat_ns)
        _run("ip", "netns", "add", rig.phone_ns)
        _run("ip", "link", "add", outside, "type", "veth", "peer", "name", outside_peer)
        _run("ip", "link", "set", outside_peer, "netns", rig.nat_ns)
        _run("ip", "addr", "add", f"{rig.server_ip}/24", "dev", outside)
        _run("ip", "link", "set", outside, "up")
        # Nothing addressed to the LAN may leave by our default route.
        _run("ip", "route", "add", "blackhole", lan)
        in_nat = ["ip", "netns", "exec", rig.nat_ns]
        _run(*in_nat, "ip", "link", "add", inside, "type", "veth", "peer", "name", inside_peer)
        _run(*in_nat, "ip", "link", "set", inside_peer, "netns", rig.phone_ns)
        _run(*in_nat, "ip", "addr", "add", f"{rig.router_ip}/24", "dev", outside_peer)
        _run(*in_nat, "ip", "addr", "add", f"192.168.{n}.1/24", "dev", inside)
        for link in ("lo", outside_peer, inside):
            _run(*in_nat, "ip", "link", "set", link, "up")
        _run(*in_nat, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        ruleset = (
            "table ip sautikit_nat {\n"
            " chain postrouting {\n"
            "  type nat hook postrouting priority srcnat; policy accept;\n"
            f'  oifname "{outside_peer}" masquerade\n'
            " }\n"
            "}\n"
        )
        subprocess.run(
            [*in_nat, "nft", "-f", "-"], input=ruleset.encode(), check=True, capture_output=True
        )
        in_phone = ["ip", "netns", "exec", rig.phone_ns]
        _run(*in_phone, "ip", "addr", "add", f"{rig.phone_ip}/24", "dev", inside_peer)
        _run(*in_phone, "ip", "link", "set", "lo", "up")
        _run(*in_phone, "ip", "link", "set", inside_peer, "up")
        _run(*in_phone, "ip", "route", "add", "default", "via", f"192.168.{n}.1")
        yield rig
    finally:
        for argv in (
            ("ip", "route", "del", "blackhole", lan),
            ("ip", "link", "del", outside),
            ("ip", "netns", "del", rig.phone_ns),
            ("ip", "netns", "del", rig.nat_ns),
        ):
            subprocess.run(argv, capture_output=True, timeout=20)
