"""The one exception the SIP codecs raise for bad input.

Every parser in :mod:`sautikit.sip.uri` and :mod:`sautikit.sip.message` answers malformed,
truncated or oversized input with :class:`SipParseError` and nothing else, so a transport
can catch exactly this type, answer 400 where a response is possible (RFC 3261 §21.4.1)
and otherwise drop the datagram.
"""

from __future__ import annotations

__all__ = ["SipParseError"]


class SipParseError(ValueError):
    """Input is not a well-formed SIP message, header value or URI.

    ``str(error)`` is a readable, single-line explanation that is safe to log and short
    enough to use as the reason phrase of a 400 response.
    """
