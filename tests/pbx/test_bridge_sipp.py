"""A bridged call between two SIPp peers: the media relay path against devices we did not
write, with real RTP speech on both legs and RFC 4733 keys from the caller."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from tests.media.media_rig import read_wav_channels, rms
from tests.sipp import Sipp, requires_sipp

from sautikit.media import Bridge
from sautikit.pbx import InboundLeg, Pbx

pytestmark = requires_sipp

SCENARIOS = Path(__file__).parent / "scenarios"


async def test_two_sipp_legs_are_relayed_recorded_and_keyed(make_pbx, tmp_path: Path) -> None:
    outcome: dict[str, object] = {}
    pbx: Pbx

    async def app(leg: InboundLeg) -> None:
        leg.ring()
        await leg.answer()
        callee = await pbx.dial(
            f"sip:+254722000000@127.0.0.1:{callee_sipp.port}", from_uri="sip:p@127.0.0.1"
        )
        await callee.wait_answer()
        bridge = Bridge(leg.channel, callee.channel, tmp_path / "bridged.wav")
        before = (
            leg.channel.session.stats.packets_received,
            callee.channel.session.stats.packets_received,
        )
        outcome["relaying"] = bridge.relaying
        digits = ""
        while (digit := await leg.channel.next_digit()) is not None:
            digits += digit
            outcome["relaying_at_keys"] = bridge.relaying
        outcome["digits"] = digits
        outcome["relayed"] = (
            callee.channel.session.stats.packets_relayed,
            leg.channel.session.stats.packets_relayed,
        )
        outcome["received"] = (
            leg.channel.session.stats.packets_received - before[0],
            callee.channel.session.stats.packets_received - before[1],
        )
        outcome["seconds"] = bridge.unbridge()
        assert bridge.recording is not None
        await bridge.recording.finished()
        await callee.hangup()

    pbx = await make_pbx(app)
    async with Sipp(
        scenario=SCENARIOS / "callee_answers_and_speaks.xml", timeout=30
    ) as callee_sipp:
        caller = await Sipp(
            scenario=SCENARIOS / "caller_speaks_and_keys.xml",
            remote=("127.0.0.1", pbx.port),
            service="+254700000001",
            timeout=30,
        ).run()
        assert caller.returncode == 0, caller.explain()
        callee = await callee_sipp.wait()
        assert callee.returncode == 0, callee.explain()
    for _ in range(50):
        if "seconds" in outcome:
            break
        await asyncio.sleep(0.1)

    assert outcome["relaying"] is True and outcome["relaying_at_keys"] is True
    # The keys' packets crossed to the callee; the caller's own leg detected them too.
    assert outcome["digits"] == "12#"
    # Every packet either leg sent while bridged was relayed to the other (audio and events).
    assert outcome["relayed"] == outcome["received"]
    rate, (caller_side, callee_side) = read_wav_channels(tmp_path / "bridged.wav")
    seconds = outcome["seconds"]
    assert isinstance(seconds, float) and 8 < seconds < 12
    assert len(caller_side) / rate == pytest.approx(seconds, abs=0.05)
    # Both played the same 7 s A-law speech capture from answer on: each channel holds it.
    assert rms(caller_side[: 6 * rate]) > 300
    assert rms(callee_side[: 6 * rate]) > 300
    assert rms(caller_side[int(8.5 * rate) :]) < rms(caller_side[: 6 * rate]) / 10
