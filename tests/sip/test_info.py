"""DTMF in SIP INFO: read from both bodies in use, and delivered to call logic like RTP keys.

The real-peer test has SIPp key 4 and # as INFO into a PBX whose call logic collects digits
with ``collect_digits`` (what ``getDigits``/``gather`` run on): it gets ``4`` finished by
``#``, exactly what RFC 4733 events would have given it.
"""

from __future__ import annotations

import asyncio

import pytest
from tests.sip.conftest import MakePbx
from tests.sipp import SCENARIOS, Sipp, requires_sipp

from sautikit.media import DigitsEnd, DigitsResult
from sautikit.pbx import InboundLeg
from sautikit.sip import Request, SipUri
from sautikit.sip.info import InfoDtmfError, info_digit

# An RTP port slice per test process, apart from tests/pbx's (45000-48999).


def _info(content_type: str, body: str) -> Request:
    request = Request(method="INFO", uri=SipUri.parse("sip:a@127.0.0.1"), body=body.encode())
    request.headers.add("Content-Type", content_type)
    return request


@pytest.mark.parametrize(
    ("content_type", "body", "digit"),
    [
        ("application/dtmf-relay", "Signal=5\r\nDuration=160\r\n", "5"),
        ("application/dtmf-relay", "signal= *\nduration=100", "*"),
        ("Application/DTMF-Relay; charset=x", "Signal=11\r\n", "#"),
        ("application/dtmf", "#", "#"),
        ("application/dtmf", "10", "*"),
        ("application/dtmf", " d ", "D"),
    ],
)
def test_dtmf_bodies_name_their_key(content_type: str, body: str, digit: str) -> None:
    assert info_digit(_info(content_type, body)) == digit


def test_an_info_that_is_not_dtmf_has_no_key() -> None:
    assert info_digit(Request(method="INFO", uri=SipUri.parse("sip:a@h"))) is None
    assert info_digit(_info("application/broadsoft", "event=flashhook")) is None


@pytest.mark.parametrize("body", ["Signal=X", "Duration=100", "", "16"])
def test_unreadable_dtmf_bodies_are_refused(body: str) -> None:
    with pytest.raises(InfoDtmfError):
        info_digit(_info("application/dtmf-relay" if "=" in body else "application/dtmf", body))


@requires_sipp
async def test_info_keys_from_sipp_are_collected_like_rtp_keys(make_pbx: MakePbx) -> None:
    collected: asyncio.Future[DigitsResult] = asyncio.get_running_loop().create_future()

    async def app(leg: InboundLeg) -> None:
        await leg.answer()
        collected.set_result(await leg.channel.collect_digits(finish_on_key="#", timeout=8))

    pbx = await make_pbx(app)
    result = await Sipp(
        scenario=SCENARIOS / "uac_info_dtmf.xml", remote=("127.0.0.1", pbx.port), timeout=15
    ).run()
    assert result.returncode == 0, result.explain()
    digits = await asyncio.wait_for(collected, 5)
    assert (digits.digits, digits.finished_by) == ("4", DigitsEnd.KEY)
