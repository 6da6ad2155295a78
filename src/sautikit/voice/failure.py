"""Why a SIP call ended, as the call's hangup cause and, for a failure, its ``error``.

SPEC §4 gives every ended call a ``hangup_cause``; a call that *failed* also carries an
``error`` (``{"code", "message"}`` and, where a SIP answer said so, ``sip_status``) so an
app developer reads what went wrong without the server's logs:

* ``call.trunk_unreachable`` — nothing answered the INVITE (the transaction's own 408 after
  64·T1) or it could not be sent (its own 503: a refused connection, ICMP unreachable). The
  call is ``failed`` with ``network_error``, never ``no_answer``: nobody was rung.
* ``call.trunk_rejected`` — the far end answered a final failure that is not busy, no
  answer or a rejection (404, 484, 500, 503…): ``failed``/``network_error`` with its status.
* ``call.rejected`` — the callee declined (403, 603): ``failed``/``rejected``.
* ``call.on_net_rejected`` / ``call.on_net_unreachable`` — the same two failures of an
  on-net leg (:mod:`sautikit.calls.routing`: a number this deployment holds, sent to the
  platform's own listener): the message names the platform number and its answer (a
  suspended number's 404, a 402 when its workspace cannot pay), never a trunk or the
  loopback address it was sent to.

Busy (486, 600) and a callee who did not pick up (480, 487, a far end's own 408) are
outcomes, not failures: they keep their status and carry no error.
"""

from __future__ import annotations

from typing import Any, Literal

from sautikit.sip import CallEnd, EndReason
from sautikit.sip.transaction import NO_RESPONSE_REASON, UNREACHABLE_REASON
from sautikit.voice.control import HangupCause

__all__ = [
    "CallErrorDetail",
    "CallHangup",
    "hangup_of",
    "insufficient_funds_error",
    "not_sent_error",
]

CallErrorDetail = dict[str, Any]
"""A call's ``error``: ``code`` and ``message``, with ``sip_status`` where one applies."""

CallHangup = tuple[HangupCause, CallErrorDetail | None]

_BUSY = frozenset({486, 600})
_NOT_PICKED_UP = frozenset({408, 480, 487})
_DECLINED = frozenset({403, 603})


def _error(code: str, message: str, status: int | None = None) -> CallErrorDetail:
    error: CallErrorDetail = {"code": code, "message": message}
    if status is not None:
        error["sip_status"] = status
    return error


def _failed(end: CallEnd, where: str, on_net: str | None) -> CallHangup:
    status, phrase = end.status, end.phrase
    if on_net is not None and status not in _BUSY | _NOT_PICKED_UP | _DECLINED:
        return "network_error", _on_net_failure(on_net, status, phrase)
    if status == 408 and phrase == NO_RESPONSE_REASON:
        return "network_error", _error(
            "call.trunk_unreachable",
            f"nothing answered the INVITE sent to {where}: no SIP response before the "
            "transaction timed out (is the trunk's host and port right, and is it up?)",
        )
    if status == 503 and phrase == UNREACHABLE_REASON:
        return "network_error", _error(
            "call.trunk_unreachable",
            f"the INVITE could not be delivered to {where} (connection refused or "
            "destination unreachable)",
        )
    if status in _BUSY:
        return "busy", None
    if status in _NOT_PICKED_UP:
        return "no_answer", None
    if status in _DECLINED:
        return "rejected", _error(
            "call.rejected", f"{where} declined the call: {status} {phrase}".rstrip(), status
        )
    if status is None:
        return "network_error", _error(
            "call.failed", f"the call to {where} failed before it was answered"
        )
    return "network_error", _error(
        "call.trunk_rejected", f"{where} refused the call: {status} {phrase}".rstrip(), status
    )


def _on_net_failure(number: str, status: int | None, phrase: str) -> CallErrorDetail:
    if status is None or (status, phrase) in (
        (408, NO_RESPONSE_REASON),
        (503, UNREACHABLE_REASON),
    ):
        return _error(
            "call.on_net_unreachable",
            f"the number {number} on this platform could not be reached: this "
            "deployment's own SIP listener did not answer the call",
        )
    return _error(
        "call.on_net_rejected",
        f"the number {number} on this platform answered {status} {phrase}".rstrip(),
        status,
    )


def hangup_of(
    end: CallEnd,
    direction: Literal["inbound", "outbound"],
    where: str = "the far end",
    *,
    on_net: str | None = None,
) -> CallHangup:
    """The hangup cause and error of a call that ended as ``end``; ``where`` names the
    far end in messages (e.g. ``udp:203.0.113.5:5060``). ``on_net`` is the called number
    of an on-net leg: its failures are about that number, not a trunk."""
    reason = end.reason
    if reason is EndReason.REMOTE_HANGUP:
        return ("caller_hangup" if direction == "inbound" else "callee_hangup"), None
    if reason is EndReason.REMOTE_CANCEL:
        return "caller_hangup", None
    if reason is EndReason.RING_TIMEOUT:
        return "no_answer", None
    if reason is EndReason.FAILED:
        return _failed(end, where, on_net)
    if reason is EndReason.ACK_TIMEOUT:
        return "network_error", _error(
            "call.ack_timeout", f"{where} never acknowledged the answer (no ACK): call ended"
        )
    if reason is EndReason.DIALOG_LOST:
        return "network_error", _error(
            "call.dialog_lost", f"{where} no longer knows the call (481 or no response)"
        )
    if reason is EndReason.SESSION_EXPIRED:
        return "network_error", _error(
            "call.session_expired",
            f"{where} stopped refreshing the session (RFC 4028 session timer): call ended",
        )
    return "normal_clearing", None


def not_sent_error(code: str, message: str) -> CallErrorDetail:
    """The error of a call that was never sent: ``call.no_route`` (no trunk carries the
    number), ``call.trunk_unreachable`` (its host cannot be resolved or reached) or
    ``call.invalid_destination``."""
    return _error(code, message)


def insufficient_funds_error() -> CallErrorDetail:
    return _error(
        "wallet.insufficient_funds",
        "the wallet could not pay for the call's next slice of time; top it up",
    )
