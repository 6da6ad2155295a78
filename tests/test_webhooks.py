"""``sautikit.webhooks.verify``: what an app runs on every request it receives from Sautikit."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sautikit.events.signing import compute_signature, sign
from sautikit.webhooks import WebhookVerificationError, verify

SECRET = "whsec_test"
BODY = b'{"kind":"call.completed","event_id":"0193","data":{}}'
NOW = 1_790_000_000


def test_a_fresh_signature_is_accepted() -> None:
    verify(BODY, sign(SECRET, BODY, NOW), SECRET, now=NOW)
    verify(BODY, sign(SECRET, BODY, NOW - 299), SECRET, now=NOW)
    verify(BODY, sign(SECRET, BODY, NOW + 299), SECRET, now=NOW)


def test_the_current_time_is_the_default() -> None:
    verify(BODY, sign(SECRET, BODY), SECRET)


def test_a_tampered_body_is_refused() -> None:
    header = sign(SECRET, BODY, NOW)
    with pytest.raises(WebhookVerificationError, match="does not match"):
        verify(BODY.replace(b"completed", b"failed"), header, SECRET, now=NOW)


def test_a_tampered_signature_is_refused() -> None:
    header = sign(SECRET, BODY, NOW)
    flipped = header[:-1] + ("0" if header[-1] != "0" else "1")
    with pytest.raises(WebhookVerificationError, match="does not match"):
        verify(BODY, flipped, SECRET, now=NOW)


def test_another_secret_is_refused() -> None:
    with pytest.raises(WebhookVerificationError, match="does not match"):
        verify(BODY, sign("whsec_other", BODY, NOW), SECRET, now=NOW)


def test_a_moved_timestamp_is_refused() -> None:
    # The timestamp is signed too: changing it to look fresh breaks the signature.
    signature = compute_signature(SECRET, BODY, NOW - 3600)
    with pytest.raises(WebhookVerificationError, match="does not match"):
        verify(BODY, f"t={NOW},v1={signature}", SECRET, now=NOW)


def test_an_old_timestamp_is_refused() -> None:
    with pytest.raises(WebhookVerificationError, match="301 s old"):
        verify(BODY, sign(SECRET, BODY, NOW - 301), SECRET, now=NOW)


def test_a_future_timestamp_is_refused() -> None:
    with pytest.raises(WebhookVerificationError, match="in the future"):
        verify(BODY, sign(SECRET, BODY, NOW + 301), SECRET, now=NOW)


def test_the_tolerance_can_be_chosen() -> None:
    header = sign(SECRET, BODY, NOW - 60)
    verify(BODY, header, SECRET, now=NOW, tolerance=60)
    with pytest.raises(WebhookVerificationError, match="old"):
        verify(BODY, header, SECRET, now=NOW, tolerance=59)


def test_any_of_several_signatures_may_match_while_a_secret_rotates() -> None:
    old = compute_signature("whsec_old", BODY, NOW)
    new = compute_signature(SECRET, BODY, NOW)
    verify(BODY, f"t={NOW},v1={old},v1={new}", SECRET, now=NOW)
    verify(BODY, f"t={NOW}, v1={new}, v1={old}", "whsec_old", now=NOW)


def test_unknown_schemes_are_skipped() -> None:
    header = f"{sign(SECRET, BODY, NOW)},v2=abcdef"
    verify(BODY, header, SECRET, now=NOW)


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing"),
        ("", "missing"),
        ("   ", "missing"),
        ("garbage", "malformed"),
        ("t=,v1=ab", "malformed"),
        ("v1=abcdef", "exactly one t="),
        (f"t={NOW},t={NOW},v1=ab", "exactly one t="),
        ("t=soon,v1=ab", "exactly one t="),
        ("t=-5,v1=ab", "exactly one t="),
        (f"t={NOW}", "no v1"),
        (f"t={NOW},v2=ab", "no v1"),
    ],
)
def test_a_missing_or_malformed_header_is_refused_with_its_reason(
    header: str | None, reason: str
) -> None:
    with pytest.raises(WebhookVerificationError, match=reason):
        verify(BODY, header, SECRET, now=NOW)


def test_it_is_a_value_error_for_callers_that_catch_those() -> None:
    with pytest.raises(ValueError):
        verify(BODY, "nonsense", SECRET, now=NOW)


def test_an_empty_secret_verifies_nothing() -> None:
    with pytest.raises(WebhookVerificationError, match="no secret"):
        verify(BODY, sign("", BODY, NOW), "", now=NOW)


@given(header=st.text(max_size=200), body=st.binary(max_size=100))
def test_arbitrary_headers_are_refused_with_the_documented_error(header: str, body: bytes) -> None:
    with pytest.raises(WebhookVerificationError):
        verify(body, header, SECRET, now=NOW)


@given(body=st.binary(max_size=2000), moment=st.integers(min_value=0, max_value=2**36))
def test_whatever_is_signed_verifies(body: bytes, moment: int) -> None:
    verify(body, sign(SECRET, body, moment), SECRET, now=moment)
