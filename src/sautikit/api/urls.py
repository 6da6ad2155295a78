"""URLs the API stores for later delivery: refused at once when they can never be delivered.

SPEC §8: outbound HTTP (callbacks, events, play URLs) never reaches loopback, link-local or
private addresses unless the operator allows it (``SAUTIKIT_ALLOW_PRIVATE_HTTP``). A URL
whose host is such an address written as a literal (``http://10.0.0.5/``,
``http://[::1]/``) or ``localhost`` would be refused at every attempt, so the API refuses
it when it is given — a 400 naming the field — rather than accept it and fail a day of
retries later. A host *name* is resolved only when it is used (its address may change), so
it is checked then, by :func:`sautikit.net.outbound_client`. The scheme is checked by the
request models (``http`` or ``https``).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import Request
from pydantic import BaseModel

from sautikit.api.deps import api_context
from sautikit.api.errors import ApiError
from sautikit.net import is_public_address

__all__ = ["is_private_host", "refuse_undeliverable", "refuse_undeliverable_fields"]


def is_private_host(host: str) -> bool:
    """Whether ``host`` is, as written, an address outbound HTTP may not reach: a literal
    non-public IP, or ``localhost``. A host name is not resolved here."""
    host = host.strip("[]").lower()
    try:
        return not is_public_address(host)
    except ValueError:
        return host == "localhost" or host.endswith(".localhost")


def refuse_undeliverable(url: object, field: str, *, allow_private: bool) -> None:
    """Raise the 400 ``validation.invalid_field`` for a URL that can never be delivered to
    (see the module docstring); ``None`` passes."""
    if url is None or allow_private:
        return
    host = urlsplit(str(url)).hostname or ""
    if is_private_host(host):
        raise ApiError(
            400,
            "validation.invalid_field",
            f"{field}: {host} is a private address, which Sautikit may not reach",
            field=field,
        )


def refuse_undeliverable_fields(request: Request, body: BaseModel, *fields: str) -> None:
    """:func:`refuse_undeliverable` for each URL field of ``body`` named, under the
    operator's ``allow_private_http``."""
    allow_private = api_context(request).settings.allow_private_http
    for field in fields:
        refuse_undeliverable(getattr(body, field), field, allow_private=allow_private)
