"""Two RTP sessions talking over loopback, plus a raw UDP socket playing a misbehaving peer."""

import asyncio
import itertools
import shutil
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import numpy as np
import pytest
from tests.media.test_dtmf import SIPP_PCAPS, read_pcap_rtp

from sautikit.media.codecs import G722, OPUS, PCMA, PCMU, PayloadFormat
from sautikit.media.dtmf import DtmfSender
from sautikit.media.g711 import alaw_decode, ulaw_decode, ulaw_encode
from sautikit.media.jitter import JitterBuffer
from sautikit.media.ports import RtpPortAllocator
from sautikit.media.rtcp import SenderReport, SourceDescription, parse_compound
from sautikit.media.rtp import RtpPacket
from sautikit.media.session import RtpSession

HOST = "127.0.0.1"


async def until(condition: Callable[[], bool], what: str) -> None:
    """Wait (bounded) for loopback datagrams to land; fail rather than hang."""
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.001)
    pytest.fail(f"never happened: {what}")


def tone(frames: int, amplitude: int = 8000, hz: int = 440) -> list[np.ndarray]:
    t = np.arange(frames * 160) / 8000
    signal = (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.int16)
    return [signal[i * 160 : (i + 1) * 160] for i in range(frames)]


async def open_session(**options: object) -> RtpSession:
    return await RtpSession.open(HOST, 0, rtcp_port=0, **options)  # type: ignore[arg-type]


@pytest.fixture
async def pair() -> AsyncIterator[tuple[RtpSession, RtpSession]]:
    alice = await open_session()
    bob = await open_session()
    alice.set_remote(bob.local_address, bob.rtcp_local_address)
    bob.set_remote(alice.local_address, alice.rtcp_local_address)
    yield alice, bob
    alice.close()
    bob.close()


