"""Idempotency-Key: a retried POST returns the first answer and does nothing twice."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
from sqlalchemy import update
from tests.support import KeyFactory

from sautikit.db import Database
from sautikit.db.models import IdempotencyRecord
from sautikit.db.types import utcnow

HOOK = {"url": "https://app.example.com/hook", "events": ["*"]}


async def _count(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    return len((await client.get("/v1/webhooks", headers=headers)).json()["data"])


async def test_retry_replays_the_first_answer(
    client: httpx.AsyncClient, make_key: KeyFactory
) -> None:
    _, headers = await make_key(["webhooks.manage"])
    headers["Idempotency-Key"] = "order-42"
    first = await client.post("/v1/webhooks", json=HOOK, headers=headers)
    again = await client.post("/v1/webhooks", json=HOOK, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert await _count(client, headers) == 1


async def test_same_key_with_another_body_conflicts(
    client: httpx.AsyncClient, make_key: KeyFactory
) -> None:
    _, headers = await make_key(["webhooks.manage"])
    headers["Idempotency-Key"] = "order-43"
    await client.post("/v1/webhooks", json=HOOK, headers=headers)
    other = await client.post(
        "/v1/webhooks", json={**HOOK, "url": "https://elsewhere.example"}, headers=headers
    )
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency.conflict"
    assert await _count(client, headers) == 1


async def test_keys_are_scoped_to_the_workspace(
    client: httpx.AsyncClient, make_key: KeyFactory
) -> None:
    _, alice = await make_key(["webhooks.manage"])
    _, bob = await make_key(["webhooks.manage"])
    for headers in (alice, bob):
        headers["Idempotency-Key"] = "shared-key"
    first = await client.post("/v1/webhooks", json=HOOK, headers=alice)
    second = await client.post("/v1/webhooks", json=HOOK, headers=bob)
    assert second.status_code == 201
    assert second.json()["id"] != first.json()["id"]


async def test_concurrent_twins_act_once(client: httpx.AsyncClient, make_key: KeyFactory) -> None:
    _, headers = await make_key(["webhooks.manage"])
    headers["Idempotency-Key"] = "twin"
    answers = await asyncio.gather(
        *(client.post("/v1/webhooks", json=HOOK, headers=headers) for _ in range(4))
    )
    assert {answer.status_code for answer in answers} == {201}
    assert len({answer.json()["id"] for answer in answers}) == 1
    assert await _count(client, headers) == 1


async def test_a_refused_request_does_not_use_up_the_key(
    client: httpx.AsyncClient, make_key: KeyFactory
) -> None:
    _, headers = await make_key(["webhooks.manage"])
    headers["Idempotency-Key"] = "fix-and-retry"
    bad = await client.post("/v1/webhooks", json={**HOOK, "events": ["nope"]}, headers=headers)
    assert bad.status_code == 400
    good = await client.post("/v1/webhooks", json=HOOK, headers=headers)
    assert good.status_code == 201


async def test_an_expired_key_runs_again(
    client: httpx.AsyncClient, make_key: KeyFactory, database: Database
) -> None:
    _, headers = await make_key(["webhooks.manage"])
    headers["Idempotency-Key"] = "yesterday"
    first = await client.post("/v1/webhooks", json=HOOK, headers=headers)
    async with database.transaction() as session:
        await session.execute(
            update(IdempotencyRecord).values(expires_at=utcnow() - timedelta(seconds=1))
        )
    again = await client.post("/v1/webhooks", json=HOOK, headers=headers)
    assert again.status_code == 201
    assert again.json()["id"] != first.json()["id"]
    assert "Idempotent-Replayed" not in again.headers


async def test_an_unprintable_key_is_refused(
    client: httpx.AsyncClient, make_key: KeyFactory
) -> None:
    _, headers = await make_key(["webhooks.manage"])
    answer = await client.post(
        "/v1/webhooks", json=HOOK, headers={**headers, "Idempotency-Key": "x" * 300}
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["field"] == "Idempotency-Key"
