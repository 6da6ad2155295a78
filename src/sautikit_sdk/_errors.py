"""Exceptions for the API's error envelope (SPEC §1), one class per thing an app handles.

Every answer of 400 or above becomes a :class:`SautikitError` (or a subclass chosen by the
HTTP status) carrying the envelope's ``code``, ``message`` and ``request_id`` — quote the
request id when reporting a problem to the operator.
"""

from __future__ import annotations

from typing import Any

import httpx

__all__ = [
    "AuthenticationError",
    "ConflictError",
    "ConnectionFailedError",
    "InsufficientFundsError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitedError",
    "SautikitError",
    "ValidationError",
    "error_from_response",
]


class SautikitError(Exception):
    """An error answer of the API: HTTP ``status`` and the envelope's fields."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}" if code else message)
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.field = field


class ConnectionFailedError(SautikitError):
    """No answer from the server (connection refused, reset or timed out), after retries."""


class ValidationError(SautikitError):
    """400: the request is invalid; ``field`` names the offending field when one is."""


class AuthenticationError(SautikitError):
    """401: the API key is missing, unknown or revoked."""


class InsufficientFundsError(SautikitError):
    """402 ``wallet.insufficient_funds``: top the wallet up and try again."""


class PermissionDeniedError(SautikitError):
    """403: the key lacks a scope, or the destination or number is not the workspace's."""


class NotFoundError(SautikitError):
    """404, or 410 for a recording the retention policy removed."""


class ConflictError(SautikitError):
    """409: the object is in the wrong state, or an Idempotency-Key was reused differently."""


class RateLimitedError(SautikitError):
    """429: too many requests; ``retry_after`` is the seconds the server asks to wait."""

    def __init__(self, message: str, *, retry_after: float | None = None, **fields: Any) -> None:
        super().__init__(message, **fields)
        self.retry_after = retry_after


_BY_STATUS: dict[int, type[SautikitError]] = {
    400: ValidationError,
    401: AuthenticationError,
    402: InsufficientFundsError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    410: NotFoundError,
    422: ValidationError,
}


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        return None


def error_from_response(response: httpx.Response) -> SautikitError:
    """The exception for an error answer, whether or not it carries the envelope."""
    request_id = response.headers.get("X-Request-Id")
    try:
        detail = response.json()["error"]
        code, message = detail["code"], detail["message"]
        field, own_id = detail.get("field"), detail.get("request_id")
        if not all(isinstance(value, str) for value in (code, message)) or not all(
            value is None or isinstance(value, str) for value in (field, own_id)
        ):
            raise TypeError("not the envelope's types")
        request_id = own_id or request_id
    except (ValueError, KeyError, TypeError):  # not the envelope: a proxy's page, say
        code, message, field = None, response.text[:200] or response.reason_phrase, None
    fields: dict[str, Any] = {
        "status": response.status_code,
        "code": code,
        "request_id": request_id,
        "field": field,
    }
    if response.status_code == 429:
        return RateLimitedError(message, retry_after=_retry_after(response), **fields)
    return _BY_STATUS.get(response.status_code, SautikitError)(message, **fields)
