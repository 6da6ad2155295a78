"""The OpenAPI document: security where a key is needed, the one error envelope and no
422, Idempotency-Key declared on every POST, and examples that validate everywhere."""

from __future__ import annotations

import json
from typing import Any

import httpx
import jsonschema_rs

METHODS = ("get", "post", "put", "patch", "delete")


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


async def test_keyed_routes_declare_the_bearer_scheme(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "sk_live_…",
        "description": schemes["bearer"]["description"],
    }
    security = {(path, method): op["security"] for path, method, op in _operations(document)}
    assert security[("/v1/calls", "post")] == [{"bearer": []}]
    assert security[("/v1/settings", "get")] == [{"bearer": []}]
    assert security[("/healthz", "get")] == []
    assert security[("/v1/public/pricing", "get")] == []
    # A route the document calls public really answers without a key, and a keyed one not.
    assert (await client.get("/v1/public/pricing")).status_code == 200
    assert (await client.get("/v1/calls")).status_code == 401


async def test_errors_are_the_envelope_and_never_422(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert "ErrorEnvelope" in document["components"]["schemas"]
    for path, method, operation in _operations(document):
        responses = operation["responses"]
        assert "422" not in responses, (path, method)
        for status, response in responses.items():
            if status.startswith(("4", "5")):
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorEnvelope"}, (path, status)
    health = document["paths"]["/healthz"]["get"]["responses"]
    assert not any(status.startswith("4") for status in health)  # it takes no key, no input
    answer = await client.post("/v1/calls", json={"to": 5}, headers={"Authorization": "Bearer x"})
    assert answer.status_code in (400, 401)


async def test_every_post_that_honours_it_declares_idempotency_key(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    for path, method, operation in _operations(document):
        if method != "post":
            continue
        names = [p["name"] for p in operation.get("parameters", []) if p["in"] == "header"]
        operator = operation["security"] == [{"operator": []}]
        honours = not operator or path.endswith("/credit")  # operator routes: credits only
        assert ("Idempotency-Key" in names) == honours, path
        assert ("409" in operation["responses"]) == honours, path


async def test_call_and_conference_routes_answer_typed_models(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    expected = {
        ("/v1/calls", "post", "201"): "CallOut",
        ("/v1/calls", "get", "200"): "CallPage",
        ("/v1/calls/{call_id}", "get", "200"): "CallDetail",
        ("/v1/calls/{call_id}", "post", "200"): "CallOut",
        ("/v1/conferences", "get", "200"): "ConferencePage",
        ("/v1/conferences/{name}", "get", "200"): "ConferenceOut",
    }
    for (path, method, status), model in expected.items():
        answer = document["paths"][path][method]["responses"][status]
        assert answer["content"]["application/json"]["schema"] == {
            "$ref": f"#/components/schemas/{model}"
        }, (path, method)
    call = document["components"]["schemas"]["CallOut"]
    assert call["properties"]["status"] == {"$ref": "#/components/schemas/CallStatus"}
    assert (
        "example" in call
        and "sip_status" in document["components"]["schemas"]["CallErrorOut"]["properties"]
    )
    status_filter = next(
        p for p in document["paths"]["/v1/calls"]["get"]["parameters"] if p["name"] == "status"
    )
    assert "CallStatus" in str(status_filter["schema"])


async def test_webhooks_describe_the_voice_callback_and_every_event(
    client: httpx.AsyncClient,
) -> None:
    from sautikit.events.kinds import EVENT_KINDS

    document = (await client.get("/openapi.json")).json()
    webhooks = document["webhooks"]
    assert set(webhooks) == {"voiceCallback", *EVENT_KINDS}
    voice = webhooks["voiceCallback"]["post"]
    assert set(voice["requestBody"]["content"]) == {
        "application/x-www-form-urlencoded",
        "application/json",
    }
    answer = voice["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer == {"$ref": "#/components/schemas/ActionDocument"}
    funds_low = webhooks["call.funds_low"]["post"]["requestBody"]["content"]["application/json"]
    data = funds_low["schema"]["properties"]["data"]
    assert {"call_id", "sequence", "seconds_left"} <= set(data["properties"])
    # Every reference resolves inside the document.
    text = str(document)
    schemas = document["components"]["schemas"]
    for ref in {part.split("'")[0] for part in text.split("'#/components/schemas/")[1:]}:
        assert ref in schemas, ref


async def test_the_action_document_schema_is_served_and_judges_documents(
    client: httpx.AsyncClient,
) -> None:
    import jsonschema_rs

    from sautikit.voice.actions import parse_actions

    answer = await client.get("/v1/schemas/action-document.json")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/schema+json")
    schema = answer.json()
    assert schema["$id"] == "/v1/schemas/action-document.json"
    validator = jsonschema_rs.Draft202012Validator(schema)
    good = {
        "actions": [
            {"say": {"text": "Karibu", "language": "sw"}},
            {
                "getDigits": {
                    "numDigits": 1,
                    "nested": [{"play": {"url": "https://app.example.com/menu.wav"}}],
                }
            },
            {
                "dial": {
                    "number": ["+254722000000", "+254733000000"],
                    "record": "record-from-answer",
                }
            },
            {"record": {"maxLength": 60, "transcribe": True}},
            {"hangup": {}},
        ]
    }
    assert validator.is_valid(good)
    assert len(parse_actions(good)) == 5  # the parser, the judge, agrees
    for bad in (
        {"actions": [{"say": {"txt": "typo"}}]},
        {"actions": [{"say": {"text": "a"}, "play": {"url": "https://a.example/x.wav"}}]},
        {"actions": [{"dial": {"number": "0722000000"}}]},
        {"actions": [{"getDigits": {"nested": [{"dial": {"number": "+254722000000"}}]}}]},
        {"actions": [{"record": {"maxLength": 0}}]},
    ):
        assert not validator.is_valid(bad), bad


def _examples(document: dict[str, Any]) -> list[tuple[str, dict[str, Any], Any]]:
    """(where, schema, example) for every example in the document."""
    found: list[tuple[str, dict[str, Any], Any]] = []
    for name, schema in document["components"]["schemas"].items():
        shown = schema["examples"][0] if schema.get("examples") else schema.get("example")
        found.append((f"schema {name}", schema, shown))
    for path, method, operation in _operations(document):
        for parameter in operation.get("parameters", []):
            where = f"{method} {path} {parameter['in']} {parameter['name']}"
            found.append((where, parameter["schema"], parameter.get("example")))
        bodies = [("request", operation.get("requestBody", {}).get("content", {}))] + [
            (status, answer.get("content", {}))
            for status, answer in operation["responses"].items()
            if status.startswith("2")
        ]
        for part, content in bodies:
            for media_type, media in content.items():
                if "json" in media_type:
                    where = f"{method} {path} {part} {media_type}"
                    found.append((where, media["schema"], media.get("example")))
    return found


async def test_every_example_validates_against_its_schema(client: httpx.AsyncClient) -> None:
    """Each schema, parameter, request body and JSON answer shows an example, and the
    example is valid by its own schema (the components' $refs resolved)."""
    document = (await client.get("/openapi.json")).json()
    components = {"components": document["components"]}
    examples = _examples(document)
    assert len(examples) > 250
    failures = []
    for where, schema, example in examples:
        validator = jsonschema_rs.validator_for({**schema, **components})
        errors = [error.message for error in validator.iter_errors(example)]
        if example is None and not validator.is_valid(None):
            errors.append("no example")
        if errors:
            failures.append(f"{where}: {errors[:2]} in {json.dumps(example)[:160]}")
    assert failures == []


async def test_every_operation_shows_an_example(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    for path, method, operation in _operations(document):
        shown = [p for p in operation.get("parameters", []) if "example" in p]
        for content in [operation.get("requestBody", {}).get("content", {})] + [
            answer.get("content", {}) for answer in operation["responses"].values()
        ]:
            shown += [media for media in content.values() if "example" in media]
        assert shown, (method, path)
    calls = document["paths"]["/v1/calls"]["post"]
    body = calls["requestBody"]["content"]["application/json"]["example"]
    assert (body["to"], body["from"]) == ("+254722000000", "+254700000001")
    created = calls["responses"]["201"]["content"]["application/json"]["example"]
    assert created["status"] == "completed" and created["error"] is None  # nulls kept
