"""Secrets at rest: a workspace's own bucket credentials, encrypted with the operator's key.

A token is ``v1.`` followed by unpadded base64url of a 12-byte random nonce and the
AES-256-GCM ciphertext with its 16-byte tag. The AES key is HKDF-SHA256 of the operator's
secret (``Settings.signing_key()``) with a label of its own, so it differs from the key
that signs URLs. The version and an optional ``context`` (say, the workspace id) are
authenticated with the ciphertext: a token copied to another workspace's row, or altered
in any byte, fails to decrypt instead of yielding someone else's secret.
"""

from __future__ import annotations

import base64
import binascii
import os
import re

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["CryptoError", "decrypt_secret", "derive_key", "encrypt_secret"]

_VERSION = "v1"
_PURPOSE = b"sautikit/stored-credentials/v1"
_NONCE_BYTES = 12
_TAG_BYTES = 16
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")


class CryptoError(Exception):
    """A token cannot be decrypted: not ours, altered, or made with another key or context."""


def derive_key(secret: bytes, purpose: str) -> bytes:
    """A 32-byte key for one ``purpose``, HKDF-SHA256 of the operator's secret: every node
    with the same secret derives the same key, and no purpose's key reveals another's."""
    if not secret:
        raise CryptoError("the secret is empty")
    info = f"sautikit/{purpose}".encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret)


def _cipher(key: bytes) -> AESGCM:
    if not key:
        raise CryptoError("the encryption key is empty")
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_PURPOSE).derive(key)
    return AESGCM(derived)


def _associated_data(context: str) -> bytes:
    return f"{_VERSION}\x00{context}".encode()


def encrypt_secret(plaintext: str, key: bytes, *, context: str = "") -> str:
    """Encrypt ``plaintext`` under the operator's ``key``; decrypt with the same ``context``."""
    nonce = os.urandom(_NONCE_BYTES)
    sealed = _cipher(key).encrypt(nonce, plaintext.encode(), _associated_data(context))
    return f"{_VERSION}.{base64.urlsafe_b64encode(nonce + sealed).rstrip(b'=').decode()}"


def decrypt_secret(token: str, key: bytes, *, context: str = "") -> str:
    """The plaintext of ``token``; ``CryptoError`` if altered or the key or context differ."""
    version, dot, body = token.partition(".")
    if not dot or version != _VERSION:
        raise CryptoError(f"not a {_VERSION} secret token")
    # The decoder skips foreign characters; refusing them keeps one token, one spelling.
    if not _BASE64URL.fullmatch(body):
        raise CryptoError("the secret token is not valid base64url")
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except binascii.Error:
        raise CryptoError("the secret token is not valid base64url") from None
    if len(raw) < _NONCE_BYTES + _TAG_BYTES:
        raise CryptoError("the secret token is too short")
    nonce, sealed = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
    try:
        plaintext = _cipher(key).decrypt(nonce, sealed, _associated_data(context))
    except InvalidTag:
        raise CryptoError("the secret token was altered, or the key or context is wrong") from None
    return plaintext.decode()
