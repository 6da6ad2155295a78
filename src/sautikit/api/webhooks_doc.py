"""The OpenAPI ``webhooks`` section: what Sautikit sends to an app, and what it answers.

* ``voiceCallback`` — the request to a number's ``voice_url``, a call's ``action_url`` and
  every verb's ``action``: the call's fields (SPEC §3), form-encoded strings by default or
  JSON as a workspace or number chooses; the app answers the voice-action document, whose
  JSON Schema is also served at ``/v1/schemas/action-document.json``.
* one webhook per event kind (SPEC §7) — the signed envelope posted to ``events_url`` and
  to matching subscriptions; call events name the call ``call_id`` and carry its
  ``sequence``.
"""

from __future__ import annotations

import json
from typing import Any

from sautikit.events.kinds import EVENT_KINDS
from sautikit.events.signing import EVENT_HEADER, EVENT_ID_HEADER, SIGNATURE_HEADER
from sautikit.voice.action_schema import action_document_schema

__all__ = ["add_webhooks"]

_SCHEMAS = "#/components/schemas/"
_ACTION_PREFIX = "Voice"

_CALL_FIELDS: dict[str, dict[str, Any]] = {
    "CallId": {"type": "string", "description": "The call's id."},
    "WorkspaceId": {"type": "string"},
    "From": {"type": "string", "examples": ["+254722000000"]},
    "To": {"type": "string", "examples": ["+254700000001"]},
    "Direction": {"type": "string", "enum": ["inbound", "outbound"]},
    "CallStatus": {"type": "string", "examples": ["ringing", "answered"]},
    "Digits": {"type": "string", "description": "getDigits/gather: the keys pressed."},
    "SpeechResult": {"type": "string", "description": "gather with speech: the words."},
    "Confidence": {"type": "string", "description": "gather with speech: 0–1."},
    "RecordingSid": {"type": "string", "description": "record: the recording's id."},
    "RecordingUrl": {
        "type": "string",
        "description": "A signed, short-lived download URL that needs no key.",
    },
    "RecordingDuration": {"type": "string", "description": "Whole seconds."},
    "RecordingChannels": {"type": "string", "enum": ["1", "2"]},
    "DialCallId": {"type": "string"},
    "DialCallStatus": {
        "type": "string",
        "examples": ["completed", "busy", "no-answer", "failed"],
    },
    "DialCallDuration": {"type": "string", "description": "Whole seconds."},
    "ConferenceName": {"type": "string"},
    "TranscriptionSid": {"type": "string"},
    "TranscriptionText": {"type": "string"},
    "TranscriptionStatus": {"type": "string", "enum": ["completed", "failed"]},
    "AnsweredBy": {
        "type": "string",
        "enum": [
            "human",
            "machine_start",
            "machine_end_beep",
            "machine_end_silence",
            "machine_end_other",
            "fax",
            "unknown",
        ],
    },
    "ErrorCode": {"type": "string", "description": "fallback_url: what failed."},
    "ErrorUrl": {"type": "string", "description": "fallback_url: the URL that failed."},
}
_ALWAYS = ["CallId", "WorkspaceId", "From", "To", "Direction", "CallStatus"]

_FORM_FIELDS: dict[str, Any] = {
    "type": "object",
    "title": "VoiceCallbackForm",
    "description": "Form-encoded (the default): every value a string. Fields past the first "
    "six are sent where they apply.",
    "properties": _CALL_FIELDS,
    "required": _ALWAYS,
    "additionalProperties": {"type": "string"},
    "example": {
        "CallId": "0192f3c4-5d6e-7f80-9a1b-2c3d4e5f6a7b",
        "WorkspaceId": "0192f3c4-0000-7000-8000-0000000000aa",
        "From": "+254722000000",
        "To": "+254700000001",
        "Direction": "inbound",
        "CallStatus": "answered",
        "RecordingSid": "0192f3c4-1111-7000-8000-000000000001",
        "RecordingUrl": "https://voice.example.co.ke/v1/files/rec.wav?expires=1764840000&sig=…",
        "RecordingDuration": "12",
    },
}


def _json_fields() -> dict[str, Any]:
    properties = dict(_CALL_FIELDS)
    for count in ("RecordingDuration", "RecordingChannels", "DialCallDuration"):
        properties[count] = {"type": "integer", "minimum": 0}
    return {
        **_FORM_FIELDS,
        "title": "VoiceCallbackJson",
        "description": "JSON (`callback_encoding: json`): counts are integers.",
        "properties": properties,
        "additionalProperties": True,
        "example": {**_FORM_FIELDS["example"], "RecordingDuration": 12},
    }


