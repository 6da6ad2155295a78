"""``SautikitRoute``: one database transaction per request, and Idempotency-Key on POST.

Every router uses this route class, so the SPEC §1 conventions are written once:

* The handler runs inside one transaction, committed only when it answers below 500.
  A raised error or a 5xx rolls everything back: no half-applied change.
* A POST with ``Idempotency-Key`` first claims the key by inserting its record in that same
  transaction, then stores the answer in it before the commit. The change and its record
  commit together, so a retry either replays the answer (same body, for 24 h) or, after a
  crash, finds nothing and runs afresh; it never acts twice. A concurrent twin blocks on the
  key's unique index until the first commits, then replays its answer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any, TypeVar

from fastapi import Request, Response
from fastapi.routing import APIRoute
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from sautikit.api.auth import authenticate
from sautikit.api.deps import api_context
from sautikit.api.errors import ApiError
from sautikit.db.models import IdempotencyRecord
from sautikit.db.types import utcnow

__all__ = ["IDEMPOTENCY_HEADER", "SautikitRoute", "refused_when_overloaded"]

Handler = Callable[[Request], Coroutine[Any, Any, Response]]

IDEMPOTENCY_HEADER = "Idempotency-Key"
_MAX_KEY_LENGTH = 255


class _RollBack(Exception):
    """Leave the transaction without committing, yet still answer with ``response``."""

    def __init__(self, response: Response) -> None:
        self.response = response


class _KeyTaken(Exception):
    pass


_SCREENED = "_sautikit_refused_when_overloaded"

E = TypeVar("E", bound=Callable[..., Any])


def refused_when_overloaded(endpoint: E) -> E:
    """Mark an endpoint that starts new work (``POST /v1/calls``): while the process is
    overloaded (``app.state.overload``, :mod:`sautikit.overload`) it answers 503 with
    ``Retry-After`` before authentication or any database work."""
    setattr(endpoint, _SCREENED, True)
    return endpoint


def _refuse_when_overloaded(request: Request) -> None:
    controller = getattr(request.app.state, "overload", None)
    refusal = controller.check() if controller is not None else None
    if refusal is not None:
        raise ApiError(
            503,
            "service.overloaded",
            f"this server is at capacity; retry after {refusal.retry_after} s",
            headers={"Retry-After": str(refusal.retry_after)},
        )


class SautikitRoute(APIRoute):
    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()
        screened = getattr(self.endpoint, _SCREENED, False)

        async def transactional_handler(request: Request) -> Response:
            if screened:
                _refuse_when_overloaded(request)
            claim = await _Claim.from_request(request) if request.method == "POST" else None
            try:
                return await _run_in_transaction(request, handler, claim)
            except _RollBack as rollback:
                return rollback.response
            except _KeyTaken:
                assert claim is not None
                return await claim.replay_committed_twin(request)

        return transactional_handler


async def _run_in_transaction(request: Request, handler: Handler, claim: _Claim | None) -> Response:
    async with api_context(request).database.transaction() as session:
        request.state.db = session
        record = await claim.take(session) if claim else None
        if isinstance(record, Response):
            return record
        response = await handler(request)
        if response.status_code >= 500:
            raise _RollBack(response)
        if record is not None:
            record.status_code = response.status_code
            record.response_body = bytes(response.body).decode()
        return response


class _Claim:
    """An Idempotency-Key on one POST: its workspace, key and request fingerprint."""

    def __init__(
        self, workspace_id: str, key: str, path: str, request_hash: str, ttl: timedelta
    ) -> None:
        self.workspace_id = workspace_id
        self.path = path
        self.key = key
        self.request_hash = request_hash
        self.ttl = ttl

    @classmethod
    async def from_request(cls, request: Request) -> _Claim | None:
        key = request.headers.get(IDEMPOTENCY_HEADER)
        if key is None:
            return None
        if not key or len(key) > _MAX_KEY_LENGTH or not key.isprintable():
            raise ApiError(
                400,
                "validation.invalid_field",
                f"{IDEMPOTENCY_HEADER} must be 1–{_MAX_KEY_LENGTH} printable characters",
                field=IDEMPOTENCY_HEADER,
            )
        principal = await authenticate(request)
        digest = hashlib.sha256()
        for part in (request.method.encode(), request.url.path.encode(), await request.body()):
            digest.update(len(part).to_bytes(8, "big") + part)
        ttl = timedelta(seconds=api_context(request).settings.idempotency_ttl_seconds)
        return cls(principal.workspace_id, key, request.url.path, digest.hexdigest(), ttl)

    async def _find(self, session: AsyncSession) -> IdempotencyRecord | None:
        found: IdempotencyRecord | None = await session.scalar(
            select(IdempotencyRecord).where(
                IdempotencyRecord.workspace_id == self.workspace_id,
                IdempotencyRecord.key == self.key,
            )
        )
        return found

    async def take(self, session: AsyncSession) -> IdempotencyRecord | Response:
        """Claim the key in ``session``, or answer with what an earlier request stored."""
        now = utcnow()
        existing = await self._find(session)
        if existing is not None and existing.expires_at > now:
            return self._replay(existing)
        if existing is not None:
            await session.delete(existing)
            await session.flush()
        record = IdempotencyRecord(
            workspace_id=self.workspace_id,
            key=self.key,
            method="POST",
            path=self.path,
            request_hash=self.request_hash,
            status_code=0,
            response_body="",
            expires_at=now + self.ttl,
        )
        session.add(record)
        try:
            await session.flush()
        except IntegrityError:
            raise _KeyTaken from None
        return record

    async def replay_committed_twin(self, request: Request) -> Response:
        async with api_context(request).database.transaction() as session:
            existing = await self._find(session)
        if existing is None:  # the twin rolled back: tell the client to try again
            raise ApiError(
                409,
                "idempotency.in_progress",
                f"a request with this {IDEMPOTENCY_HEADER} was being processed; retry",
                headers={"Retry-After": "1"},
            )
        return self._replay(existing)

    def _replay(self, record: IdempotencyRecord) -> Response:
        if record.request_hash != self.request_hash:
            raise ApiError(
                409,
                "idempotency.conflict",
                f"this {IDEMPOTENCY_HEADER} was used with a different request; use a new key",
            )
        return Response(
            content=record.response_body,
            status_code=record.status_code,
            media_type="application/json",
            headers={"Idempotent-Replayed": "true"},
        )
