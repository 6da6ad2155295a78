"""HMAC-SHA256 signatures for the local store's download URLs.

A URL ``/v1/files/{key}?expires=E&signature=S`` (plus ``filename=F`` when a download name
was asked for) is valid while the clock is before ``E`` (Unix seconds) and ``S`` is the
HMAC of the key, ``E`` and ``F`` under a key derived from the operator's secret. Anyone
with the URL may download until it expires; nobody can make or stretch one without the
secret. The signature is checked before the expiry, so an unsigned URL learns nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

__all__ = ["BadSignature", "UrlExpired", "UrlSignatureError", "UrlSigner"]

# The operator's secret also signs other things; HMAC under this label gives URL signing a
# key of its own, so a signature made for one purpose never verifies for another.
_PURPOSE = b"sautikit/storage-url/v1"
# Ten digits carry Unix time to the year 2286; a longer "expires" is not one we made.
_MAX_EXPIRES_DIGITS = 10


class UrlSignatureError(Exception):
    """A download URL was refused."""


class BadSignature(UrlSignatureError):
    """The URL was not signed by this Sautikit, or was changed after signing."""


class UrlExpired(UrlSignatureError):
    """The URL was genuine but its lifetime is over."""


class UrlSigner:
    def __init__(self, secret: bytes) -> None:
        if not secret:
            raise ValueError("the URL signing secret is empty")
        self._key = hmac.new(secret, _PURPOSE, hashlib.sha256).digest()

    def sign(self, key: str, expires: int, filename: str | None = None) -> str:
        """The URL-safe signature of ``key`` valid until Unix time ``expires``."""
        # JSON keeps the fields apart whatever characters they hold.
        message = json.dumps([key, expires, filename]).encode()
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def verify(
        self,
        key: str,
        expires: str | None,
        signature: str | None,
        filename: str | None = None,
        *,
        now: float | None = None,
    ) -> None:
        """Accept the URL's fields as received, or raise ``BadSignature`` / ``UrlExpired``."""
        if (
            expires is None
            or signature is None
            or not (expires.isascii() and expires.isdigit())
            or len(expires) > _MAX_EXPIRES_DIGITS
            or not signature.isascii()
        ):
            raise BadSignature("the URL lacks a valid signature")
        expected = self.sign(key, int(expires), filename)
        if not hmac.compare_digest(expected, signature):
            raise BadSignature("the URL's signature does not match")
        if (time.time() if now is None else now) >= int(expires):
            raise UrlExpired("the URL has expired")
