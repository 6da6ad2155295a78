"""Blind transfer by REFER (RFC 3515), the transferee's side: a phone hands its call on.

A call-centre agent's phone, in a call with a customer, presses "transfer" and dials
another number: it sends REFER with ``Refer-To: <sip:+254700000002@…>`` in the dialog.
The user agent answers 202 Accepted (the request is taken, not yet done), reports
progress as NOTIFYs in the same dialog (``Event: refer``, a ``message/sipfrag`` body:
``SIP/2.0 100 Trying``, then the new call's final status with
``Subscription-State: terminated``), and the owner's ``on_refer`` does the transfer:
rings the target and connects the other party to it (:mod:`sautikit.voice.live`).

* :func:`refer_target` reads the one Refer-To (a REFER with none, two, or a ``Replaces``
  header — an attended transfer, RFC 3891 — is refused 400 / 501);
* :func:`sipfrag` is a NOTIFY body; :func:`notify_headers` its Event and
  Subscription-State (RFC 3515 §2.4.5, RFC 6665 §4.1.3).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sautikit.sip.errors import SipParseError
from sautikit.sip.message import Request, default_reason
from sautikit.sip.uri import NameAddress, SipUri

__all__ = [
    "REFER_EVENT",
    "SIPFRAG_CONTENT_TYPE",
    "AttendedTransfer",
    "ReferHandler",
    "notify_headers",
    "refer_target",
    "sipfrag",
]

REFER_EVENT = "refer"
SIPFRAG_CONTENT_TYPE = "message/sipfrag;version=2.0"

#: The owner's transfer: given the Refer-To URI, answer the final SIP status of the call
#: to it (200 when it was answered and the other party connected; 486, 480, 603…).
ReferHandler = Callable[[SipUri], Awaitable[int]]


class AttendedTransfer(ValueError):
    """A Refer-To with Replaces (RFC 3891): an attended transfer, which is not supported."""


def refer_target(request: Request) -> SipUri:
    """The URI of the REFER's one Refer-To (compact ``r``). Raises ``ValueError`` when it
    has none, several, or an unreadable one, :class:`AttendedTransfer` for Replaces."""
    values = request.headers.get_all("Refer-To")
    if len(values) != 1:
        raise ValueError(f"a REFER needs one Refer-To, not {len(values)}")
    try:
        uri = NameAddress.parse(values[0]).uri
    except SipParseError as error:
        raise ValueError(f"unreadable Refer-To: {error}") from error
    if any(name.lower() == "replaces" for name, _ in uri.headers):
        raise AttendedTransfer("attended transfer (Replaces) is not supported")
    if uri.scheme not in ("sip", "sips", "tel"):
        raise ValueError(f"cannot transfer to a {uri.scheme}: URI")
    return uri


def sipfrag(status: int, reason: str | None = None) -> bytes:
    """``SIP/2.0 200 OK``: the status line of the new call, as a NOTIFY body."""
    return f"SIP/2.0 {status} {reason or default_reason(status)}\r\n".encode()


def notify_headers(final: bool, expires: int = 60) -> list[tuple[str, str]]:
    """Event and Subscription-State of a refer NOTIFY: active until the final status."""
    state = "terminated;reason=noresource" if final else f"active;expires={expires}"
    return [("Event", REFER_EVENT), ("Subscription-State", state)]
