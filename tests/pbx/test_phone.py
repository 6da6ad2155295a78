"""The test phone places and answers real calls, from Python and from the command line."""

from __future__ import annotations

import asyncio
import sys
import wave
from pathlib import Path

import numpy as np
from tests.media.media_rig import dominant_frequency, read_wav_channels, rms

from sautikit.media import DigitsEnd, tone
from sautikit.pbx import CallScript, InboundLeg, Phone


def _wav(path: Path, frequency: float, seconds: float) -> Path:
    """A 16 kHz tone: the phone resamples any rate to 8 kHz."""
    times = np.arange(int(16000 * seconds)) / 16000
    samples = (10000 * np.sin(2 * np.pi * frequency * times)).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(samples.tobytes())
    return path


async def test_phone_speaks_presses_and_records(make_pbx, tts, tmp_path: Path) -> None:
    heard: asyncio.Future = asyncio.get_running_loop().create_future()

    async def app(leg: InboundLeg) -> None:
        await leg.answer()
        recording = leg.channel.start_recording(tmp_path / "server.wav")
        await leg.channel.play(tone(440, 0.5))
        digits = await leg.channel.collect_digits(timeout=10)
        recording.stop()
        await recording.finished()
        heard.set_result(digits)
        await leg.hangup()

    pbx = await make_pbx(app)
    async with Phone(rtp_ports=(44000, 44099), tts=tts) as phone:
        report = await phone.call(
            "+254700000001",
            CallScript(say="Hello from the phone", dtmf="5#", record_to=tmp_path / "p.wav"),
            server=("127.0.0.1", pbx.port),
        )
    digits = await asyncio.wait_for(heard, 5)
    assert (digits.digits, digits.finished_by) == ("5", DigitsEnd.KEY)
    assert report.answered and report.end_reason == "remote_hangup"
    assert "pressing 5#" in report.events
    _, (phone_heard,) = read_wav_channels(tmp_path / "p.wav")
    assert abs(dominant_frequency(phone_heard[:3000]) - 440) < 20
    _, (server_heard,) = read_wav_channels(tmp_path / "server.wav")
    assert rms(server_heard) > 200  # the spoken sentence


async def test_phone_answers_and_plays_a_wav(make_pbx, tmp_path: Path) -> None:
    pbx = await make_pbx()
    async with Phone(rtp_ports=(44100, 44199)) as phone:
        answering = asyncio.create_task(
            phone.answer(CallScript(voice=_wav(tmp_path / "v.wav", 700, 1.0)), within=5)
        )
        leg = await pbx.dial(f"sip:phone@127.0.0.1:{phone.port}", from_uri="sip:pbx@127.0.0.1")
        await leg.wait_answer()
        recording = leg.channel.start_recording(tmp_path / "heard.wav")
        await asyncio.sleep(0.8)
        recording.stop()
        await recording.finished()
        await leg.hangup()
        report = await answering
    assert report.answered and report.end_reason == "remote_hangup"
    _, (heard,) = read_wav_channels(tmp_path / "heard.wav")
    assert abs(dominant_frequency(heard[1600:]) - 700) < 20


async def test_the_phone_command(make_pbx, tmp_path: Path) -> None:
    got: asyncio.Future = asyncio.get_running_loop().create_future()

    async def app(leg: InboundLeg) -> None:
        await leg.answer()
        got.set_result(await leg.channel.collect_digits(timeout=10))
        await leg.channel.play(tone(440, 0.4))
        await leg.hangup()

    pbx = await make_pbx(app)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sautikit", "phone", "call", "+254700000001",
        "--server", f"127.0.0.1:{pbx.port}", "--dtmf", "12#",
        "--record", str(tmp_path / "cli.wav"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), 30)
    text = output.decode()
    assert process.returncode == 0, text
    assert (await got).digits == "12"
    assert "answered=True" in text and "end=remote_hangup" in text
    assert (tmp_path / "cli.wav").stat().st_size > 44
