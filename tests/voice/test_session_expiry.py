"""A dead call ends (RFC 4028 session timers): an answered call whose far end stops
refreshing the session gets our BYE when the interval is over, and is billed to then.

The callee is SIPp answering with a 2 s session interval it should refresh and never
does, as a crashed SBC would; the app would have kept the call up for a minute.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.sipp import Sipp, requires_sipp
from tests.voice.stack import CALLEE, NUMBER, open_stack
from tests.voice.voice_rig import AppServer, document

from sautikit.db import Database
from sautikit.db.models import Rate

pytestmark = requires_sipp

SCENARIOS = Path(__file__).parent / "scenarios"


@pytest.mark.parametrize("empty_database", ["sqlite"], indirect=True)
async def test_a_call_nobody_refreshes_ends_with_bye_and_is_billed_to_then(
    database: Database, app: AppServer, tmp_path: Path
) -> None:
    async with open_stack(
        database, app, tmp_path, sip_session_expires_seconds=2, sip_min_se_seconds=2
    ) as stack:
        async with database.transaction() as session:
            session.add(Rate(direction="outbound", prefix="+25472", rate_per_minute_minor=6000))
        stack.app.route("/answered", document({"pause": {"length": 60}}))
        async with Sipp(scenario=SCENARIOS / "callee_goes_silent.xml", timeout=20) as callee:
            await stack.route_trunk_to(callee.port)
            body = {"to": CALLEE, "from": NUMBER, "action_url": stack.app.url("/answered")}
            placed = await stack.api.post("/v1/calls", json=body, headers=stack.headers)
            assert placed.status_code == 201, placed.text
            result = await callee.wait()  # it got our BYE
        assert result.returncode == 0, result.explain()
        (call,) = await stack.wait_for_calls_to_end()
        assert (call.status, call.hangup_cause) == ("completed", "network_error")
        assert call.error is not None and call.error["code"] == "call.session_expired"
        # Billed for what was up, well short of the minute the app asked for.
        assert call.duration_seconds is not None and 1 <= call.duration_seconds <= 3
        assert call.price_minor == 100 * call.duration_seconds
