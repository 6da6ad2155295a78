"""Option tags (RFC 3261 §19.2, §20.32, §20.37): what a message says it supports or requires.

``Supported: 100rel, timer`` (compact form ``k``) and ``Require: 100rel`` carry the
extensions a user agent knows (RFC 3262's ``100rel``, RFC 4028's ``timer``, RFC 3891's
``replaces``); a UAS refuses a Require it does not know with 420 and ``Unsupported``.
"""

from __future__ import annotations

from sautikit.sip.message import Request, Response

__all__ = ["OUR_OPTION_TAGS", "requires", "supported", "supports", "unsupported"]

#: The extensions Sautikit's user agent implements, as its Supported header names them.
OUR_OPTION_TAGS = ("100rel", "timer")


def _tags(message: Request | Response, *names: str) -> set[str]:
    found: set[str] = set()
    for name in names:
        for value in message.headers.get_all(name):
            found.update(tag.strip().lower() for tag in value.split(",") if tag.strip())
    return found


def requires(message: Request | Response) -> set[str]:
    """The option tags of the message's Require header(s)."""
    return _tags(message, "Require")


def supported(message: Request | Response) -> set[str]:
    """The option tags of its Supported header(s) (compact ``k`` is read as Supported)."""
    return _tags(message, "Supported")


def supports(message: Request | Response, tag: str) -> bool:
    """Whether the message lists option ``tag`` in Supported or Require."""
    return tag in supported(message) | requires(message)


def unsupported(request: Request) -> list[str]:
    """The tags ``request`` requires that we do not implement (answer 420 with them)."""
    return sorted(requires(request) - set(OUR_OPTION_TAGS))
