"""A call bridged through the PBX between two baresip softphones: each hears the other."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import numpy as np
from tests.baresip import Baresip, requires_baresip
from tests.media.media_rig import dominant_frequency, read_wav_channels, rms

from sautikit.media import Bridge, tone
from sautikit.pbx import InboundLeg

pytestmark = requires_baresip


def _voice(path: Path, frequency: float) -> Path:
    samples = tone(frequency, 12.0)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(samples.astype("<i2").tobytes())
    return path


def _heard(path: Path) -> np.ndarray:
    with wave.open(str(path)) as dump:
        raw = dump.readframes(dump.getnframes())
        assert dump.getframerate() == 8000 and dump.getnchannels() == 1
    return np.frombuffer(raw, "<i2")


async def test_two_softphones_hear_each_other_through_a_bridge(make_pbx, tmp_path: Path) -> None:
    callee = Baresip(tmp_path / "b", "bob", _voice(tmp_path / "b.wav", 1000), (37000, 37099))
    caller = Baresip(tmp_path / "a", "alice", _voice(tmp_path / "a.wav", 440), (37100, 37199))
    bridged: asyncio.Future[float | None] = asyncio.get_running_loop().create_future()

    async def app(leg: InboundLeg) -> None:
        await leg.answer()
        other = await pbx.dial(callee.uri, from_uri=f"sip:{leg.caller}@127.0.0.1")
        await other.wait_answer()
        bridge = Bridge(leg.channel, other.channel, tmp_path / "bridge.wav")
        await leg.wait_ended()
        seconds = bridge.close()
        await other.hangup()
        if bridge.recording is not None:
            await bridge.recording.finished()
        bridged.set_result(seconds)

    pbx = await make_pbx(app)
    await callee.start(seconds=12)
    await caller.start(seconds=5, dial=f"sip:+254700000001@127.0.0.1:{pbx.port}")
    await caller.wait()
    seconds = await asyncio.wait_for(bridged, 10)
    await callee.wait()

    alice_heard = _heard(caller.heard())
    bob_heard = _heard(callee.heard())
    # Skip the first half second of each dump: the bridge forms after both answers.
    assert rms(alice_heard[4000:]) > 1000 and rms(bob_heard[4000:]) > 1000
    assert abs(dominant_frequency(alice_heard[-16000:]) - 1000) < 20  # Alice hears Bob
    assert abs(dominant_frequency(bob_heard[-16000:]) - 440) < 20  # Bob hears Alice
    assert seconds is not None and seconds > 2
    _, (left, right) = read_wav_channels(tmp_path / "bridge.wav")
    assert abs(dominant_frequency(left[-8000:]) - 440) < 20  # the caller on the left
    assert abs(dominant_frequency(right[-8000:]) - 1000) < 20  # the callee on the right
