"""The OpenAPI document: security where a key is needed, the one error envelope and no
422, and Idempotency-Key declared on every POST."""

from __future__ import annotations

from typing import Any

import httpx

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
