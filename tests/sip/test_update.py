"""UPDATE (RFC 3311) against SIPp: answered in the early and the confirmed dialog.

The callee here is a PBX leg (real RTP channel), so what is checked is what a listener
would notice: after the early UPDATE our media goes to the caller's new port, and the
confirmed UPDATE's hold is answered ``recvonly`` and stops our sending.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from tests.sip.conftest import MakePbx
from tests.sipp import SCENARIOS, Sipp, requires_sipp

from sautikit.pbx import InboundLeg
from sautikit.sip import EndReason

pytestmark = [pytest.mark.sipp, requires_sipp]


async def test_update_in_early_and_confirmed_dialogs_is_answered_with_sdp(
    make_pbx: MakePbx,
) -> None:
    seen: dict[str, Any] = {}

    async def app(leg: InboundLeg) -> None:
        leg.ring()
        for _ in range(250):  # answer once the early UPDATE moved the media
            if leg.media is not None and leg.media.remote_port == 40998:
                break
            await asyncio.sleep(0.02)
        seen["early_port"] = leg.media.remote_port if leg.media else None
        await leg.answer()
        for _ in range(250):
            if leg.media is not None and leg.media.on_hold:
                break
            await asyncio.sleep(0.02)
        seen["held"] = leg.media is not None and leg.media.on_hold
        seen["sending"] = leg.channel.sending
        seen["end"] = await leg.wait_ended()

    pbx = await make_pbx(app)
    result = await Sipp(
        scenario=SCENARIOS / "uac_update.xml", remote=("127.0.0.1", pbx.port), timeout=15
    ).run()
    assert result.returncode == 0, result.explain()
    for _ in range(100):
        if "end" in seen:
            break
        await asyncio.sleep(0.05)
    assert seen["early_port"] == 40998
    assert seen["held"] is True and seen["sending"] is False
    assert seen["end"].reason is EndReason.REMOTE_HANGUP