@pytest.fixture
async def peer() -> AsyncIterator[socket.socket]:
    """A plain UDP socket standing in for a remote device we do not control."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((HOST, 0))
    sock.setblocking(False)
    yield sock
    sock.close()


def rtp(
    sequence: int, payload: bytes, ssrc: int = 0xCAFE, pt: int = 0, marker: bool = False
) -> bytes:
    return RtpPacket(pt, sequence, sequence * 160, ssrc, payload, marker).encode()


async def test_audio_arrives_decoded(pair: tuple[RtpSession, RtpSession]) -> None:
    alice, bob = pair
    frames = tone(5)
    for frame in frames:
        assert alice.send_frame(frame)
    await until(lambda: len(bob.jitter) == 5, "five frames buffered")
    heard = [bob.read_frame() for _ in frames]
    for sent, got in zip(frames, heard, strict=True):
        assert got.dtype == np.int16
        assert got.shape == (160,)
        assert np.array_equal(got, ulaw_decode(ulaw_encode(sent)))
    assert alice.stats.packets_sent == 5
    assert bob.stats.packets_received == 5


async def test_pcma_session_and_dynamic_payload_type() -> None:
    alice = await open_session(codec="PCMA")
    bob = await open_session(codec=PCMA)
    try:
        alice.set_remote(bob.local_address)
        assert alice.payload_type == 8
        frames = tone(3, amplitude=12000)
        for frame in frames:
            alice.send_frame(frame)
        await until(lambda: len(bob.jitter) == 3, "three frames buffered")
        heard = np.concatenate([bob.read_frame() for _ in frames])
        assert np.abs(heard.astype(np.int32) - np.concatenate(frames)).max() < 800
    finally:
        alice.close()
        bob.close()


async def test_sipp_speech_capture_in_30_ms_packets_is_heard_whole(peer: socket.socket) -> None:
    capture = SIPP_PCAPS / "g711a.pcap"
    if not capture.exists():
        pytest.skip("SIPp's sample pcaps (Debian sip-tester) are not installed")
    packets = read_pcap_rtp(capture)
    assert {len(p.payload) for p in packets} == {240}
    bob = await open_session(codec="PCMA")
    try:
        heard = []
        sent = 0

        def all_sent_arrived() -> bool:
            return bob.stats.packets_received == sent

        # Replay at the capture's pace (one 30 ms packet per 240 timestamp units) against
        # our 20 ms ticks, reading one frame per tick, then drain.
        for tick in range(len(packets) * 3 // 2 + 10):
            while sent < len(packets) and (sent * 240) <= tick * 160:
                peer.sendto(packets[sent].encode(), bob.local_address)
                sent += 1
            await until(all_sent_arrived, "packets of this tick")
            heard.append(bob.read_frame())
        audio = np.concatenate(heard)
        original = alaw_decode(b"".join(p.payload for p in packets))
        assert bob.jitter.stats.lost == 0
        # After the start-up wait, every captured sample is played, in order, none lost.
        start = int(np.flatnonzero(audio)[0])
        assert np.array_equal(audio[start : start + len(original)], original)
    finally:
        bob.close()


async def test_lost_audio_is_concealed_then_silent(pair: tuple[RtpSession, RtpSession]) -> None:
    alice, bob = pair
    for frame in tone(3):
        alice.send_frame(frame)
    await until(lambda: len(bob.jitter) == 3, "three frames buffered")
    heard = [bob.read_frame() for _ in range(10)]
    assert all(frame.shape == (160,) for frame in heard)
    loudness = [int(np.abs(frame.astype(np.int32)).max()) for frame in heard]
    # Three real frames, a fading repeat of the last, then silence.
    assert loudness[3] < loudness[2]
    assert loudness[-1] == 0


async def test_dtmf_digits_arrive_once(pair: tuple[RtpSession, RtpSession]) -> None:
    alice, bob = pair
    alice.send_dtmf("1", 100)
    alice.send_dtmf("#", 60)
    alice.send_dtmf("1", 40)
    silence = np.zeros(160, np.int16)
    for _ in range(20):
        alice.send_frame(silence)
    digits = [await asyncio.wait_for(bob.next_digit(), 2) for _ in range(3)]
    assert digits == ["1", "#", "1"]
    # Every packet is in, and the repeated end packets added no digit.
    await until(lambda: bob.stats.packets_received == 20, "every packet")
    assert bob.digits.empty()
    assert bob.stats.dtmf_digits == 3


async def test_timestamps_follow_the_clock_through_skipped_ticks(peer: socket.socket) -> None:
    alice = await open_session(remote=peer.getsockname())
    try:
        alice.send_frame(np.zeros(160, np.int16))
        alice.skip(3)
        alice.send_frame(np.zeros(160, np.int16))
        packets = []
        for _ in range(2):
            await until(lambda: _readable(peer), "packet sent")
            packets.append(RtpPacket.parse(peer.recv(2048)))
        first, second = packets
        assert first.marker and not second.marker
        assert second.sequence == (first.sequence + 1) % 65536
        assert second.timestamp == (first.timestamp + 4 * 160) % (1 << 32)
    finally:
        alice.close()


async def test_send_dtmf_needs_negotiated_telephone_event() -> None:
    session = await open_session(dtmf_payload_type=None)
    try:
        with pytest.raises(ValueError, match="telephone-event"):
            session.send_dtmf("5")
        with pytest.raises(ValueError):
            RtpSession().send_dtmf("x")
    finally:
        session.close()


async def test_reordered_stream_comes_out_in_order(peer: socket.socket) -> None:
    bob = await open_session()
    try:
        # Each frame is one constant µ-law code, so its decoded value names it.
        codes = {sequence: 0x80 + sequence for sequence in range(1, 6)}
        for sequence in [3, 1, 2, 5, 4]:
            peer.sendto(rtp(sequence, bytes([codes[sequence]]) * 160), bob.local_address)
        await until(lambda: len(bob.jitter) == 5, "five frames buffered")
        heard = [int(bob.read_frame()[0]) for _ in range(5)]
        expected = [int(ulaw_decode(bytes([codes[s]]))[0]) for s in range(1, 6)]
        assert heard == expected
    finally:
        bob.close()


async def test_garbage_datagrams_are_counted_and_ignored(peer: socket.socket) -> None:
    bob = await open_session()
    try:
        garbage = [
            b"",
            b"\x00" * 5,
            b"\x80\x00\x00",
            b"GET / HTTP/1.1\r\n\r\n",
            bytes(range(256)),
            b"\x8f\x00" + b"\x00" * 20,  # claims 15 CSRCs
            rtp(1, b"\x01\x0a", pt=101),  # telephone-event too short to parse
        ]
        for datagram in garbage:
            peer.sendto(datagram, bob.local_address)
        peer.sendto(rtp(2, b"\xff" * 160, pt=96), bob.local_address)
        rtcp_address = bob.rtcp_local_address
        assert rtcp_address is not None
        for datagram in [b"", b"\x81\xc9\x00\x07junk", bytes(range(64))]:
            peer.sendto(datagram, rtcp_address)
        peer.sendto(rtp(3, b"\x80" * 160), bob.local_address)
        peer.sendto(rtp(4, b"\x80" * 160), bob.local_address)
        await until(lambda: len(bob.jitter) == 2, "the valid packets after the garbage")
        await until(lambda: bob.stats.rtcp_garbage == 3, "RTCP garbage counted")
        assert bob.stats.garbage == len(garbage)
        assert bob.stats.unknown_payload_type == 1
        assert int(bob.read_frame()[0]) == 32124
    finally:
        bob.close()


async def test_latching_follows_a_changed_source_port(peer: socket.socket) -> None:
    # The SDP named an address nobody listens on; the device is behind a NAT.
    bob = await open_session(remote=(HOST, 9))
    moved = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    moved.bind((HOST, 0))
    moved.setblocking(False)
    try:
        for sequence in range(bob.nat_latch_after):
            peer.sendto(rtp(sequence, b"\xff" * 160), bob.local_address)
        await until(lambda: bob.remote == peer.getsockname(), "latched onto the peer")
        assert bob.send_frame(np.zeros(160, np.int16))
        await until(lambda: _readable(peer), "our packet reaches the peer")
        assert RtpPacket.parse(peer.recv(2048)).ssrc == bob.ssrc
        foreign = bob.stats.foreign

        # One stray datagram from elsewhere does not steal the stream...
        moved.sendto(rtp(20, b"\xff" * 160), bob.local_address)
        await until(lambda: bob.stats.foreign == foreign + 1, "stray counted")
        assert bob.remote == peer.getsockname()
        # ...but the same source sending on from a new port (NAT rebinding) does.
        moved.sendto(rtp(21, b"\xff" * 160), bob.local_address)
        await until(lambda: bob.remote == moved.getsockname(), "latch moved")
        assert bob.send_frame(np.zeros(160, np.int16))
        await until(lambda: _readable(moved), "our packet reaches the new port")
        assert RtpPacket.parse(moved.recv(2048)).payload_type == 0
    finally:
        moved.close()
        bob.close()


async def test_a_stray_burst_does_not_take_over_a_new_leg(peer: socket.socket) -> None:
    # Leftover packets of an earlier call reach the reused port before the new peer speaks.
    bob = await open_session(remote=peer.getsockname())
    stray = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stray.bind((HOST, 0))
    try:
        for sequence in range(bob.nat_latch_after - 1):
            stray.sendto(rtp(sequence, b"\x00" * 160, ssrc=0xBAD), bob.local_address)
        await until(lambda: bob.stats.foreign == bob.nat_latch_after - 1, "stray burst counted")
        assert bob.remote == peer.getsockname()
        assert len(bob.jitter) == 0  # the stray audio is never heard

        # The signalled peer's first packet latches at once...
        peer.sendto(rtp(1, b"\xff" * 160), bob.local_address)
        await until(lambda: bob.stats.packets_received == 1, "peer's packet taken")
        # ...and while it keeps sending, no stranger takes over, however much it sends.
        for round_ in range(2 * bob.nat_latch_after):
            for sequence in range(3):
                stray.sendto(rtp(100 + sequence, b"\x00" * 160, ssrc=0xBAD), bob.local_address)
            peer.sendto(rtp(2 + round_, b"\xff" * 160), bob.local_address)
        await until(lambda: bob.stats.packets_received == 1 + 2 * bob.nat_latch_after, "peer")
        assert bob.remote == peer.getsockname()
        assert bob.stats.latches == 1
        assert bob.send_frame(np.zeros(160, np.int16))
        await until(lambda: _readable(peer), "our packet reaches the signalled peer")
    finally:
        stray.close()
        bob.close()


async def test_a_natted_peer_sending_from_another_port_is_latched(peer: socket.socket) -> None:
    # The SDP names the device's private address; its packets come from the NAT's port.
    signalled = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    signalled.bind((HOST, 0))
    signalled.setblocking(False)
    bob = await open_session(remote=signalled.getsockname())
    try:
        for sequence in range(bob.nat_latch_after - 1):
            peer.sendto(rtp(sequence, b"\xff" * 160), bob.local_address)
        await until(lambda: bob.stats.foreign == bob.nat_latch_after - 1, "not yet")
        assert bob.remote == signalled.getsockname()
        peer.sendto(rtp(bob.nat_latch_after, b"\xff" * 160), bob.local_address)
        await until(lambda: bob.remote == peer.getsockname(), "latched onto the NAT's port")
        assert bob.send_frame(np.zeros(160, np.int16))
        await until(lambda: _readable(peer), "our audio reaches the peer through the NAT")
        assert not _readable(signalled)

        # A re-INVITE repeating the same SDP keeps the latch: the peer is not cut off.
        bob.set_remote(signalled.getsockname())
        assert bob.remote == peer.getsockname()
        # Should the signalled address speak after all, it latches at once.
        signalled.sendto(rtp(50, b"\xff" * 160), bob.local_address)
        await until(lambda: bob.remote == signalled.getsockname(), "back to the SDP address")
    finally:
        signalled.close()
        bob.close()


async def test_a_burst_from_another_stream_does_not_steal_the_latch(peer: socket.socket) -> None:
    bob = await open_session()
    intruder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    intruder.bind((HOST, 0))
    try:
        peer.sendto(rtp(1, b"\xff" * 160), bob.local_address)
        await until(lambda: bob.remote == peer.getsockname(), "latched onto the peer")
        for sequence in range(10):
            intruder.sendto(rtp(sequence, b"\x00" * 160, ssrc=0xBAD), bob.local_address)
        await until(lambda: bob.stats.foreign == 10, "intruder's packets counted")
        assert bob.remote == peer.getsockname()
        # The intruder's audio never reached the jitter buffer.
        assert len(bob.jitter) == 1
    finally:
        intruder.close()
        bob.close()


async def test_without_symmetric_rtp_the_sdp_address_stands(peer: socket.socket) -> None:
    bob = await open_session(remote=(HOST, 9), symmetric=False)
    try:
        peer.sendto(rtp(1, b"\xff" * 160), bob.local_address)
        await until(lambda: bob.stats.packets_received == 1, "packet received")
        assert bob.remote == (HOST, 9)
    finally:
        bob.close()


def _readable(sock: socket.socket) -> bool:
    try:
        sock.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return False
    return True


async def test_a_new_ssrc_from_the_peer_is_followed(peer: socket.socket) -> None:
    bob = await open_session()
    try:
        for sequence in (100, 101):
            peer.sendto(rtp(sequence, b"\x80" * 160, ssrc=1), bob.local_address)
        await until(lambda: len(bob.jitter) == 2, "first source buffered")
        assert int(bob.read_frame()[0]) == 32124
        for sequence in (7, 8, 9):
            peer.sendto(rtp(sequence, b"\x00" * 160, ssrc=2), bob.local_address)
        await until(lambda: len(bob.jitter) == 3, "second source buffered")
        assert int(bob.read_frame()[0]) == -32124
        assert bob.jitter.stats.resyncs == 1
        assert list(bob.sources) == [1, 2]
    finally:
        bob.close()


async def test_dtmf_interleaved_with_audio_from_another_ssrc(peer: socket.socket) -> None:
    # SIPp replays its audio and DTMF captures side by side, each with its own SSRC.
    bob = await open_session()
    try:
        events = DtmfSender().packets("4", 120)
        for index, event in enumerate(events):
            peer.sendto(rtp(100 + index, b"\x80" * 160, ssrc=1), bob.local_address)
            dtmf = RtpPacket(101, 7000 + index, 48000, 2, event.payload, event.marker)
            peer.sendto(dtmf.encode(), bob.local_address)
        await until(lambda: bob.stats.packets_received == 2 * len(events), "every packet")
        assert bob.digits.qsize() == 1
        assert bob.digits.get_nowait() == "4"
        assert bob.jitter.stats.resyncs == 0
        assert len(bob.jitter) == len(events)
    finally:
        bob.close()


async def test_rtcp_sender_and_receiver_reports(pair: tuple[RtpSession, RtpSession]) -> None:
    alice, bob = pair
    for frame in tone(10):
        alice.send_frame(frame)
    await until(lambda: bob.stats.packets_received == 10, "audio received")
    assert alice.send_rtcp_report()
    await until(lambda: bob.stats.rtcp_received == 1, "SR received")
    assert bob.send_rtcp_report()
    await until(lambda: alice.remote_report is not None, "RR received")
    report = alice.remote_report
    assert report is not None
    assert report.ssrc == alice.ssrc
    # Bob's statistics skip the first packet (probation) and saw no loss.
    assert report.cumulative_lost == 0
    assert report.fraction_lost == 0
    assert report.last_sr != 0
    assert report.highest_sequence & 0xFFFF == (alice._sequence - 1) & 0xFFFF


async def test_reports_carry_cname_and_close_sends_bye(peer: socket.socket) -> None:
    alice = await open_session(cname="alice@sautikit")
    try:
        alice.set_remote(peer.getsockname(), peer.getsockname())
        alice.send_frame(np.zeros(160, np.int16))
        assert alice.send_rtcp_report()
        await until(lambda: _readable(peer), "report sent")
        # The RTP packet arrives first on the shared test socket; skip it.
        datagrams = [peer.recv(2048)]
        await until(lambda: _readable(peer), "report sent")
        datagrams.append(peer.recv(2048))
        sender_report, sdes = parse_compound(datagrams[1])
        assert isinstance(sender_report, SenderReport)
        assert sender_report.packet_count == 1
        assert isinstance(sdes, SourceDescription)
        assert sdes.chunks[0].cname == "alice@sautikit"
        alice.close()
        await until(lambda: _readable(peer), "BYE sent")
        assert [type(p).__name__ for p in parse_compound(peer.recv(2048))] == [
            "ReceiverReport",
            "SourceDescription",
            "Bye",
        ]
        assert alice.closed
        alice.close()
        assert not alice.send_frame(np.zeros(160, np.int16))
    finally:
        alice.close()


async def test_bye_from_the_peer_is_noticed(pair: tuple[RtpSession, RtpSession]) -> None:
    alice, bob = pair
    alice.send_frame(np.zeros(160, np.int16))
    await until(lambda: bob.stats.packets_received == 1, "audio received")
    alice.close()
    await until(lambda: bob.bye_received, "BYE received")


async def test_rtcp_goes_out_on_its_own_from_the_tick_calls() -> None:
    alice = await open_session(rtcp_interval=0.0)
    bob = await open_session()
    try:
        alice.set_remote(bob.local_address, bob.rtcp_local_address)
        alice.send_frame(np.zeros(160, np.int16))
        alice.read_frame()
        await until(lambda: bob.stats.rtcp_received >= 1, "scheduled report")
    finally:
        alice.close()
        bob.close()


async def test_already_bound_sockets_are_accepted() -> None:
    rtp_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtp_sock.bind((HOST, 0))
    rtcp_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtcp_sock.bind((HOST, 0))
    session = await RtpSession.open(sock=rtp_sock, rtcp_sock=rtcp_sock, codec=PCMU)
    try:
        assert session.local_address == rtp_sock.getsockname()
        assert session.rtcp_local_address == rtcp_sock.getsockname()
    finally:
        session.close()


async def test_a_jitter_buffer_of_ones_own_is_used(peer: socket.socket) -> None:
    deep = JitterBuffer(min_depth=4, max_depth=10)
    bob = await open_session(jitter_buffer=deep)
    try:
        assert bob.jitter is deep
        for sequence in range(1, 4):
            peer.sendto(rtp(sequence, b"\x80" * 160), bob.local_address)
        await until(lambda: len(deep) == 3, "three frames buffered")
        # Four frames are wanted before playout starts: still silence.
        assert not bob.read_frame().any()
    finally:
        bob.close()


async def test_sockets_from_the_port_allocator() -> None:
    allocator = RtpPortAllocator(31000, 31999)
    pair = allocator.allocate(HOST)
    session = await RtpSession.open(sock=pair.rtp_socket, rtcp_sock=pair.rtcp_socket)
    try:
        assert session.local_address == (HOST, pair.rtp_port)
        assert session.rtcp_local_address == (HOST, pair.rtcp_port)
    finally:
        session.close()
        allocator.release(pair)


async def test_rtcp_binds_the_port_after_rtp_by_default() -> None:
    # Find a free even/odd pair, let it go, then bind the session on it.
    allocator = RtpPortAllocator(32000, 32499)
    pair = allocator.allocate(HOST)
    allocator.release(pair)
    session = await RtpSession.open(HOST, pair.rtp_port)
    try:
        assert session.rtcp_local_address == (HOST, pair.rtp_port + 1)
    finally:
        session.close()


async def test_without_rtcp() -> None:
    session = await RtpSession.open(HOST, 0, rtcp=False)
    try:
        assert session.rtcp_local_address is None
        assert not session.send_rtcp_report()
    finally:
        session.close()


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@pytest.mark.sipp
@pytest.mark.skipif(shutil.which("sipp") is None, reason="SIPp is not installed")
async def test_sipp_rtp_echo_returns_our_audio_and_dtmf(tmp_path: Path) -> None:
    # SIPp's RTP echo reflects every packet from its media port: a peer we did not write,
    # whose source address we must latch onto and whose packets we must decode.
    media_port = _free_udp_port()
    process = await asyncio.create_subprocess_exec(
        "sipp",
        "-sn",
        "uas",
        "-rtp_echo",
        "-i",
        HOST,
        "-p",
        "0",
        "-mi",
        HOST,
        "-mp",
        str(media_port),
        "-cp",
        str(_free_udp_port()),
        "-nostdin",
        cwd=tmp_path,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    alice = await open_session(remote=(HOST, media_port))
    try:
        # SIPp takes a moment to bind: probe from elsewhere until the echo answers.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((HOST, 0))
            probe.setblocking(False)
            for _ in range(500):
                probe.sendto(rtp(1, b"\xff"), (HOST, media_port))
                await asyncio.sleep(0.01)
                if _readable(probe):
                    break
            assert _readable(probe), "SIPp never echoed"
        silence = np.zeros(160, np.int16)
        alice.send_frame(silence)
        await until(lambda: alice.stats.packets_received == 1, "first echo")
        assert alice.remote == (HOST, media_port)
        frames = tone(4, amplitude=6000)
        for frame in frames:
            alice.send_frame(frame)
        await until(lambda: alice.stats.packets_received == alice.stats.packets_sent, "tone echoed")
        # Play out the echoed silence, then the tone must come back exactly as sent.
        heard = [alice.read_frame() for _ in range(20)]
        first = next(i for i, frame in enumerate(heard) if frame.any())
        expected = [ulaw_decode(ulaw_encode(frame)) for frame in frames]
        for got, want in zip(heard[first : first + 4], expected, strict=True):
            assert np.array_equal(got, want)

        alice.send_dtmf("5", 80)
        for _ in range(8):
            alice.send_frame(silence)
        assert await asyncio.wait_for(alice.next_digit(), 5) == "5"
        await until(lambda: alice.stats.packets_received == alice.stats.packets_sent, "DTMF echoed")
        assert alice.digits.empty()
    finally:
        alice.close()
        process.terminate()
        await process.wait()


async def test_a_packet_the_kernel_refuses_is_dropped_and_counted(peer: socket.socket) -> None:
    bob = await open_session(remote=peer.getsockname())
    try:
        assert bob.send_frame(np.zeros(160, np.int16))
        await until(lambda: _readable(peer), "first packet")
        first = RtpPacket.parse(peer.recv(2048)).sequence
        # An IPv6 destination cannot be reached from this IPv4 socket: sendto fails.
        bob.set_remote(("::1", 9))
        assert not bob.send_frame(np.zeros(160, np.int16))
        assert bob.stats.socket_errors == 1
        assert bob.stats.packets_sent == 1
        bob.set_remote(peer.getsockname())
        assert bob.send_frame(np.zeros(160, np.int16))
        await until(lambda: _readable(peer), "third packet")
        # The dropped packet's number was spent, so the far end can count it as lost.
        assert RtpPacket.parse(peer.recv(2048)).sequence == (first + 2) & 0xFFFF
    finally:
        bob.close()


async def test_a_queued_frame_goes_out_on_flush(peer: socket.socket) -> None:
    bob = await open_session(remote=peer.getsockname())
    try:
        bob.queue_frame(np.zeros(160, np.int16))
        assert not _readable(peer)
        assert bob.flush()
        await until(lambda: _readable(peer), "the queued packet")
        first = RtpPacket.parse(peer.recv(2048))
        assert not bob.flush()  # nothing queued any more
        # A frame queued over an unsent one replaces it; the far end sees one loss.
        bob.queue_frame(np.zeros(160, np.int16))
        bob.queue_frame(np.full(160, 1000, np.int16))
        assert bob.flush()
        await until(lambda: _readable(peer), "the second packet")
        second = RtpPacket.parse(peer.recv(2048))
        assert second.sequence == (first.sequence + 2) & 0xFFFF
        assert second.timestamp == (first.timestamp + 2 * 160) & 0xFFFF_FFFF
        assert int(ulaw_decode(second.payload)[0]) != 0
        assert bob.stats.packets_sent == 2
    finally:
        bob.close()


@pytest.mark.parametrize(
    ("codec", "payload_type", "timestamp_step", "payload_bytes"),
    [(OPUS, 111, 960, None), (G722, 9, 160, 160)],
)
async def test_wideband_audio_crosses_on_its_own_rtp_clock(
    codec: PayloadFormat, payload_type: int, timestamp_step: int, payload_bytes: int | None
) -> None:
    """16 kHz frames go out on the codec's RTP clock (48 kHz for Opus, 8 kHz for G.722)."""
    sender = await open_session(codec=codec)
    receiver = await open_session(codec=codec)
    sniffer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sniffer.bind((HOST, 0))
    try:
        sender.set_remote(sniffer.getsockname())
        t = np.arange(50 * 320) / 16000
        sent = (8000 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)
        packets = []
        for i in range(50):
            assert sender.send_frame(sent[i * 320 : (i + 1) * 320])
            packets.append(RtpPacket.parse(sniffer.recv(2048)))
        assert {p.payload_type for p in packets} == {payload_type}
        steps = {(b.timestamp - a.timestamp) & 0xFFFF_FFFF for a, b in itertools.pairwise(packets)}
        assert steps == {timestamp_step}
        if payload_bytes is not None:
            assert {len(p.payload) for p in packets} == {payload_bytes}
        # The receiving session decodes them into 20 ms frames of 16 kHz audio.
        heard_frames = []
        for packet in packets:  # as they would arrive, one per tick
            receiver.jitter.push(packet.sequence, packet.ssrc, packet.payload)
            heard_frames.append(receiver.read_frame())
        heard = np.concatenate(heard_frames[:40])
        assert heard.shape == (40 * 320,)
        spectrum = np.abs(np.fft.rfft(heard[3200:] * np.hanning(len(heard) - 3200)))
        assert np.argmax(spectrum) * 16000 / (len(heard) - 3200) == pytest.approx(1000, abs=5)
        # A lost packet is concealed with a frame of the same length.
        assert receiver.read_frame().shape == (320,)
    finally:
        sniffer.close()
        sender.close()
        receiver.close()


async def test_an_undecodable_payload_counts_as_garbage_and_is_concealed() -> None:
    session = await open_session(codec=OPUS, jitter_buffer=JitterBuffer(min_depth=1))
    try:
        session.jitter.push(1, 0xCAFE, b"\xff")
        assert session.read_frame().shape == (320,)
        assert session.stats.garbage == 1
    finally:
        session.close()
