"""Workspace bucket credentials encrypted at rest under the operator's key."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sautikit.crypto import CryptoError, decrypt_secret, encrypt_secret

OPERATOR_KEY = b"operator-secret-from-settings"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@given(plaintext=st.text(max_size=200), context=st.text(max_size=40))
def test_round_trip(plaintext: str, context: str) -> None:
    token = encrypt_secret(plaintext, OPERATOR_KEY, context=context)

    assert decrypt_secret(token, OPERATOR_KEY, context=context) == plaintext


def test_token_is_versioned_and_hides_the_secret() -> None:
    first = encrypt_secret(SECRET, OPERATOR_KEY)
    second = encrypt_secret(SECRET, OPERATOR_KEY)

    assert first.startswith("v1.") and second.startswith("v1.")
    assert first != second  # a fresh nonce each time: equal secrets do not look equal
    assert SECRET not in first
    assert SECRET.encode() not in base64.urlsafe_b64decode(first[3:] + "==")


@given(data=st.data())
def test_any_changed_byte_is_detected(data: st.DataObject) -> None:
    token = encrypt_secret(SECRET, OPERATOR_KEY)
    raw = bytearray(base64.urlsafe_b64decode(token[3:] + "=" * (-len(token[3:]) % 4)))
    position = data.draw(st.integers(0, len(raw) - 1))
    raw[position] ^= data.draw(st.integers(1, 255))
    tampered = "v1." + base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()

    with pytest.raises(CryptoError, match="altered"):
        decrypt_secret(tampered, OPERATOR_KEY)


def test_wrong_key_is_refused() -> None:
    token = encrypt_secret(SECRET, OPERATOR_KEY)

    with pytest.raises(CryptoError, match="key or context"):
        decrypt_secret(token, b"another operator's secret")


def test_a_token_moved_to_another_workspace_is_refused() -> None:
    token = encrypt_secret(SECRET, OPERATOR_KEY, context="ws_1")

    with pytest.raises(CryptoError):
        decrypt_secret(token, OPERATOR_KEY, context="ws_2")


@pytest.mark.parametrize(
    ("token", "complaint"),
    [
        ("", "not a v1"),
        ("v2.AAAA", "not a v1"),
        ("v1.", "too short"),
        ("v1.AAAA", "too short"),
        ("v1.AAAA*AAAA", "base64url"),
        ("v1.A", "base64url"),
    ],
)
def test_malformed_tokens_say_what_is_wrong(token: str, complaint: str) -> None:
    with pytest.raises(CryptoError, match=complaint):
        decrypt_secret(token, OPERATOR_KEY)


def test_extra_characters_are_not_ignored() -> None:
    token = encrypt_secret(SECRET, OPERATOR_KEY)

    with pytest.raises(CryptoError):
        decrypt_secret(token[:10] + "." + token[10:], OPERATOR_KEY)


def test_empty_key_is_refused() -> None:
    with pytest.raises(CryptoError, match="empty"):
        encrypt_secret(SECRET, b"")


@given(st.text(max_size=120))
def test_any_text_is_refused_with_crypto_error(text: str) -> None:
    with pytest.raises(CryptoError):
        decrypt_secret(text, OPERATOR_KEY)
