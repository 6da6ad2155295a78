"""What both clients share below the resources: the request description and retry policy.

A resource method describes its request as an :class:`ApiRequest` (method, path, query,
body, Idempotency-Key); the sync and async transports only execute it. Everything that is
a decision — which requests may be retried, how long to wait, which key a POST carries,
how query values are spelled — lives here, once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Generic, TypeVar
from urllib.parse import quote

__all__ = [
    "DEFAULT_BASE_URL",
    "NOT_GIVEN",
    "RETRY_STATUSES",
    "ApiRequest",
    "NotGiven",
    "Page",
    "RetryPolicy",
    "body",
    "patch",
    "path",
    "query",
]

DEFAULT_BASE_URL: Final = "http://127.0.0.1:8080"

# A 5xx rolls the server's transaction back (see sautikit.api.routing), so repeating a
# request that is safe to repeat cannot apply it twice.
RETRY_STATUSES: Final = frozenset({500, 502, 503, 504})
_IDEMPOTENT_METHODS: Final = frozenset({"GET", "PATCH", "DELETE"})

M = TypeVar("M")


class NotGiven:
    """The default of an optional field a PATCH leaves alone (``None`` clears it)."""

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN: Final = NotGiven()


@dataclass(frozen=True)
class ApiRequest:
    method: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    json: Any = None
    idempotency_key: str | None = None

    @classmethod
    def post(cls, path: str, json: Any = None, *, idempotency_key: str | None) -> ApiRequest:
        """A POST with ``idempotency_key``, or a fresh one for this logical call, so the
        transport's retries of it can never act twice."""
        return cls("POST", path, json=json, idempotency_key=idempotency_key or str(uuid.uuid4()))

    @property
    def retryable(self) -> bool:
        return self.method in _IDEMPOTENT_METHODS or self.idempotency_key is not None

    def headers(self) -> dict[str, str]:
        return {} if self.idempotency_key is None else {"Idempotency-Key": self.idempotency_key}


@dataclass(frozen=True)
class RetryPolicy:
    """Up to ``max_retries`` repeats of a retryable request after a connection error or a
    5xx, waiting ``backoff`` seconds, doubled each time (or ``Retry-After`` on a 503)."""

    max_retries: int = 2
    backoff: float = 0.5

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        if retry_after is not None and retry_after.isdigit():
            return min(float(retry_after), 30.0)
        return self.backoff * 2.0**attempt


@dataclass(frozen=True)
class Page(Generic[M]):
    """One page of a list: its items and the cursor of the next page (None on the last)."""

    data: list[M]
    next_cursor: str | None


def path(template: str, *ids: str) -> str:
    """``template`` with each ``{}`` replaced by one id, percent-encoded whole."""
    return template.format(*(quote(str(item), safe="") for item in ids))


def _spell(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def query(**values: object) -> dict[str, str]:
    """Query parameters, dropping those not given; ``from_`` is sent as ``from``."""
    return {
        name.rstrip("_"): _spell(value)
        for name, value in values.items()
        if value is not None and value is not NOT_GIVEN
    }


def body(**values: object) -> dict[str, object]:
    """A POST body of the fields given (``None`` means "server's default": left out);
    ``from_`` is sent as ``from``."""
    return {name.rstrip("_"): value for name, value in values.items() if value is not None}


def patch(**values: object) -> dict[str, object]:
    """A PATCH body: only the fields given, where ``None`` is sent (it clears a value)."""
    return {name: value for name, value in values.items() if value is not NOT_GIVEN}
