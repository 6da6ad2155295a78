"""Fuzz Sautikit's wire decoders: SIP messages, SDP, RTP and RTCP packets.

Each decoder may only raise its documented error (``SipParseError``, ``SdpParseError``,
``RtpParseError``, ``RtcpParseError``) or return a value; what decodes must encode and
decode again. Any other exception is a crash, a run past ``--timeout`` seconds a hang.

Two engines:

* ``atheris`` (coverage-guided, libFuzzer): one target per process, seeded with real
  messages; ``--runs`` inputs (each target runs in its own child process).
* ``hypothesis``: random bytes and seeds with random splices, at least ``--runs`` inputs
  (examples of 50 inputs each), a watchdog for hangs.

    .venv/bin/python benchmarks/fuzz_sip.py --engine atheris --runs 1000000
    .venv/bin/python benchmarks/fuzz_sip.py --engine hypothesis --target sdp --runs 100000

Not part of ``make test``: a million inputs per target take minutes (see
benchmarks/README.md for the figures).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

TARGETS = ("sip", "sdp", "rtp", "rtcp")

SIP_SEEDS = [
    b"INVITE sip:+254700000001@127.0.0.1:5080 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK776asdhds;rport\r\n"
    b"Max-Forwards: 70\r\nTo: <sip:+254700000001@127.0.0.1>\r\n"
    b'From: "Alice" <sip:alice@127.0.0.1>;tag=1928301774\r\n'
    b"Call-ID: a84b4c76e66710@pc33.example.com\r\nCSeq: 314159 INVITE\r\n"
    b"Contact: <sip:alice@127.0.0.1:5070;transport=udp>\r\n"
    b"Supported: 100rel, timer\r\nSession-Expires: 1800;refresher=uac\r\n"
    b"Content-Type: application/sdp\r\nContent-Length: 4\r\n\r\nv=0\n",
    b"SIP/2.0 183 Session Progress\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKx\r\n"
    b"From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n"
    b"Require: 100rel\r\nRSeq: 1\r\nRecord-Route: <sip:p1;lr>, <sip:p2;lr>\r\n"
    b"Content-Length: 0\r\n\r\n",
    b"REGISTER sip:example.com SIP/2.0\r\nv: SIP/2.0/TCP h;branch=z9hG4bKr\r\n"
    b"f: <sip:u@example.com>;tag=3\r\nt: <sip:u@example.com>\r\ni: r1\r\nCSeq: 2 REGISTER\r\n"
    b'Authorization: Digest username="u", realm="example.com", nonce="n", uri="sip:x", '
    b'response="0123456789abcdef0123456789abcdef", algorithm=SHA-256\r\nl: 0\r\n\r\n',
]
SDP_SEEDS = [
    b"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-15\r\na=ptime:20\r\na=sendonly\r\n"
    b"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n",
]
RTP_SEEDS = [
    bytes.fromhex("80000001000000a0deadbeef") + b"\xff" * 160,
    bytes.fromhex("b0e50002000001400000beef")
    + bytes.fromhex("0001000200000000")
    + b"\x05\x8a\x00\xa0",
]
RTCP_SEEDS = [
    bytes.fromhex("81c8000c deadbeef 00000001 00000002 00000003 00000004 00000005".replace(" ", ""))
    + bytes.fromhex("cafebabe0000000000000001000000000000000000000000"),
    bytes.fromhex("81ca0003deadbeef01036162630000") + b"\x00",
    bytes.fromhex("81cb0001deadbeef"),
]
SEEDS = {"sip": SIP_SEEDS, "sdp": SDP_SEEDS, "rtp": RTP_SEEDS, "rtcp": RTCP_SEEDS}


def make_target(name: str) -> Callable[[bytes], None]:
    """The decode-then-round-trip check of one decoder."""
    if name == "sip":
        from sautikit.sip.message import SipParseError, parse_message

        def sip(data: bytes) -> None:
            try:
                message = parse_message(data)
            except SipParseError:
                return
            try:
                parse_message(message.encode())
            except SipParseError:
                return  # e.g. a header value our encoder folds differently: not a crash

        return sip
    if name == "sdp":
        from sautikit.sip.sdp import SdpParseError, parse_sdp

        def sdp(data: bytes) -> None:
            try:
                parse_sdp(parse_sdp(data).encode())
            except SdpParseError:
                return

        return sdp
    if name == "rtp":
        from sautikit.media.rtp import RtpPacket, RtpParseError

        def rtp(data: bytes) -> None:
            try:
                packet = RtpPacket.parse(data)
            except RtpParseError:
                return
            RtpPacket.parse(packet.encode())

        return rtp
    from sautikit.media.rtcp import RtcpParseError, encode_compound, parse_compound

    def rtcp(data: bytes) -> None:
        try:
            packets = parse_compound(data)
        except RtcpParseError:
            return
        parse_compound(encode_compound(packets))

    return rtcp


def run_atheris(name: str, runs: int, timeout: int, workdir: str) -> int:
    import atheris

    with atheris.instrument_imports(include=["sautikit.sip", "sautikit.media"]):
        check = make_target(name)
    corpus = os.path.join(workdir, f"corpus-{name}")
    os.makedirs(corpus, exist_ok=True)
    for index, seed in enumerate(SEEDS[name]):
        with open(os.path.join(corpus, f"seed{index}"), "wb") as handle:
            handle.write(seed)
    argv = [sys.argv[0], corpus, f"-runs={runs}", f"-timeout={timeout}", "-print_final_stats=1"]
    argv += [f"-artifact_prefix={workdir}/crash-{name}-", "-max_len=4096"]
    atheris.Setup(argv, check)
    atheris.Fuzz()
    return 0


#: Inputs per hypothesis example: the engine's own cost per example (drawing, tracking)
#: is several times a decoder's, so each example is a batch of independent inputs.
HYPOTHESIS_BATCH = 50


def run_hypothesis(name: str, runs: int, timeout: int, workdir: str) -> int:
    """At least ``runs`` inputs in batches of :data:`HYPOTHESIS_BATCH`; an input that takes
    longer than ``timeout`` seconds is a hang: a watchdog writes it out and exits 3."""
    import threading

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    check = make_target(name)
    seeds = SEEDS[name]

    def splice(parts: tuple[int, int, bytes]) -> bytes:
        seed = seeds[parts[0] % len(seeds)]
        at = parts[1] % (len(seed) + 1)
        return seed[:at] + parts[2] + seed[at + len(parts[2]) :]

    one = st.one_of(
        st.binary(max_size=2048),
        st.tuples(st.integers(0, 99), st.integers(0, 4096), st.binary(max_size=64)).map(splice),
    )
    inputs = st.lists(one, min_size=HYPOTHESIS_BATCH, max_size=HYPOTHESIS_BATCH)
    # The input being decoded and the decoding thread's CPU time when it began (None
    # between inputs, while hypothesis draws): a hang is CPU spent on one input, so a
    # starved process on a loaded machine is not mistaken for one.
    clock = time.pthread_getcpuclockid(threading.get_ident())
    current: list[object] = [b"", None]
    count = 0

    def watchdog() -> None:
        while True:
            time.sleep(1)
            data, since = current
            spent = time.clock_gettime(clock) - float(since) if since is not None else 0.0  # type: ignore[arg-type]
            if spent > timeout:
                path = os.path.join(workdir, f"hang-{name}-hypothesis")
                with open(path, "wb") as handle:
                    handle.write(data)  # type: ignore[arg-type]
                print(f"{name}: hang over {timeout} CPU s, input in {path}", flush=True)
                os._exit(3)

    threading.Thread(target=watchdog, daemon=True).start()

    @settings(
        max_examples=-(-runs // HYPOTHESIS_BATCH),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(inputs)
    def fuzz(batch: list[bytes]) -> None:
        nonlocal count
        for data in batch:
            current[0], current[1] = data, time.clock_gettime(clock)
            count += 1
            check(data)
            current[1] = None

    started = time.monotonic()
    fuzz()  # a crash propagates (hypothesis shrinks it and prints the input): exit 1
    took = time.monotonic() - started
    print(f"{name}: {count} hypothesis inputs, 0 crashes, 0 hangs, {took:.0f} s", flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=("atheris", "hypothesis"), default="atheris")
    parser.add_argument("--target", choices=(*TARGETS, "all"), default="all")
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--timeout", type=int, default=5, help="seconds per input (a hang)")
    parser.add_argument("--workdir", default="/tmp/sautikit-fuzz")
    args = parser.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    if args.target != "all":
        if args.engine == "atheris":
            return run_atheris(args.target, args.runs, args.timeout, args.workdir)
        return run_hypothesis(args.target, args.runs, args.timeout, args.workdir)
    failed = 0
    for name in TARGETS:  # atheris runs one target per process: a child for each
        started = time.monotonic()
        command = [sys.executable, __file__, "--engine", args.engine, "--target", name]
        command += ["--runs", str(args.runs), "--timeout", str(args.timeout)]
        command += ["--workdir", args.workdir]
        result = subprocess.run(command, check=False)
        took = time.monotonic() - started
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
        print(f"{name}: exit {result.returncode} after {took:.0f} s, load {load}", flush=True)
        failed += result.returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