def _signature_headers(event: bool) -> list[dict[str, Any]]:
    headers = [
        {
            "name": SIGNATURE_HEADER,
            "in": "header",
            "required": True,
            "description": '`t=<unix seconds>,v1=<hex HMAC-SHA256(secret, raw_body + "." + t)>`'
            " — verify it (and that `t` is recent) before trusting the request.",
            "schema": {"type": "string", "pattern": r"^t=\d+,v1=[0-9a-f]{64}$"},
        }
    ]
    if event:
        headers += [
            {"name": EVENT_HEADER, "in": "header", "required": True, "schema": {"type": "string"}},
            {
                "name": EVENT_ID_HEADER,
                "in": "header",
                "required": True,
                "description": "The same on every attempt: deduplicate by it.",
                "schema": {"type": "string"},
            },
        ]
    return headers


def _rewrite_refs(node: Any) -> Any:
    """The action schema's ``#/$defs/X`` refs, as refs into the OpenAPI components."""
    text = json.dumps(node).replace('"#/$defs/', f'"{_SCHEMAS}{_ACTION_PREFIX}')
    return json.loads(text)


def _add_action_document(schemas: dict[str, Any]) -> dict[str, Any]:
    schema = action_document_schema()
    defs = schema.pop("$defs")
    for name, definition in defs.items():
        schemas[f"{_ACTION_PREFIX}{name}"] = _rewrite_refs(definition)
    for key in ("$schema", "$id"):
        schema.pop(key)
    schemas["ActionDocument"] = _rewrite_refs(schema)
    return {"$ref": f"{_SCHEMAS}ActionDocument"}


def _event_data(kind: str) -> dict[str, Any]:
    if kind.startswith("call.") and kind.count(".") == 1:
        properties: dict[str, Any] = {
            "call_id": {"type": "string"},
            "sequence": {
                "type": "integer",
                "minimum": 1,
                "description": "The call's events count up from 1; delivered in order.",
            },
        }
        if kind == "call.funds_low":
            properties["seconds_left"] = {"type": "integer", "minimum": 0}
        return {
            "type": "object",
            "description": "The call as `GET /v1/calls/{call_id}` shows it (its `id` named "
            "`call_id`), with its `sequence`.",
            "properties": properties,
            "required": ["call_id", "sequence"],
            "additionalProperties": True,
        }
    if kind.startswith("call."):
        return {
            "type": "object",
            "properties": {"call_id": {"type": "string"}, "sequence": {"type": "integer"}},
            "required": ["call_id", "sequence"],
            "additionalProperties": True,
        }
    return {"type": "object", "additionalProperties": True}


def _event_webhook(kind: str) -> dict[str, Any]:
    envelope = {
        "type": "object",
        "properties": {
            "kind": {"type": "string", "const": kind},
            "event_id": {"type": "string"},
            "workspace_id": {"type": "string"},
            "occurred_at": {"type": "string", "format": "date-time"},
            "data": _event_data(kind),
        },
        "required": ["kind", "event_id", "workspace_id", "occurred_at", "data"],
    }
    return {
        "post": {
            "summary": f"Event `{kind}`",
            "operationId": f"event_{kind.replace('.', '_')}",
            "tags": ["events"],
            "parameters": _signature_headers(event=True),
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": envelope}},
            },
            "responses": {
                "2XX": {"description": "Received; any other answer (or none in 10 s) is retried."}
            },
        }
    }


def add_webhooks(document: dict[str, Any]) -> None:
    """Fill ``document["webhooks"]`` (and the schemas it refers to)."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    answer = _add_action_document(schemas)
    schemas["VoiceCallbackForm"] = _FORM_FIELDS
    schemas["VoiceCallbackJson"] = _json_fields()
    form = {"$ref": f"{_SCHEMAS}VoiceCallbackForm"}
    webhooks: dict[str, Any] = {
        "voiceCallback": {
            "post": {
                "summary": "A voice callback: the call's fields; answer the next actions",
                "description": "Sent to a number's `voice_url`, a call's `action_url` and "
                "each verb's `action`. With `method: GET` the same fields, as strings, are "
                "the query string. Answer within 10 s; a 2xx with an empty body hangs up.",
                "operationId": "voice_callback",
                "tags": ["voice"],
                "parameters": _signature_headers(event=False),
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/x-www-form-urlencoded": {"schema": form},
                        "application/json": {"schema": {"$ref": f"{_SCHEMAS}VoiceCallbackJson"}},
                    },
                },
                "responses": {
                    "200": {
                        "description": "The actions to run next.",
                        "content": {"application/json": {"schema": answer}},
                    }
                },
            }
        }
    }
    for kind in sorted(EVENT_KINDS):
        webhooks[kind] = _event_webhook(kind)
    document["webhooks"] = webhooks
