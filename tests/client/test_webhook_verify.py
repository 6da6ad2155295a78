"""What an app verifies with the SDK is what the server signs (SPEC §7)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

import sautikit_sdk as client
from sautikit import webhooks as server_webhooks
from sautikit.events import signing as server_signing
from sautikit_sdk.signing import SIGNATURE_HEADER, sign
from sautikit_sdk.webhooks import WebhookVerificationError, verify

SECRET = "whsec_test"
NOW = 1_790_000_000


def test_the_server_signs_with_the_sdks_own_rule() -> None:
    assert client.verify is verify is server_webhooks.verify
    assert client.WebhookVerificationError is WebhookVerificationError
    assert server_signing.sign is sign and server_signing.SIGNATURE_HEADER is SIGNATURE_HEADER
    assert SIGNATURE_HEADER == "X-Sautikit-Signature"


@given(body=st.binary(max_size=2048), skew=st.integers(-300, 300))
def test_every_body_the_server_signs_verifies(body: bytes, skew: int) -> None:
    client.verify(body, sign(SECRET, body, NOW), SECRET, now=NOW + skew)


def test_a_tampered_body_a_wrong_secret_and_a_stale_timestamp_are_refused() -> None:
    body = json.dumps({"CallId": "c1", "RecordingUrl": "http://127.0.0.1/r"}).encode()
    header = sign(SECRET, body, NOW)
    with pytest.raises(WebhookVerificationError, match="does not match"):
        client.verify(body.replace(b"c1", b"c2"), header, SECRET, now=NOW)
    with pytest.raises(WebhookVerificationError, match="does not match"):
        client.verify(body, header, "whsec_other", now=NOW)
    with pytest.raises(WebhookVerificationError, match="old"):
        client.verify(body, header, SECRET, now=NOW + 301)
    with pytest.raises(WebhookVerificationError, match="missing"):
        client.verify(body, None, SECRET, now=NOW)
