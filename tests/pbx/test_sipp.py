"""The PBX against SIPp, a SIP peer Sautikit did not write, with real RTP audio and DTMF.

What is asserted is what a user would notice: the digits the caller pressed arrive once
each, the recording holds the caller's speech in its own channel and lasts as long as the
call, and each SIP answer is the one a phone would expect.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from tests.media.media_rig import read_wav_channels, rms
from tests.sipp import SCENARIOS as SIP_SCENARIOS
from tests.sipp import Sipp, requires_sipp

from sautikit.media import DigitsEnd, tone
from sautikit.pbx import InboundLeg
from sautikit.sip import CallFailed, EndReason

pytestmark = requires_sipp

SCENARIOS = Path(__file__).parent / "scenarios"


async def test_caller_speech_and_keys_are_recorded_and_collected(make_pbx, tmp_path: Path) -> None:
    outcome: dict[str, object] = {}

    async def app(leg: InboundLeg) -> None:
        outcome["called"] = leg.called
        outcome["caller"] = leg.caller
        leg.ring()
        await leg.answer()
        recording = leg.channel.start_recording(tmp_path / "call.wav", channels=2)
        await leg.channel.play(tone(440, 1.0))
        outcome["digits"] = await leg.channel.collect_digits(finish_on_key="#", timeout=12)
        outcome["end"] = await leg.wait_ended()
        outcome["seconds"] = recording.stop()
        await recording.finished()

    pbx = await make_pbx(app)
    result = await Sipp(
        scenario=SCENARIOS / "caller_speaks_and_keys.xml",
        remote=("127.0.0.1", pbx.port),
        service="+254700000001",
        timeout=30,
    ).run()
    assert result.returncode == 0, result.explain()
    for _ in range(50):
        if "seconds" in outcome:
            break
        await asyncio.sleep(0.1)

    assert outcome["called"] == "+254700000001"
    assert outcome["caller"] == "+254711000111"
    digits = outcome["digits"]
    assert (digits.digits, digits.finished_by) == ("12", DigitsEnd.KEY)
    assert outcome["end"].reason is EndReason.REMOTE_HANGUP
    rate, (caller, heard) = read_wav_channels(tmp_path / "call.wav")
    assert 8 < outcome["seconds"] < 12  # 7 s of speech, three keys, then BYE
    assert len(caller) / rate == pytest.approx(outcome["seconds"], abs=0.1)
    assert rms(caller[: 7 * rate]) > 300  # the caller's speech, on the left
    assert rms(caller[int(8.5 * rate) :]) < rms(caller[: 7 * rate]) / 10  # then quiet
    assert rms(heard[: rate // 2]) > 1000  # the 440 Hz prompt, on the right


async def test_caller_who_gives_up_while_ringing(make_pbx) -> None:
    legs: list[InboundLeg] = []

    async def app(leg: InboundLeg) -> None:
        legs.append(leg)
        leg.ring()

    pbx = await make_pbx(app)
    result = await Sipp(
        scenario=SIP_SCENARIOS / "uac_cancel.xml", remote=("127.0.0.1", pbx.port), service="100"
    ).run()
    assert result.returncode == 0, result.explain()
    (leg,) = legs
    assert (await asyncio.wait_for(leg.wait_ended(), 5)).reason is EndReason.REMOTE_CANCEL
    assert leg.channel.closed


async def test_callee_answers_and_its_speech_is_heard(make_pbx, tmp_path: Path) -> None:
    pbx = await make_pbx()
    async with Sipp(scenario=SCENARIOS / "callee_answers_and_speaks.xml", timeout=20) as sipp:
        leg = await pbx.dial(f"sip:+254722000000@127.0.0.1:{sipp.port}", from_uri="sip:p@127.0.0.1")
        await leg.wait_answer()
        heard = leg.channel.start_recording(tmp_path / "heard.wav")
        await asyncio.sleep(3)
        heard.stop()
        await heard.finished()
        await leg.hangup()
        result = await sipp.wait()
    assert result.returncode == 0, result.explain()
    assert leg.media is not None and leg.media.codec == "PCMA"
    rate, (far_end,) = read_wav_channels(tmp_path / "heard.wav")
    assert len(far_end) / rate == pytest.approx(3, abs=0.2)
    assert rms(far_end) > 300


@pytest.mark.parametrize(
    ("scenario", "ring_timeout", "status"),
    [("uas_busy.xml", 5.0, 486), ("uas_no_answer.xml", 1.0, 487)],
)
async def test_callee_busy_or_not_answering(
    make_pbx, scenario: str, ring_timeout: float, status: int
) -> None:
    pbx = await make_pbx()
    async with Sipp(scenario=SIP_SCENARIOS / scenario, timeout=10) as sipp:
        leg = await pbx.dial(
            f"sip:+254722000000@127.0.0.1:{sipp.port}",
            from_uri="sip:p@127.0.0.1",
            ring_timeout=ring_timeout,
        )
        with pytest.raises(CallFailed) as failed:
            await leg.wait_answer()
        result = await sipp.wait()
    assert failed.value.status == status
    assert result.returncode == 0, result.explain()
    assert leg.channel.closed
