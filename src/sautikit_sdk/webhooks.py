"""Checking that a request really comes from Sautikit: for apps that receive its webhooks.

Every event delivery and voice callback carries
``X-Sautikit-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, raw_body + "." + t)>``.
Verify it over the raw body, before parsing it::

    from sautikit_sdk.webhooks import WebhookVerificationError, verify

    try:
        verify(await request.body(), request.headers.get("X-Sautikit-Signature"), SECRET)
    except WebhookVerificationError:
        return Response(status_code=400)

The header may carry several ``v1=`` values (one per secret while a secret is rotated);
one match is enough. Timestamps further than ``tolerance`` seconds from now, either way,
are refused so a captured request cannot be replayed later.

A voice callback's fields (SPEC §3) come as a form of strings by default, as JSON when the
number or workspace chose ``callback_encoding: json``, or in the query string of a GET;
:func:`callback_fields` reads any of them into one ``dict[str, str]``::

    fields = callback_fields(await request.body(), request.headers.get("content-type"))
"""

from __future__ import annotations

import hmac
import json
import re
import time
from urllib.parse import parse_qsl

from sautikit_sdk.signing import SIGNATURE_HEADER, compute_signature

__all__ = [
    "DEFAULT_TOLERANCE_SECONDS",
    "SIGNATURE_HEADER",
    "WebhookVerificationError",
    "callback_fields",
    "verify",
]

DEFAULT_TOLERANCE_SECONDS = 300

_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")


class WebhookVerificationError(ValueError):
    """The request's signature is missing, malformed, stale or wrong; the message says which."""


def _parse(header: str) -> tuple[int, list[str]]:
    timestamps: list[str] = []
    signatures: list[str] = []
    for item in header.split(","):
        name, equals, value = item.strip().partition("=")
        if not equals or not name or not value:
            raise WebhookVerificationError(
                f"malformed {SIGNATURE_HEADER} header: expected t=<seconds>,v1=<hex>"
            )
        if name == "t":
            timestamps.append(value)
        elif name == "v1":
            signatures.append(value)
        # Other schemes (a future v2) are skipped so that old receivers keep working.
    if len(timestamps) != 1 or not _UNIX_SECONDS.fullmatch(timestamps[0]):
        raise WebhookVerificationError(
            f"malformed {SIGNATURE_HEADER} header: it needs exactly one t=<unix seconds>"
        )
    if not signatures:
        raise WebhookVerificationError(f"{SIGNATURE_HEADER} header carries no v1 signature")
    return int(timestamps[0]), signatures


def verify(
    payload: bytes,
    header: str | None,
    secret: str,
    *,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> None:
    """Return quietly when ``header`` signs ``payload`` with ``secret`` at a time within
    ``tolerance`` seconds of ``now`` (default: the current time); otherwise raise
    ``WebhookVerificationError``. Signatures are compared in constant time."""
    if not header or not header.strip():
        raise WebhookVerificationError(f"the {SIGNATURE_HEADER} header is missing")
    if not secret:
        raise WebhookVerificationError("no secret to verify the signature with")
    timestamp, signatures = _parse(header)
    moment = time.time() if now is None else now
    if moment - timestamp > tolerance:
        raise WebhookVerificationError(
            f"the signature's timestamp is {int(moment - timestamp)} s old, "
            f"more than the {tolerance} s allowed"
        )
    if timestamp - moment > tolerance:
        raise WebhookVerificationError(
            f"the signature's timestamp is {int(timestamp - moment)} s in the future, "
            f"more than the {tolerance} s allowed"
        )
    expected = compute_signature(secret, payload, timestamp).encode()
    # Every value is compared (no early exit) so timing tells nothing about which matched.
    matched = False
    for signature in signatures:
        matched |= hmac.compare_digest(expected, signature.encode("ascii", "replace"))
    if not matched:
        raise WebhookVerificationError("the signature does not match the payload and secret")


def callback_fields(body: bytes, content_type: str | None, query: str = "") -> dict[str, str]:
    """The fields of a voice callback, every value a string whichever encoding carried
    them: ``body`` as a form (``application/x-www-form-urlencoded``, the default) or a JSON
    object (``application/json``), and for a GET (no body) the ``query`` string. Raises
    ``ValueError`` for a body that is neither."""
    fields = dict(parse_qsl(query, keep_blank_values=True))
    media_type = (content_type or "").split(";")[0].strip().lower()
    if not body:
        return fields
    if media_type == "application/json":
        parsed = json.loads(body)
        if not isinstance(parsed, dict):
            raise ValueError("a JSON callback body must be an object")
        for name, value in parsed.items():
            fields[str(name)] = value if isinstance(value, str) else json.dumps(value)
        return fields
    if media_type in ("", "application/x-www-form-urlencoded"):
        text = body.decode("utf-8")
        fields.update(parse_qsl(text, keep_blank_values=True, strict_parsing=True))
        return fields
    raise ValueError(f"a callback body of type {media_type} is neither a form nor JSON")
