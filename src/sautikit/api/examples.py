"""Examples in the OpenAPI document: on every schema, parameter, request and answer.

A schema that states its own ``example`` (a model's ``json_schema_extra``, a field's
``examples``) is shown as written, with the required properties it lacks put back:
FastAPI drops ``None`` from examples when it writes the document, and a model inherits its
base's example. Everything else gets an example built from its schema:
the first enum value, a sample for each constrained string pattern the API uses, the
bounds of numbers, one item per array, every property of an object, the non-null branch
of a nullable value. ``tests/api/test_openapi.py`` validates every example against its
schema, so a new pattern without a sample here fails there, not at run time.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["add_examples", "example_of"]

JsonSchema = dict[str, Any]

_UUID: Final = "0192f3c4-5d6e-7f80-9a1b-2c3d4e5f6a7b"
_MOMENT: Final = "2026-12-04T09:30:00.120Z"

_WEB_URL: Final = r"^[Hh][Tt][Tt][Pp][Ss]?://\S+$"

# Each constrained string pattern of the API, with a value it accepts.
_PATTERN_SAMPLES: Final[dict[str, str]] = {
    _WEB_URL: "https://app.example.com/sautikit/voice",
    r"^[Ww][Ss][Ss]?://\S+$": "wss://app.example.com/sautikit/stream",
    r"^t=\d+,v1=[0-9a-f]{64}$": "t=1764840600,v1=" + "3f9a" * 16,
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$": _UUID,
    r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$": "en-US",
    r"^[0-9*#]*$": "1#",
    r"^\+[1-9][0-9]{6,14}$": "+254722000000",
    r"^sips?:\S+$": "sip:alice@pbx.example.com",
    r"^\s*\+?[1-9][0-9]{0,14}$": "+254",
    r"^(\+[1-9][0-9]{5,14}|sips?:\S+)$": "+254722000000",
    r"^[A-Za-z0-9][A-Za-z0-9 ._:@+-]{0,127}$": "support",
}

_FORMAT_SAMPLES: Final[dict[str, str]] = {
    "date-time": _MOMENT,
    "uri": "https://app.example.com/sautikit/events",
    "email": "operator@example.com",
}


def _named_string(name: str) -> str:
    """A plausible value for an unconstrained string, from its property's name."""
    if name == "id" or name.endswith("_id"):
        return _UUID
    if name.endswith("_at"):
        return _MOMENT
    if name.endswith("_url") or name == "url":
        return _FORMAT_SAMPLES["uri"]
    if name in ("to", "number"):
        return "+254722000000"
    if name in ("from", "caller_id"):
        return "+254700000001"
    if name == "currency":
        return "KES"
    if name in ("cursor", "next_cursor"):
        return "eyJpZCI6IjAxOTJmM2M0In0"
    if name == "request_id":
        return "req_9c1d2e3f4a5b"
    return {"name": "support", "code": "validation.invalid_field"}.get(name, "example")


def _string(schema: JsonSchema, name: str) -> str:
    pattern = schema.get("pattern")
    web = pattern == _WEB_URL or schema.get("format") == "uri"
    if web and name.endswith("_url"):
        value = f"https://app.example.com/sautikit/{name.removesuffix('_url').replace('_', '-')}"
    elif pattern in _PATTERN_SAMPLES:
        value = _PATTERN_SAMPLES[pattern]
    elif schema.get("format") in _FORMAT_SAMPLES:
        value = _FORMAT_SAMPLES[schema["format"]]
    else:
        value = _named_string(name)
    value = value.ljust(int(schema.get("minLength", 0)), "x")
    if "maxLength" in schema:
        value = value[: int(schema["maxLength"])]
    return value


def _number(schema: JsonSchema) -> int | float:
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    value: int | float = 1 if low is None else low + (1 if "exclusiveMinimum" in schema else 0)
    if high is not None and value > high:
        value = high - (1 if "exclusiveMaximum" in schema else 0)
    return value if schema.get("type") == "integer" else float(value)


