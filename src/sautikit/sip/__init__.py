"""Sautikit's SIP stack: messages, transports, transactions, dialogs, digest auth, SDP.

The layers, bottom up (each its own module, each naming the RFC sections it follows):
:mod:`~sautikit.sip.message` and :mod:`~sautikit.sip.uri` (RFC 3261 codecs),
:mod:`~sautikit.sip.transport` (UDP/TCP, RFC 3581), :mod:`~sautikit.sip.transaction`
(§17 with RFC 6026), :mod:`~sautikit.sip.dialog` (§12) and
:mod:`~sautikit.sip.useragent` (the UA core a PBX drives) with its parts
:mod:`~sautikit.sip.session` (the calls), :mod:`~sautikit.sip.server_auth`,
:mod:`~sautikit.sip.client_auth` and :mod:`~sautikit.sip.registrar_service`, beside the pure
:mod:`~sautikit.sip.sdp`, :mod:`~sautikit.sip.digest` and :mod:`~sautikit.sip.registrar`.

What a PBX needs is re-exported here: start a :class:`UserAgent` with
:meth:`UserAgent.listen`, take :class:`IncomingCall` objects in ``on_incoming_call``,
place :class:`OutgoingCall` objects with :meth:`UserAgent.place_call`, and build the SDP
with :class:`SdpSession` or :func:`negotiate_answer`.
"""

import importlib
from typing import TYPE_CHECKING, Any

# The names load on first use (PEP 562), not with the package: importing one pure module
# such as ``sautikit.sip.digest`` (the settings check their digest algorithms with it)
# must not pull in the transaction layer, the metrics and the call model behind it, which
# would cost a CLI command a second.
if TYPE_CHECKING:
    from sautikit.sip.dialog import Dialog, DialogId, DialogState
    from sautikit.sip.digest import DigestAuthenticator, build_authorization, compute_ha1
    from sautikit.sip.errors import SipParseError
    from sautikit.sip.message import Request, Response
    from sautikit.sip.registrar import Binding, Registrar
    from sautikit.sip.sdp import (
        NegotiatedMedia,
        NoCommonCodec,
        SdpNegotiationError,
        SdpParseError,
        SdpSession,
        SessionDescription,
        build_offer,
        negotiate_answer,
        parse_answer,
        parse_sdp,
    )
    from sautikit.sip.session import (
        Call,
        CallEnd,
        CallError,
        CallFailed,
        CallState,
        EndReason,
        IncomingCall,
        OutgoingCall,
    )
    from sautikit.sip.transaction import TimerConfig
    from sautikit.sip.transport import Peer, SipTransportError, SipTransportLayer
    from sautikit.sip.uri import NameAddress, SipUri
    from sautikit.sip.useragent import UserAgent

_MODULE_OF: dict[str, str] = {
    "Dialog": "dialog",
    "DialogId": "dialog",
    "DialogState": "dialog",
    "DigestAuthenticator": "digest",
    "build_authorization": "digest",
    "compute_ha1": "digest",
    "SipParseError": "errors",
    "Request": "message",
    "Response": "message",
    "Binding": "registrar",
    "Registrar": "registrar",
    "NegotiatedMedia": "sdp",
    "NoCommonCodec": "sdp",
    "SdpNegotiationError": "sdp",
    "SdpParseError": "sdp",
    "SdpSession": "sdp",
    "SessionDescription": "sdp",
    "build_offer": "sdp",
    "negotiate_answer": "sdp",
    "parse_answer": "sdp",
    "parse_sdp": "sdp",
    "Call": "session",
    "CallEnd": "session",
    "CallError": "session",
    "CallFailed": "session",
    "CallState": "session",
    "EndReason": "session",
    "IncomingCall": "session",
    "OutgoingCall": "session",
    "TimerConfig": "transaction",
    "Peer": "transport",
    "SipTransportError": "transport",
    "SipTransportLayer": "transport",
    "NameAddress": "uri",
    "SipUri": "uri",
    "UserAgent": "useragent",
}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = [
    "Binding",
    "Call",
    "CallEnd",
    "CallError",
    "CallFailed",
    "CallState",
    "Dialog",
    "DialogId",
    "DialogState",
    "DigestAuthenticator",
    "EndReason",
    "IncomingCall",
    "NameAddress",
    "NegotiatedMedia",
    "NoCommonCodec",
    "OutgoingCall",
    "Peer",
    "Registrar",
    "Request",
    "Response",
    "SdpNegotiationError",
    "SdpParseError",
    "SdpSession",
    "SessionDescription",
    "SipParseError",
    "SipTransportError",
    "SipTransportLayer",
    "SipUri",
    "TimerConfig",
    "UserAgent",
    "build_authorization",
    "build_offer",
    "compute_ha1",
    "negotiate_answer",
    "parse_answer",
    "parse_sdp",
]
