"""A PBX bound to every interface: what it advertises is an address a phone can reach."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from tests.media.media_rig import dominant_frequency, read_wav_channels

from sautikit.media import tone
from sautikit.pbx import InboundLeg
from sautikit.sip.addresses import primary_address


async def test_a_pbx_on_0000_never_names_0000_and_its_calls_carry_audio(
    make_pbx, tmp_path: Path
) -> None:
    async def app(leg: InboundLeg) -> None:
        await leg.answer()
        await leg.channel.play(tone(440, 1.0))
        await leg.wait_ended()

    server = await make_pbx(app, sip_host="0.0.0.0")
    assert server.sip_host == server.media_address == primary_address()
    phone = await make_pbx()
    leg = await phone.dial(
        f"sip:+254700000001@127.0.0.1:{server.port}", from_uri="sip:+254711000000@127.0.0.1"
    )
    await asyncio.wait_for(leg.wait_answer(), 10)
    heard = leg.channel.start_recording(tmp_path / "phone.wav")
    await asyncio.sleep(0.8)
    heard.stop()
    await heard.finished()
    answer = leg.sip.remote_sdp
    assert answer is not None
    assert "0.0.0.0" not in answer.encode().decode()
    assert answer.media_connection(answer.media[0]).address == primary_address()
    assert leg.sip.dialog is not None
    assert leg.sip.dialog.remote_target.host == primary_address()
    await leg.hangup()
    _, (phone_heard,) = read_wav_channels(tmp_path / "phone.wav")
    assert abs(dominant_frequency(phone_heard[: 8000 // 2]) - 440) < 20


async def test_tcp_listens_where_its_own_setting_says(make_pbx) -> None:
    """UDP on ``sip_host``, TCP on ``sip_tcp_host`` (two loopback addresses here): a call
    over TCP to the TCP address is answered, and nothing listens for TCP beside UDP."""

    async def app(leg: InboundLeg) -> None:
        await leg.answer()
        await leg.wait_ended()

    server = await make_pbx(app, sip_host="127.0.0.1", sip_tcp_host="127.0.0.2")
    with pytest.raises(OSError):
        _, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.close()
    phone = await make_pbx()
    leg = await phone.dial(
        f"sip:+254700000001@127.0.0.2:{server.port};transport=tcp",
        from_uri="sip:+254711000000@127.0.0.1",
        destination=("127.0.0.2", server.port, "tcp"),
    )
    await asyncio.wait_for(leg.wait_answer(), 10)
    await leg.hangup()
