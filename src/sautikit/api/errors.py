"""The error envelope of SPEC §1, and the handlers that put every failure into it.

Every error a client sees looks like
``{"error": {"code": "area.reason", "message": "…", "request_id": "req_…"}}`` (plus
``field`` for validation errors). Nothing else — no stack trace, no framework default page.

A request that loses a lock conflict in the database (a PostgreSQL deadlock or
serialisation failure, SQLite's ``database is locked``) rolled back whole: it answers 503
``service.busy`` with ``Retry-After``, as a busy server does, not 500. Admission takes its
locks in one order so that this does not happen (:mod:`sautikit.calls.admission`); this is
the net under that rule.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from sautikit.logs import request_id_var

__all__ = [
    "ApiError",
    "ErrorEnvelope",
    "error_response",
    "install_error_handlers",
    "is_lock_conflict",
]

log = logging.getLogger(__name__)


class ApiError(Exception):
    """Raise anywhere below a router to answer with the error envelope."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers or {}


class ErrorDetail(BaseModel):
    code: str
    message: str
    request_id: str | None = None
    field: str | None = None


class ErrorEnvelope(BaseModel):
    error: ErrorDetail


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    field: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    detail: dict[str, Any] = {"code": code, "message": message, "request_id": request_id_var.get()}
    if field is not None:
        detail["field"] = field
    return JSONResponse({"error": detail}, status_code=status, headers=headers)


_STATUS_CODES = {
    401: "auth.missing_key",
    403: "auth.forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "request.not_acceptable",
    413: "request.too_large",
    415: "request.unsupported_media_type",
}


def _field_name(location: tuple[Any, ...]) -> str:
    # ("body", "events", 0) -> "events[0]"; ("query", "limit") -> "limit".
    parts = list(
        location[1:]
        if location and location[0] in {"body", "query", "path", "header"}
        else location
    )
    name = ""
    for part in parts:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "body"


async def _on_api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, field=exc.field, headers=exc.headers)


async def _on_validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid request", "type": ""}
    if first.get("type") == "json_invalid":
        return error_response(400, "request.malformed_json", "the body is not valid JSON")
    field = _field_name(tuple(first.get("loc", ())))
    if first.get("type") == "extra_forbidden":
        message = f"{field}: unknown field"
    elif first.get("type") == "missing":
        message = f"{field}: required"
    else:
        message = f"{field}: {first.get('msg', 'invalid value')}"
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return error_response(400, "validation.invalid_field", message, field=field)


_METHODS = ("get", "put", "post", "patch", "delete")


MethodTable = list[tuple[int, re.Pattern[str], frozenset[str]]]


def _method_table(app: FastAPI) -> MethodTable:
    """Each documented path as a pattern, with its methods and how many parameters it
    has (built once per app)."""
    table: MethodTable | None = getattr(app.state, "method_table", None)
    if table is None:
        table = []
        for path, item in app.openapi().get("paths", {}).items():
            methods = {method.upper() for method in item if method in _METHODS}
            table.append((path.count("{"), compile_path(path)[0], frozenset(methods)))
        app.state.method_table = table
    return table


def allowed_methods(request: Request, starlette_allow: str = "") -> list[str]:
    """The methods of the resource at the request's path, as the document lists them.
    Starlette's own 405 names only the first route that matched the path (a path with
    GET and DELETE on two routes must say both). Where templates overlap
    (``/v1/numbers/available`` and ``/v1/numbers/{number_id}``) the one with the fewest
    parameters is the resource."""
    matching = [
        (parameters, served)
        for parameters, pattern, served in _method_table(request.app)
        if pattern.match(request.scope["path"])
    ]
    if matching:
        fewest = min(parameters for parameters, _ in matching)
        methods = set().union(*(served for parameters, served in matching if parameters == fewest))
    else:  # not documented (the docs pages): what Starlette said
        methods = {m.strip() for m in starlette_allow.split(",") if m.strip()}
    if methods:
        methods |= {"OPTIONS"}
    return sorted(methods)


async def _on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 405:
        given = (exc.headers or {}).get("Allow", "")
        allow = ", ".join(allowed_methods(request, given))
        if request.method == "OPTIONS":  # RFC 9110 §9.3.7: say what the resource allows
            return Response(status_code=204, headers={"Allow": allow})
        return error_response(
            405,
            "method_not_allowed",
            f"{request.method} is not allowed here; allowed: {allow}",
            headers={"Allow": allow},
        )
    code = _STATUS_CODES.get(exc.status_code, "request.invalid")
    message = exc.detail if isinstance(exc.detail, str) else "request refused"
    return error_response(exc.status_code, code, message, headers=exc.headers)


# PostgreSQL: deadlock_detected, serialization_failure, lock_not_available.
_LOCK_CONFLICT_STATES = frozenset({"40P01", "40001", "55P03"})


def is_lock_conflict(error: DBAPIError) -> bool:
    """Whether ``error`` is a lost lock conflict: the transaction may simply be retried."""
    state = getattr(error.orig, "sqlstate", None) or getattr(error.orig, "pgcode", None)
    return state in _LOCK_CONFLICT_STATES or "database is locked" in str(error.orig)


async def _on_database_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DBAPIError)
    if not is_lock_conflict(exc):
        raise exc
    log.warning("a request lost a lock conflict and was rolled back: %s", exc.orig)
    return error_response(
        503, "service.busy", "the server is busy; retry", headers={"Retry-After": "1"}
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(DBAPIError, _on_database_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
