"""The voice-action document (SPEC §3) as JSON Schema (2020-12), for editors, generators
and the OpenAPI document's ``webhooks``.

Built from the verb models of :mod:`sautikit.voice.actions`, so the schema and the parser
cannot drift apart: each action is an object with exactly one key, the verb; ``getDigits``
and ``gather`` nest only ``say`` and ``play``. The parser is still the judge (it also
accepts a bare array, and says "did you mean" for a misspelt parameter).
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from pydantic import BaseModel

from sautikit.voice.actions import MAX_ACTIONS, NESTABLE_VERBS, VERB_MODELS

__all__ = ["ACTION_DOCUMENT_SCHEMA_ID", "action_document_schema"]

ACTION_DOCUMENT_SCHEMA_ID = "/v1/schemas/action-document.json"
"""Where the API serves the schema (``$id`` is this path on the server that serves it)."""

_DEFS = "#/$defs/{model}"


def _verb_schema(model: type[BaseModel], defs: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True, ref_template=_DEFS)
    defs.update(schema.pop("$defs", {}))
    return schema


def _action_ref(verb: str) -> dict[str, Any]:
    return {"$ref": f"#/$defs/{verb}Action"}


@functools.cache
def _build() -> dict[str, Any]:
    defs: dict[str, Any] = {}
    for model in VERB_MODELS.values():
        defs[model.__name__] = _verb_schema(model, defs)
    for verb, model in VERB_MODELS.items():
        defs[f"{verb}Action"] = {
            "type": "object",
            "title": f"{verb} action",
            "properties": {verb: {"$ref": f"#/$defs/{model.__name__}"}},
            "required": [verb],
            "additionalProperties": False,
        }
    nested = {"type": "array", "items": {"oneOf": [_action_ref(verb) for verb in NESTABLE_VERBS]}}
    for model in VERB_MODELS.values():
        properties = defs[model.__name__].get("properties", {})
        if "nested" in properties:
            properties["nested"] = {**nested, "description": "Prompts played while waiting."}
    action = {"oneOf": [_action_ref(verb) for verb in VERB_MODELS]}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": ACTION_DOCUMENT_SCHEMA_ID,
        "title": "Sautikit voice-action document",
        "description": (
            "What an app answers to a voice callback: the actions to run, in order. "
            "Documents over 64 KB or with more than 100 actions are refused whole."
        ),
        "type": "object",
        "properties": {
            "actions": {
                "type": "array",
                "maxItems": MAX_ACTIONS,
                "items": {"$ref": "#/$defs/Action"},
            }
        },
        "required": ["actions"],
        "additionalProperties": False,
        "examples": [
            {
                "actions": [
                    {"say": {"text": "Please leave a message after the tone."}},
                    {"record": {"action": "https://app.example.com/voicemail", "maxLength": 60}},
                ]
            }
        ],
        "$defs": {"Action": action, **defs},
    }


def action_document_schema() -> dict[str, Any]:
    """The schema (a fresh copy: callers may embed or change it)."""
    return copy.deepcopy(_build())