class _Builder:
    def __init__(self, document: dict[str, Any]) -> None:
        self.components: dict[str, JsonSchema] = document.get("components", {}).get("schemas", {})
        self._building: set[str] = set()

    def build(self, schema: JsonSchema, name: str = "") -> Any:
        if "example" in schema:
            return self.complete(schema["example"], schema)
        if schema.get("examples"):
            return self.complete(schema["examples"][0], schema)
        if "$ref" in schema:
            return self._reference(str(schema["$ref"]), name)
        if "const" in schema:
            return schema["const"]
        if schema.get("enum"):
            return schema["enum"][0]
        if schema.get("default") not in (None, ""):
            return schema["default"]
        for combined in ("anyOf", "oneOf", "allOf"):
            if combined in schema:
                branches = [part for part in schema[combined] if part.get("type") != "null"]
                return self.build(branches[0], name) if branches else None
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), None)
        if kind == "object" or "properties" in schema:
            return self._object(schema)
        if kind == "array":
            item = self.build(schema.get("items", {}), name)
            return [item] * max(1, int(schema.get("minItems", 1)))
        if kind == "string":
            return _string(schema, name)
        if kind in ("integer", "number"):
            return _number(schema)
        if kind == "boolean":
            return False
        if kind == "null":
            return None
        return {}  # a schema that allows anything

    def _reference(self, reference: str, name: str) -> Any:
        component = reference.rsplit("/", 1)[-1]
        if component in self._building or component not in self.components:
            return None  # a recursive model: its nested copy is left empty
        self._building.add(component)
        try:
            return self.build(self.components[component], name)
        finally:
            self._building.discard(component)

    def complete(self, example: Any, schema: JsonSchema) -> Any:
        """``example`` with each required property it lacks: ``None`` where the property
        may be null (what FastAPI dropped), else built from the property's schema."""
        if "$ref" in schema:
            component = self.components.get(str(schema["$ref"]).rsplit("/", 1)[-1], {})
            return self.complete(example, component)
        if not isinstance(example, dict) or "properties" not in schema:
            return example
        completed = dict(example)
        for name in schema.get("required", []):
            if name in completed:
                continue
            property_schema = schema["properties"].get(name, {})
            if _nullable(property_schema):
                completed[name] = None
            else:
                built = {k: v for k, v in property_schema.items() if k != "example"}
                completed[name] = self.build(built, name)
        return completed

    def _object(self, schema: JsonSchema) -> dict[str, Any]:
        shown = {
            property_name: self.build(property_schema, property_name)
            for property_name, property_schema in schema.get("properties", {}).items()
        }
        extra = schema.get("additionalProperties")
        if not shown and isinstance(extra, dict) and extra:
            shown["key"] = self.build(extra, "key")
        return shown


def _nullable(schema: JsonSchema) -> bool:
    kinds = schema.get("type")
    return (
        kinds == "null"
        or (isinstance(kinds, list) and "null" in kinds)
        or any(part.get("type") == "null" for part in schema.get("anyOf", []))
    )


def example_of(schema: JsonSchema, document: dict[str, Any]) -> Any:
    """An example of ``schema``, its ``$ref``s resolved in ``document``'s components."""
    return _Builder(document).build(schema)


def _media_examples(content: dict[str, Any], builder: _Builder) -> None:
    for media_type, media in content.items():
        if "json" not in media_type or "example" in media or "examples" in media:
            continue
        if "schema" in media:
            media["example"] = builder.build(media["schema"])


def add_examples(document: dict[str, Any]) -> None:
    """Give every component schema, parameter, request body and JSON answer an example."""
    builder = _Builder(document)
    for schema_name, schema in builder.components.items():
        if schema.get("examples"):
            continue
        schema["example"] = builder._reference(f"#/components/schemas/{schema_name}", "")
    for item in document.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for parameter in operation.get("parameters", []):
                if "example" not in parameter and "schema" in parameter:
                    parameter["example"] = builder.build(parameter["schema"], parameter["name"])
            if "requestBody" in operation:
                _media_examples(operation["requestBody"].get("content", {}), builder)
            for status, answer in operation["responses"].items():
                if status.startswith("2"):
                    _media_examples(answer.get("content", {}), builder)
