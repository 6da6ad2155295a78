"""The OpenAPI document, made trustworthy for generators and readers (SPEC §1).

FastAPI's generated document is corrected in one place, after generation:

* **Security.** ``bearer`` (an API key, ``sk_live_…``) on every route that authenticates a
  key and ``operator`` (the operator token) on ``/v1/operator`` routes — declared by the
  dependencies in :mod:`sautikit.api.auth` and :mod:`sautikit.api.operator_auth` — and an
  empty ``security`` on public ones (health, pricing, signed media links), so a generated
  client sends the key exactly where it is needed.
* **Errors.** The API never answers 422: invalid input is a 400
  ``validation.invalid_field`` in the one error envelope. Each operation lists only the
  errors it can give: 400 where it takes input, 401/403/429 where it needs a key, 404
  where its path names something, 409 on POSTs that honour an ``Idempotency-Key`` (one
  reused with another body).
* **Idempotency-Key** is declared as a header on every keyed POST, which all honour it
  (:mod:`sautikit.api.routing`), and on the operator's credit, which honours it its own way.
* **Webhooks**: what Sautikit sends to apps, and the action document they answer
  (:mod:`sautikit.api.webhooks_doc`).
* **Examples** on every schema, parameter, request body and answer
  (:mod:`sautikit.api.examples`).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from sautikit.api.errors import ErrorEnvelope
from sautikit.api.examples import add_examples
from sautikit.api.routing import IDEMPOTENCY_HEADER
from sautikit.api.webhooks_doc import add_webhooks

__all__ = ["install_openapi"]

BEARER = "bearer"
OPERATOR = "operator"

_ENVELOPE = {"$ref": "#/components/schemas/ErrorEnvelope"}
_ERRORS: dict[str, str] = {
    "400": "Invalid request: `validation.invalid_field` names the field",
    "401": "Missing, invalid or revoked credentials",
    "403": "The key lacks a scope",
    "404": "Not found in this workspace",
    "409": "Conflict, e.g. an `Idempotency-Key` reused with another request",
    "429": "Rate limited; wait for `Retry-After` seconds",
}


def _takes_input(operation: dict[str, Any]) -> bool:
    return "requestBody" in operation or any(
        parameter.get("in") in ("query", "path", "header")
        for parameter in operation.get("parameters", [])
    )


def _error(status: str, operation: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    if status not in responses:
        responses[status] = {
            "description": _ERRORS[status],
            "content": {"application/json": {"schema": _ENVELOPE}},
        }


def _correct(operation: dict[str, Any], method: str) -> None:
    responses = operation.setdefault("responses", {})
    responses.pop("422", None)
    security = operation.setdefault("security", [])  # declared by the auth dependencies
    if {BEARER: []} in security:
        for status in ("401", "403", "429"):
            _error(status, operation)
    elif {OPERATOR: []} in security:
        _error("401", operation)
    if method == "post":
        parameters = operation.setdefault("parameters", [])
        declared = any(p.get("name") == IDEMPOTENCY_HEADER for p in parameters)
        # Operator routes run outside SautikitRoute's replay; those that honour the key
        # (credits) declare it themselves.
        honoured = declared or {OPERATOR: []} not in security
        if not declared and honoured:
            parameters.append(
                {
                    "name": IDEMPOTENCY_HEADER,
                    "in": "header",
                    "required": False,
                    "description": (
                        "Makes a retry safe: the same key with the same body within 24 h "
                        "replays the first answer instead of acting twice; with another "
                        "body it answers 409."
                    ),
                    "schema": {"type": "string", "maxLength": 255, "minLength": 1},
                    "example": "order-7781-call-1",
                }
            )
        if honoured:
            _error("409", operation)
    if _takes_input(operation):
        _error("400", operation)
    if any(p.get("in") == "path" for p in operation.get("parameters", [])):
        _error("404", operation)


def install_openapi(app: FastAPI) -> None:
    """Replace ``app.openapi`` with the corrected document (built once, then cached)."""

    def build() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            webhooks=app.webhooks.routes,
            tags=app.openapi_tags,
            servers=app.servers,
        )
        components = document.setdefault("components", {})
        for item in document.get("paths", {}).values():
            for method, operation in item.items():
                if method in ("get", "put", "post", "patch", "delete"):
                    _correct(operation, method)
        schemas = components.setdefault("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        envelope = ErrorEnvelope.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(envelope.pop("$defs", {}))
        schemas.setdefault("ErrorEnvelope", envelope)
        add_webhooks(document)
        add_examples(document)
        app.openapi_schema = document
        return document

    app.openapi = build  # type: ignore[method-assign]
