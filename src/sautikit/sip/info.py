"""DTMF in SIP INFO requests: what older phones and some carriers send instead of RFC 4733.

Two bodies are in use (neither an RFC, both everywhere): ``application/dtmf-relay``
(Cisco's, ``Signal=5`` and ``Duration=160`` lines) and ``application/dtmf`` (the digit
alone). :func:`info_digit` reads either; the user agent answers the INFO 200 and hands the
digit to the call's ``on_dtmf``, so call logic sees it exactly as a digit from RTP.
"""

from __future__ import annotations

from sautikit.sip.message import Request

__all__ = ["DTMF_CONTENT_TYPES", "InfoDtmfError", "info_digit"]

DTMF_RELAY = "application/dtmf-relay"
DTMF = "application/dtmf"
DTMF_CONTENT_TYPES = frozenset({DTMF_RELAY, DTMF})

#: RFC 4733 event numbers 10-15 as the keys they stand for.
_EVENT_KEYS = {10: "*", 11: "#", 12: "A", 13: "B", 14: "C", 15: "D"}
_KEYS = frozenset("0123456789*#ABCD")


class InfoDtmfError(ValueError):
    """A DTMF INFO whose body names no key we know."""


def _key(text: str) -> str:
    value = text.strip().upper()
    if value.isdigit() and int(value) in _EVENT_KEYS:
        return _EVENT_KEYS[int(value)]
    if len(value) == 1 and value in _KEYS:
        return value
    raise InfoDtmfError(f"no DTMF key {text.strip()[:20]!r}")


def content_type_of(request: Request) -> str:
    return (request.content_type or "").split(";", 1)[0].strip().lower()


def info_digit(request: Request) -> str | None:
    """The key an INFO carries; None for an INFO that is not DTMF (a keep-alive, another
    package). Raises :class:`InfoDtmfError` for an unreadable DTMF body."""
    content_type = content_type_of(request)
    if content_type not in DTMF_CONTENT_TYPES:
        return None
    text = request.body.decode("utf-8", "replace")
    if content_type == DTMF:
        return _key(text)
    for line in text.splitlines():
        name, _, value = line.partition("=")
        if name.strip().lower() == "signal":
            return _key(value)
    raise InfoDtmfError("a dtmf-relay body without Signal=")
