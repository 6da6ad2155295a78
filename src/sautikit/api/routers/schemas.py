"""``GET /v1/schemas/action-document.json``: the voice-action document's JSON Schema.

A stable, public URL (no key needed) for editors, app tests and code generators; the
OpenAPI document's ``webhooks`` describe the voice callback's answer with the same schema.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from sautikit.voice.action_schema import ACTION_DOCUMENT_SCHEMA_ID, action_document_schema

__all__ = ["router"]

router = APIRouter(tags=["schemas"])


@router.get(
    ACTION_DOCUMENT_SCHEMA_ID,
    summary="The voice-action document as JSON Schema (2020-12)",
    response_class=JSONResponse,
    responses={
        200: {
            "description": "The schema an app's answer to a voice callback follows.",
            "content": {"application/schema+json": {"schema": {"type": "object"}}},
        }
    },
)
async def action_document() -> JSONResponse:
    schema: dict[str, Any] = action_document_schema()
    return JSONResponse(
        schema,
        media_type="application/schema+json",
        headers={"Cache-Control": "public, max-age=3600"},
    )
