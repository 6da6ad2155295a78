"""Answering a carrier's digest challenge (RFC 3261 §22.2, RFC 8760), with a trunk's own
choice of algorithms: the best of them that is offered, and none that is not."""

from __future__ import annotations

import pytest

from sautikit.sip.client_auth import ClientCredentials, answer_challenge
from sautikit.sip.digest import DigestAuthenticator, DigestError, parse_credentials
from sautikit.sip.message import CSeq, Request, Response
from sautikit.sip.uri import SipUri


def _invite() -> Request:
    invite = Request(method="INVITE", uri=SipUri.parse("sip:+254700000001@carrier.example"))
    invite.headers.add("Via", "SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKabc")
    invite.headers.add("From", "<sip:+254711000000@127.0.0.1>;tag=1")
    invite.headers.add("To", "<sip:+254700000001@carrier.example>")
    invite.headers.add("Call-ID", "call-1")
    invite.headers.add("CSeq", str(CSeq(1, "INVITE")))
    return invite


def _challenge(algorithms: tuple[str, ...]) -> Response:
    response = Response(status=401, reason="Unauthorized")
    for value in DigestAuthenticator("carrier", b"secret").challenge(algorithms):
        response.headers.add("WWW-Authenticate", value)
    return response


def _answered_with(credentials: tuple[str, str], offered: tuple[str, ...]) -> str | None:
    retry = answer_challenge(_invite(), _challenge(offered), credentials, 2)
    if retry is None:
        return None
    authorization = retry.headers.get("Authorization")
    assert authorization is not None
    return parse_credentials(authorization).algorithm


def test_plain_credentials_answer_the_first_challenge_they_can() -> None:
    assert _answered_with(("acme", "pw"), ("MD5", "SHA-256")) == "MD5"
    assert _answered_with(("acme", "pw"), ("SHA-256", "MD5")) == "SHA-256"


def test_a_trunks_algorithms_choose_the_best_offered_and_refuse_a_downgrade() -> None:
    sha_first = ClientCredentials("acme", "pw", ["SHA-256", "MD5"])
    assert _answered_with(sha_first, ("MD5", "SHA-256")) == "SHA-256"
    assert _answered_with(sha_first, ("MD5",)) == "MD5"
    sha_only = ClientCredentials("acme", "pw", ["sha-256"])
    assert sha_only.algorithms == ("SHA-256",)
    assert _answered_with(sha_only, ("MD5",)) is None  # no MD5 answer leaves us
    assert tuple(sha_only) == ("acme", "pw")  # still the (username, password) pair
    with pytest.raises(DigestError):
        ClientCredentials("acme", "pw", ["AKAv1-MD5"])
