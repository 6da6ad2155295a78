"""Bearer API keys, scopes and the per-key rate limit (SPEC §1)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select

from sautikit.accounts import hash_api_key
from sautikit.api.deps import api_context
from sautikit.api.errors import ApiError
from sautikit.db.models import ApiKey

__all__ = ["Principal", "authenticate", "require_scopes"]


@dataclass(frozen=True)
class Principal:
    """Who is calling: one API key of one workspace."""

    key_id: str
    workspace_id: str
    scopes: frozenset[str]


# Declares the scheme in the OpenAPI document (every route that authenticates a key lists
# it, so generated clients send the key); the header is read and checked below, so that a
# bad one answers the one error envelope.
API_KEY_SCHEME = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    bearerFormat="sk_live_…",
    description="A workspace API key: `Authorization: Bearer sk_live_…`.",
)


async def authenticate(
    request: Request,
    _declared: HTTPAuthorizationCredentials | None = Depends(API_KEY_SCHEME),
) -> Principal:
    """Resolve the bearer key once per request and charge it one rate-limit token."""
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    header = request.headers.get("authorization", "")
    if not header:
        raise ApiError(401, "auth.missing_key", "send an API key: Authorization: Bearer sk_live_…")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise ApiError(401, "api_key.invalid", "the Authorization header must be 'Bearer <key>'")
    context = api_context(request)
    async with context.database.sessions() as session:
        key = await session.scalar(
            select(ApiKey).where(ApiKey.key_hash == hash_api_key(secret.strip()))
        )
    if key is None:
        raise ApiError(401, "api_key.invalid", "the API key is not valid")
    if key.revoked_at is not None:
        raise ApiError(401, "api_key.revoked", "the API key has been revoked")
    wait = await context.limiter.acquire(key.id)
    if wait:
        raise ApiError(
            429,
            "rate_limited",
            "too many requests for this API key; retry later",
            headers={"Retry-After": context.limiter.retry_after_header(wait)},
        )
    principal = Principal(key.id, key.workspace_id, frozenset(key.scopes))
    request.state.principal = principal
    return principal


def require_scopes(*scopes: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that authenticates and insists on every scope named."""

    async def dependency(principal: Principal = Depends(authenticate)) -> Principal:
        missing = [scope for scope in scopes if scope not in principal.scopes]
        if missing:
            raise ApiError(
                403, "api_key.scope_denied", f"this API key lacks the scope {', '.join(missing)}"
            )
        return principal

    return dependency
