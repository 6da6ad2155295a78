"""SRTP over loopback: two RTP sessions keyed by SDES hear each other; strangers and
tampered packets are dropped and counted."""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import Callable

import numpy as np
import pytest

from sautikit.media.g711 import ulaw_decode, ulaw_encode
from sautikit.media.rtp import RtpPacket
from sautikit.media.session import RtpSession
from sautikit.media.srtp import SrtpContext, SrtpError

HOST = "127.0.0.1"


async def until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.001)
    pytest.fail(f"never happened: {what}")


def tone(frames: int) -> list[np.ndarray]:
    t = np.arange(frames * 160) / 8000
    signal = (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    return [signal[i * 160 : (i + 1) * 160] for i in range(frames)]


@pytest.mark.parametrize("suite", ["AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"])
def test_protect_then_unprotect_gives_the_packet_back(suite: str) -> None:
    a_key, b_key = secrets.token_bytes(30), secrets.token_bytes(30)
    alice, bob = SrtpContext(suite, a_key, b_key), SrtpContext(suite, b_key, a_key)
    packet = RtpPacket(payload_type=0, sequence=1, timestamp=160, ssrc=7, payload=b"\xff" * 160)
    plain = packet.encode()
    protected = alice.protect_rtp(plain)
    assert protected != plain and len(protected) == len(plain) + (10 if suite.endswith("80") else 4)
    assert bob.unprotect_rtp(protected) == plain
    with pytest.raises(SrtpError):
        bob.unprotect_rtp(protected)  # a replay
    tampered = bytearray(alice.protect_rtp(RtpPacket(0, 2, 320, 7, payload=b"\x00" * 160).encode()))
    tampered[20] ^= 1
    with pytest.raises(SrtpError):
        bob.unprotect_rtp(bytes(tampered))


def test_a_bad_suite_or_key_is_refused() -> None:
    with pytest.raises(ValueError, match="suite"):
        SrtpContext("F8_128_HMAC_SHA1_80", bytes(30), bytes(30))
    with pytest.raises(ValueError, match="30 bytes"):
        SrtpContext("AES_CM_128_HMAC_SHA1_80", bytes(16), bytes(30))


async def test_two_srtp_sessions_hear_each_other_and_drop_plain_rtp() -> None:
    suite = "AES_CM_128_HMAC_SHA1_80"
    a_key, b_key = secrets.token_bytes(30), secrets.token_bytes(30)
    alice = await RtpSession.open(HOST, 0, rtcp_port=0)
    bob = await RtpSession.open(HOST, 0, rtcp_port=0)
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        alice.set_remote(bob.local_address, bob.rtcp_local_address)
        bob.set_remote(alice.local_address, alice.rtcp_local_address)
        alice.set_srtp(SrtpContext(suite, a_key, b_key))
        bob.set_srtp(SrtpContext(suite, b_key, a_key))
        frames = tone(5)
        for frame in frames:
            assert alice.send_frame(frame)
        await until(lambda: len(bob.jitter) == 5, "five SRTP frames decrypted")
        heard = [bob.read_frame() for _ in frames]
        for sent, got in zip(frames, heard, strict=True):
            assert np.array_equal(got, ulaw_decode(ulaw_encode(sent)))
        # Plain RTP at an SRTP stream fails authentication: dropped, counted.
        stranger.sendto(RtpPacket(0, 9, 9, 99, payload=b"\xff" * 160).encode(), bob.local_address)
        await until(lambda: bob.stats.srtp_refused == 1, "the plain packet refused")
        assert bob.stats.packets_received == 5
        # SRTCP both ways.
        assert alice.send_rtcp_report()
        await until(lambda: bob.stats.rtcp_received == 1, "an SRTCP report decrypted")
    finally:
        stranger.close()
        alice.close()
        bob.close()
