"""Cursor pagination (SPEC §1): newest first, ``{"data": [...], "next_cursor": …}``.

Ids are UUIDv7, so ordering by id is ordering by creation time; the cursor is the last id
of a page, opaque to clients. Filters are the caller's ``where`` clauses on the query.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import Query
from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from sautikit.api.errors import ApiError

__all__ = ["PageParams", "page_params", "paginate"]

T = TypeVar("T")


@dataclass(frozen=True)
class PageParams:
    limit: int
    after_id: str | None


def page_params(
    limit: int = Query(50, ge=1, le=200, description="Items per page, 1–200."),
    cursor: str | None = Query(None, description="`next_cursor` of the previous page."),
) -> PageParams:
    return PageParams(limit=limit, after_id=_decode(cursor) if cursor else None)


def _encode(item_id: str) -> str:
    return base64.urlsafe_b64encode(item_id.encode()).decode().rstrip("=")


def _decode(cursor: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        return str(uuid.UUID(raw))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ApiError(
            400, "validation.invalid_field", "cursor: not a cursor this API gave", field="cursor"
        ) from None


async def paginate(
    session: AsyncSession,
    query: Select[tuple[T]],
    id_column: InstrumentedAttribute[str],
    params: PageParams,
    serialize: Callable[[T], Any],
) -> dict[str, Any]:
    if params.after_id is not None:
        query = query.where(id_column < params.after_id)
    rows: Sequence[T] = (
        await session.scalars(query.order_by(id_column.desc()).limit(params.limit + 1))
    ).all()
    page = rows[: params.limit]
    has_more = len(rows) > params.limit
    return {
        "data": [serialize(row) for row in page],
        "next_cursor": _encode(getattr(page[-1], id_column.key)) if has_more else None,
    }
