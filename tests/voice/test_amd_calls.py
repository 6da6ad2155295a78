"""Answering-machine detection on outbound API calls: a SIPp callee that answers and plays
a clip of the committed set (a recorded greeting with a beep, or a person's "Hello?")."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select
from tests.sipp import Sipp, requires_sipp
from tests.voice.stack import CALLEE, NUMBER, Stack, open_stack
from tests.voice.voice_rig import AppServer, document

from sautikit.db import Database
from sautikit.db.models import Event

pytestmark = requires_sipp

CLIPS = Path(__file__).parents[2] / "benchmarks" / "amd_clips"
sqlite_only = pytest.mark.parametrize("empty_database", ["sqlite"], indirect=True)

_CALLEE = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="callee answering with a clip">
  <recv request="INVITE" crlf="true"/>
  <send retrans="500">
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
    ]]>
  </send>
  <recv request="ACK" crlf="true">
    <action>
      <exec rtp_stream="CLIP,1,0"/>
    </action>
  </recv>
  <recv request="BYE"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
</scenario>
"""


@pytest.fixture
async def stack(database: Database, app: AppServer, tmp_path: Path) -> AsyncIterator[Stack]:
    async with open_stack(database, app, tmp_path) as opened:
        yield opened


def _callee(tmp_path: Path, clip: str) -> Sipp:
    """SIPp answering and streaming ``clip`` as raw µ-law (made with sox)."""
    raw = tmp_path / f"{clip}.ul"
    subprocess.run(["sox", str(CLIPS / clip), "-t", "ul", str(raw)], check=True)
    scenario = tmp_path / "callee.xml"
    scenario.write_text(_CALLEE.replace("CLIP", str(raw)))
    return Sipp(scenario=scenario, timeout=40)


async def _place(stack: Stack, **amd: object) -> str:
    body = {"to": CALLEE, "from": NUMBER, "action_url": stack.app.url("/answered"), **amd}
    placed = await stack.api.post("/v1/calls", json=body, headers=stack.headers)
    assert placed.status_code == 201, placed.text
    return str(placed.json()["id"])


@sqlite_only
@pytest.mark.parametrize(
    ("clip", "answered_by"),
    [("machine-01.wav", "machine_end_beep"), ("human-01.wav", "human")],
)
async def test_the_action_url_is_told_who_answered(
    stack: Stack, tmp_path: Path, clip: str, answered_by: str
) -> None:
    stack.app.route("/answered", document({"hangup": {}}))
    async with _callee(tmp_path, clip) as callee:
        await stack.route_trunk_to(callee.port)
        call_id = await _place(stack, machine_detection="DetectMessageEnd")
        (answered,) = await stack.app.wait_for_hits("/answered", seconds=30)
        result = await callee.wait()
    assert result.returncode == 0, result.explain()
    assert answered.fields["AnsweredBy"] == answered_by
    assert int(answered.fields["MachineDetectionDuration"]) > 0
    await stack.wait_for_calls_to_end()
    # The verdict is kept: the call resource and the call's final event carry it.
    shown = await stack.api.get(f"/v1/calls/{call_id}", headers=stack.headers)
    assert shown.json()["answered_by"] == answered_by
    assert await _completed_event_answered_by(stack, call_id) == answered_by


async def _completed_event_answered_by(stack: Stack, call_id: str) -> object:
    async with stack.database.sessions() as session:
        data = await session.scalar(
            select(Event.data).where(Event.call_id == call_id, Event.kind == "call.completed")
        )
    assert data is not None
    return data["answered_by"]


@sqlite_only
async def test_async_amd_runs_the_app_at_once_and_posts_the_verdict_later(
    stack: Stack, tmp_path: Path
) -> None:
    stack.app.route("/answered", document({"pause": {"length": 20}}))
    stack.app.route("/amd", document())
    async with _callee(tmp_path, "machine-03.wav") as callee:
        await stack.route_trunk_to(callee.port)
        call_id = await _place(
            stack,
            machine_detection="Enable",
            async_amd=True,
            async_amd_status_callback=stack.app.url("/amd"),
        )
        (answered,) = await stack.app.wait_for_hits("/answered", seconds=30)
        (verdict,) = await stack.app.wait_for_hits("/amd", seconds=30)
        shown = await stack.api.get(f"/v1/calls/{call_id}", headers=stack.headers)
        assert shown.json()["answered_by"] == "machine_start"
        hung_up = await stack.api.post(
            f"/v1/calls/{call_id}", json={"status": "completed"}, headers=stack.headers
        )
        assert hung_up.status_code == 200
        await callee.wait()
    assert "AnsweredBy" not in answered.fields
    assert verdict.fields["AnsweredBy"] == "machine_start"
    assert verdict.fields["CallId"] == call_id
    await stack.wait_for_calls_to_end()
    assert await _completed_event_answered_by(stack, call_id) == "machine_start"


async def test_async_amd_without_a_callback_is_refused(stack: Stack) -> None:
    body = {
        "to": CALLEE,
        "from": NUMBER,
        "action_url": stack.app.url("/answered"),
        "machine_detection": "Enable",
        "async_amd": True,
    }
    refused = await stack.api.post("/v1/calls", json=body, headers=stack.headers)
    assert refused.status_code == 400 or refused.status_code == 422
    assert await stack.calls() == []
