"""Which digest algorithms a phone is challenged with (RFC 8760): the deployment's
default (MD5, which baresip 1.0, SIPp 3.6 and linphone 5.1 all answer — the other device
tests register each of them against it), or a credential's own list, in its order.
An unknown username is challenged exactly as a known one on the default."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select
from tests.sipp import Sipp, requires_sipp
from tests.voice.stack import NUMBER, Stack, open_stack
from tests.voice.voice_rig import AppServer

from sautikit.db import Database
from sautikit.db.models import Number, SipCredential
from sautikit.sip import compute_ha1

pytestmark = [requires_sipp, pytest.mark.parametrize("empty_database", ["sqlite"], indirect=True)]

_SCENARIO = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="register and read the challenge">
  <send retrans="500">
    <![CDATA[
      REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:[service]@[remote_ip]:[remote_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 REGISTER
      Contact: <sip:[service]@[local_ip]:[local_port]>
      Expires: 300
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="401">
    <action>
      <ereg regexp="{offered}" search_in="msg" check_it="true" assign_to="offered"/>
      <ereg regexp="{absent}" search_in="msg" check_it_inverse="true" assign_to="absent"/>
    </action>
  </recv>
  <Reference variables="offered,absent"/>
</scenario>
"""


@pytest.fixture
async def stack(database: Database, app: AppServer, tmp_path: Path) -> AsyncIterator[Stack]:
    async with open_stack(database, app, tmp_path) as opened:
        yield opened


async def challenged(stack: Stack, tmp_path: Path, user: str, offered: str, absent: str) -> None:
    scenario = tmp_path / f"challenge-{user}.xml"
    scenario.write_text(_SCENARIO.format(offered=offered, absent=absent))
    result = await Sipp(scenario=scenario, remote=stack.sip, service=user).run()
    assert result.returncode == 0, result.explain()


async def test_a_credential_is_challenged_with_its_own_algorithms(
    stack: Stack, tmp_path: Path
) -> None:
    await stack.add_device("alice", "s3cret")  # the deployment's default
    async with stack.database.transaction() as session:
        number_id = await session.scalar(select(Number.id).where(Number.e164 == NUMBER))
        assert number_id is not None
        session.add(
            SipCredential(
                workspace_id=stack.workspace_id,
                number_id=number_id,
                username="modern",
                ha1_md5=compute_ha1("modern", stack.workspace_id, "pw", "MD5"),
                ha1_sha256=compute_ha1("modern", stack.workspace_id, "pw", "SHA-256"),
                digest_algorithms=["SHA-256", "MD5"],
            )
        )
    await stack.manager.reload_trunks()
    await challenged(stack, tmp_path, "modern", "algorithm=SHA-256.*algorithm=MD5", "xyz^")
    for user in ("alice", "nobody-at-all"):  # known on the default, and unknown: the same
        await challenged(stack, tmp_path, user, "algorithm=MD5", "SHA-256")
