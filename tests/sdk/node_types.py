"""sdk/node/schemas.d.ts: the OpenAPI document's component schemas as TypeScript types.

The Node SDK's hand-written index.d.ts imports these, so its answers are typed from the
same document a generator would read. ``tests/sdk/test_node_sdk.py`` checks the file is
current; after an API change, write it again with::

    PYTHONPATH=src python -m tests.sdk.node_types
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from sautikit.api.app import create_api
from sautikit.config import Settings
from sautikit.db import Database

TYPES = Path(__file__).resolve().parents[2] / "sdk" / "node" / "schemas.d.ts"
_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")


def openapi_document() -> dict[str, Any]:
    app = create_api(Settings(secret_key="types"), Database("sqlite+aiosqlite:///:memory:"))
    return app.openapi()


def _type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if "const" in schema:
        return json.dumps(schema["const"])
    if "enum" in schema:
        return " | ".join(json.dumps(value) for value in schema["enum"])
    for combined in ("anyOf", "oneOf"):
        if combined in schema:
            return " | ".join(dict.fromkeys(_type(part) for part in schema[combined]))
    if "allOf" in schema:
        return " & ".join(_type(part) for part in schema["allOf"])
    kind = schema.get("type")
    if kind == "array":
        return f"Array<{_type(schema.get('items', {}))}>"
    if kind == "object" or "properties" in schema:
        return _object(schema)
    return {"string": "string", "integer": "number", "number": "number", "boolean": "boolean"}.get(
        str(kind), "null" if kind == "null" else "unknown"
    )


def _members(schema: dict[str, Any]) -> list[str]:
    """One ``name: type;`` line per property."""
    required = set(schema.get("required", []))
    lines = []
    for name, part in schema.get("properties", {}).items():
        key = name if _IDENTIFIER.fullmatch(name) else json.dumps(name)
        optional = "" if name in required else "?"
        lines.append(f"  {key}{optional}: {_type(part)};")
    return lines


def _braces(lines: list[str]) -> str:
    return "{\n" + "\n".join(lines) + "\n}"


def _object(schema: dict[str, Any]) -> str:
    if not schema.get("properties"):
        extra = schema.get("additionalProperties")
        return f"Record<string, {_type(extra) if isinstance(extra, dict) else 'unknown'}>"
    return _braces(_members(schema))


def _page_item(schema: dict[str, Any]) -> str | None:
    """``X`` for a ``{data: X[], next_cursor}`` list page, else None."""
    properties = schema.get("properties", {})
    if set(properties) != {"data", "next_cursor"} or properties["data"].get("type") != "array":
        return None
    return _type(properties["data"].get("items", {}))


def render(document: dict[str, Any]) -> str:
    """Each schema as a type; one whose properties include all of another's, and mostly
    consist of them (a detail view of a list item, say), is written as that type ``&``
    its own extra members."""
    schemas: dict[str, Any] = document["components"]["schemas"]
    members = {name: _members(schema) for name, schema in schemas.items()}
    out = [
        "// Generated from Sautikit's OpenAPI document by tests/sdk/node_types.py: do not edit.",
        "",
        "/** One page of a list, and the cursor of the next page (null on the last). */",
        "export type Page<T> = "
        + _braces(["  data: Array<T>;", "  next_cursor: string | null;"])
        + ";",
        "",
    ]
    for name, schema in sorted(schemas.items()):
        own = members[name]
        item = _page_item(schema)
        if item is not None:
            out += [f"export type {name} = Page<{item}>;", ""]
            continue
        bases = [
            other
            for other, theirs in members.items()
            if other != name
            and 2 * len(own) <= 3 * len(theirs) < 3 * len(own)
            and set(theirs) <= set(own)
        ]
        if bases:
            base = max(bases, key=lambda other: (len(members[other]), other))
            extra = [line for line in own if line not in set(members[base])]
            body = f"{base} & {_braces(extra)}"
        else:
            body = _object(schema) if "properties" in schema else _type(schema)
        out.append(f"export type {name} = {body};")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    TYPES.write_text(render(openapi_document()))
