"""Registration through a balancer: two nodes on one PostgreSQL with the same secret. A
phone challenged by node A answers the challenge to node B (round-robin) and is
registered; a call that arrives at node A then rings the phone registered through B."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select
from tests.serve_process import NUMBER, ServeProcess, calls, seed, serve_database
from tests.sipp import SCENARIOS, Sipp, free_port, requires_sipp

from sautikit.db.models import Number, SipCredential, SipRegistration
from sautikit.sip.digest import compute_ha1

pytestmark = [pytest.mark.sipp, requires_sipp]

VOICE_SCENARIOS = Path(__file__).parent.parent / "voice" / "scenarios"

# REGISTER to node A, its 401, then the answer sent to node B (setdest), as a balancer
# would spread them: one nonce, two nodes. The request names the one registrar domain.
CROSS_NODE_REGISTER = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="register across two nodes">
  <send retrans="500">
    <![CDATA[
      REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:bob@[remote_ip]:[remote_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:bob@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 REGISTER
      Contact: <sip:bob@127.0.0.1:PHONE_PORT>
      Expires: 300
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="401" auth="true"/>
  <nop><action><setdest host="127.0.0.1" port="NODE_B_PORT" protocol="udp"/></action></nop>
  <send retrans="500">
    <![CDATA[
      REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:bob@[remote_ip]:[remote_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:bob@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 2 REGISTER
      Contact: <sip:bob@127.0.0.1:PHONE_PORT>
      [authentication username=bob password=s3cret]
      Expires: 300
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
</scenario>
"""


async def test_a_phone_registers_across_nodes_and_rings_from_the_other(tmp_path: Path) -> None:
    async with serve_database("postgresql", tmp_path) as (url, database):
        seeded = await seed(database, voice_url="http://127.0.0.1:9/unused", trunk_port=9)
        async with database.transaction() as session:
            number = await session.scalar(select(Number).where(Number.e164 == NUMBER))
            assert number is not None
            number.voice_url = None  # the number rings its registered devices
            realm = seeded.workspace_id
            session.add(
                SipCredential(
                    workspace_id=seeded.workspace_id,
                    number_id=number.id,
                    username="bob",
                    ha1_md5=compute_ha1("bob", realm, "s3cret", "MD5"),
                    ha1_sha256=compute_ha1("bob", realm, "s3cret", "SHA-256"),
                )
            )
        node_a = ServeProcess(
            tmp_path / "a" / "var", url, rtp_ports=(31200, 31299), env={"SAUTIKIT_NODE_ID": "a"}
        )
        node_b = ServeProcess(
            tmp_path / "b" / "var", url, rtp_ports=(31300, 31399), env={"SAUTIKIT_NODE_ID": "b"}
        )
        try:
            await node_a.start()
            await node_b.start()
            # The phone registers from the port it then answers on (its NAT source).
            phone_port = free_port()
            scenario = tmp_path / "register_across_nodes.xml"
            scenario.write_text(
                CROSS_NODE_REGISTER.replace("PHONE_PORT", str(phone_port)).replace(
                    "NODE_B_PORT", str(node_b.sip_port)
                )
            )
            registered = await Sipp(
                scenario=scenario, remote=node_a.sip, port=phone_port, timeout=20
            ).run()
            assert registered.returncode == 0, registered.explain()
            async with database.sessions() as session:
                (binding,) = (await session.scalars(select(SipRegistration))).all()
            assert binding.node == "b" and f":{phone_port}" in binding.contact

            async with Sipp(
                scenario=SCENARIOS / "uas_answer.xml", port=phone_port, timeout=60
            ) as phone:
                caller = await Sipp(
                    scenario=VOICE_SCENARIOS / "caller_talks_then_hangs_up.xml",
                    remote=node_a.sip,
                    service=NUMBER,
                    timeout=30,
                ).run()
                assert caller.returncode == 0, caller.explain()
                answered = await phone.wait()
            assert answered.returncode == 0, answered.explain()  # node A rang it
            for _ in range(100):
                if all(call.status == "completed" for call in await calls(database)):
                    break
                await asyncio.sleep(0.1)
            found = await calls(database)
            assert found and all(call.status == "completed" for call in found)
            assert {call.owner for call in found} == {"a"}
        finally:
            await node_a.kill()
            await node_b.kill()
