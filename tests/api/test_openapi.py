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


async def test_every_post_declares_idempotency_key(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    for path, method, operation in _operations(document):
        if method != "post":
            continue
        names = [p["name"] for p in operation.get("parameters", []) if p["in"] == "header"]
        assert "Idempotency-Key" in names, path
        assert "409" in operation["responses"], path
