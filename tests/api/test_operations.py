"""Health, readiness, metrics, the OpenAPI document and the public pricing."""

from __future__ import annotations

import httpx
import pytest

from sautikit.api import create_api
from sautikit.config import Settings
from sautikit.db import Database
from sautikit.db.models import Rate


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"] == "ok"


async def test_not_ready_without_a_database(settings: Settings) -> None:
    unreachable = Database("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    app = create_api(settings, unreachable)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        answer = await http.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["status"] == "unavailable"


async def test_metrics_count_requests(client: httpx.AsyncClient) -> None:
    await client.get("/healthz")
    text = (await client.get("/metrics")).text
    assert 'sautikit_http_requests_total{method="GET",route="/healthz",status="200"}' in text
    assert "sautikit_http_request_duration_seconds_bucket" in text


async def test_openapi_and_docs(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    assert document["info"]["title"] == "Sautikit"
    assert {"/v1/webhooks", "/v1/public/pricing", "/v1/workspace"} <= set(document["paths"])
    docs = await client.get("/docs")
    assert docs.status_code == 200 and "<html" in docs.text.lower()


async def test_pricing_defaults_while_the_deck_is_empty(client: httpx.AsyncClient) -> None:
    pricing = (await client.get("/v1/public/pricing")).json()
    assert pricing["currency"] == "KES"
    assert pricing["number_rental_monthly_minor"] == 10_000
    assert pricing["inbound_per_minute_minor"] == 0
    assert pricing["outbound"] == [
        {"prefix": "+254", "destination": "Kenya", "per_minute_minor": 300}
    ]
    assert pricing["on_net"] == [{"prefix": "+254", "destination": "Kenya", "per_minute_minor": 0}]


@pytest.mark.usefixtures("database")
async def test_pricing_reads_the_rate_deck(client: httpx.AsyncClient, database: Database) -> None:
    async with database.transaction() as session:
        session.add_all(
            [
                Rate(
                    direction="outbound",
                    prefix="+2547",
                    destination="Kenya mobile",
                    rate_per_minute_minor=350,
                ),
                Rate(
                    direction="outbound",
                    prefix="+254",
                    destination="Kenya fixed",
                    rate_per_minute_minor=250,
                ),
                Rate(
                    direction="inbound",
                    prefix="+254",
                    destination="Kenya",
                    rate_per_minute_minor=50,
                ),
                Rate(
                    direction="on_net",
                    prefix="+254",
                    destination="Sautikit numbers",
                    rate_per_minute_minor=20,
                ),
            ]
        )
    pricing = (await client.get("/v1/public/pricing")).json()
    assert pricing["inbound_per_minute_minor"] == 50
    assert {(line["prefix"], line["per_minute_minor"]) for line in pricing["outbound"]} == {
        ("+2547", 350),
        ("+254", 250),
    }
    assert [(line["prefix"], line["per_minute_minor"]) for line in pricing["on_net"]] == [
        ("+254", 20)
    ]
