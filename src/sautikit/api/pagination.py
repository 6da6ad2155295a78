"""Cursor pagination (SPEC §1): newest first, ``{"data": [...], "next_cursor": …}``.

Ids are UUIDv7, so ordering by id is ordering by creation time; the cursor is the last id
of a page (so its format is one the OpenAPI document can state: a UUID). Filters are the
caller's ``where`` clauses on the query.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import Query
from pydantic import BeforeValidator
from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

__all__ = ["CURSOR_PATTERN", "PageParams", "Timestamp", "page_params", "paginate"]

T = TypeVar("T")


@dataclass(frozen=True)
class PageParams:
    limit: int
    after_id: str | None


_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


def _rfc3339_only(value: object) -> object:
    """Pydantic would read ``1700000000`` as a Unix time; a filter takes RFC 3339 only,
    with its offset, as the document says (``format: date-time``)."""
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError("an RFC 3339 time with its offset, e.g. 2026-12-04T09:30:00Z")
    return value


Timestamp = Annotated[datetime, BeforeValidator(_rfc3339_only)]
"""A time filter in a query string: RFC 3339 with an offset."""

CURSOR_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


def page_params(
    limit: int = Query(50, ge=1, le=200, description="Items per page, 1–200."),
    cursor: str | None = Query(
        None, pattern=CURSOR_PATTERN, description="`next_cursor` of the previous page."
    ),
) -> PageParams:
    return PageParams(limit=limit, after_id=str(uuid.UUID(cursor)) if cursor else None)


def _encode(item_id: str) -> str:
    return item_id


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
