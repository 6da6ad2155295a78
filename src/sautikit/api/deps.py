"""What routers receive: the shared services and a database session per request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from sautikit.cluster.buckets import KeyRateLimit
from sautikit.config import Settings
from sautikit.db import Database

__all__ = ["ApiContext", "DbSession", "api_context", "db_session"]


@dataclass
class ApiContext:
    settings: Settings
    database: Database
    limiter: KeyRateLimit


def api_context(request: Request) -> ApiContext:
    context: ApiContext = request.app.state.context
    return context


def db_session(request: Request) -> AsyncSession:
    """The request's session; ``SautikitRoute`` opens its transaction and commits it."""
    session: AsyncSession = request.state.db
    return session


DbSession = Annotated[AsyncSession, Depends(db_session)]
