"""Signatures on everything Sautikit sends to an app: events and voice callbacks (SPEC §7).

``X-Sautikit-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, raw_body + "." + t)>``.
Receivers recompute it over the raw body, compare in constant time and refuse timestamps
older than five minutes (see ``sautikit_sdk.webhooks.verify``). The server signs with
:func:`sign`; apps verify with the same :func:`compute_signature`.
"""

from __future__ import annotations

import hashlib
import hmac
import time

__all__ = ["EVENT_HEADER", "EVENT_ID_HEADER", "SIGNATURE_HEADER", "compute_signature", "sign"]

SIGNATURE_HEADER = "X-Sautikit-Signature"
EVENT_HEADER = "X-Sautikit-Event"
EVENT_ID_HEADER = "X-Sautikit-Event-Id"


def compute_signature(secret: str, body: bytes, timestamp: int) -> str:
    """The hex ``v1`` value for ``body`` sent at ``timestamp``."""
    return hmac.new(
        secret.encode(), body + b"." + str(timestamp).encode(), hashlib.sha256
    ).hexdigest()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The whole ``X-Sautikit-Signature`` header value."""
    moment = int(time.time()) if timestamp is None else timestamp
    return f"t={moment},v1={compute_signature(secret, body, moment)}"
