"""Wideband phones (Opus, G.722) on a carrier's G.711 call, end to end.

A carrier's caller (SIPp, offering G.711 only, echoing back what it hears) calls NUMBER,
whose app dials a softphone (baresip, which offers only Opus or only G.722) and records
the call in two channels. What a user would notice:

* the phone's call is set up in its wideband codec (baresip says which);
* the phone's voice, a 1 kHz tone with a 6 kHz one over it, reaches the carrier's side
  (SIPp's echo of it comes back: in the recording's caller channel and in the phone's ear),
  through G.711, which has no room for the 6 kHz;
* the recording is 16 kHz and its phone channel keeps the 6 kHz tone: the wideband audio
  was not squeezed through 8 kHz on its way to the file.
"""

from __future__ import annotations

import wave
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from tests.baresip import Baresip, requires_baresip
from tests.sipp import Sipp, requires_sipp
from tests.voice.stack import NUMBER, Stack, open_stack
from tests.voice.voice_rig import AppServer, document

from sautikit.db import Database

pytestmark = [requires_sipp, requires_baresip]

SCENARIOS = Path(__file__).parent / "scenarios"


@pytest.fixture
async def stack(database: Database, app: AppServer, tmp_path: Path) -> AsyncIterator[Stack]:
    async with open_stack(database, app, tmp_path) as opened:
        yield opened


def two_tones(rate: int, seconds: float, channels: int) -> bytes:
    """1 kHz at -15 dBFS with 6 kHz at -21 dBFS over it, as a 16-bit WAV body."""
    t = np.arange(round(rate * seconds)) / rate
    mono = 6000 * np.sin(2 * np.pi * 1000 * t) + 3000 * np.sin(2 * np.pi * 6000 * t)
    return np.repeat(mono.astype("<i2"), channels).tobytes()


def band_level(samples: np.ndarray, rate: int, hz: float) -> float:
    """The spectrum's peak within 100 Hz of ``hz``, against its peak overall (dB)."""
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64) * np.hanning(len(samples))))
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    near = spectrum[np.abs(freqs - hz) < 100]
    return float(20 * np.log10(near.max() / spectrum.max()))


def loud_stretch(samples: np.ndarray, rate: int) -> np.ndarray:
    """One second from the middle of where the channel is loud."""
    loud = np.flatnonzero(np.abs(samples.astype(np.float64)) > 1000)
    assert loud.size > rate, "the channel is (nearly) silent"
    middle = (loud[0] + loud[-1]) // 2
    return samples[middle - rate // 2 : middle + rate // 2]


@pytest.mark.parametrize(
    ("audio_codecs", "phone_rate", "phone_channels", "announced"),
    [
        pytest.param("opus/48000/2", 48000, 2, "Set audio encoder: opus 48000Hz", id="opus"),
        pytest.param("G722/16000/1", 16000, 1, "Set audio encoder: G722 16000Hz", id="g722"),
    ],
)
async def test_a_carrier_call_to_a_wideband_phone_is_transcoded_and_recorded_at_16_khz(
    stack: Stack,
    tmp_path: Path,
    audio_codecs: str,
    phone_rate: int,
    phone_channels: int,
    announced: str,
) -> None:
    voice = tmp_path / "phone.wav"
    with wave.open(str(voice), "wb") as wav:
        wav.setnchannels(phone_channels)
        wav.setsampwidth(2)
        wav.setframerate(phone_rate)
        wav.writeframes(two_tones(phone_rate, 12.0, phone_channels))
    phone = Baresip(tmp_path / "phone", "desk", voice, (37400, 37499), audio_codecs=audio_codecs)
    dial = {
        "sip": phone.uri,
        "record": "record-from-answer",
        "recordingChannels": "dual",
        "action": stack.app.url("/dialled"),
    }
    allowed = await stack.api.patch(
        "/v1/settings", json={"sip_host_allowlist": ["127.0.0.1"]}, headers=stack.headers
    )
    assert allowed.status_code == 200, allowed.text
    stack.app.route("/voice", document({"dial": dial}))
    stack.app.route("/dialled", document({"hangup": {}}))
    await phone.start(seconds=11)
    caller = await Sipp(
        scenario=SCENARIOS / "caller_echoes_then_hangs_up.xml",
        remote=stack.sip,
        service=NUMBER,
        timeout=30,
        extra=["-rtp_echo"],
    ).run()
    assert caller.returncode == 0, caller.explain()  # G.711 (PCMU) on the carrier's side
    said = await phone.wait()  # it quits by itself, closing its dump of what it heard
    assert announced in said, said[-2000:]

    (dialled,) = await stack.app.wait_for_hits("/dialled")
    assert dialled.fields["DialCallStatus"] == "completed"
    rate, (caller_side, phone_side) = await stack.recording_audio(dialled.fields["RecordingSid"])
    assert rate == 16000
    # The phone's side: both tones, 6 kHz included (it never went through 8 kHz).
    heard_from_phone = loud_stretch(phone_side, rate)
    assert band_level(heard_from_phone, rate, 1000) == 0.0
    assert band_level(heard_from_phone, rate, 6000) > -12
    # The caller's side is SIPp's echo of the phone through G.711: 1 kHz, no 6 kHz.
    echoed = loud_stretch(caller_side, rate)
    assert band_level(echoed, rate, 1000) == 0.0
    assert band_level(echoed, rate, 6000) < -30
    # And the phone heard its own 1 kHz come back from the carrier's side.
    with wave.open(str(phone.heard())) as heard:
        heard_rate, heard_channels = heard.getframerate(), heard.getnchannels()
        samples = np.frombuffer(heard.readframes(heard.getnframes()), "<i2")
    back = loud_stretch(samples[::heard_channels], heard_rate)
    assert band_level(back, heard_rate, 1000) == 0.0
