"""Per-key rate limits answer 429 with Retry-After, and other keys are unaffected."""

from __future__ import annotations

import httpx
import pytest
from tests.support import KeyFactory

from sautikit.api.ratelimit import RateLimiter
from sautikit.config import Settings


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path, rate_limit_per_second=0.5, rate_limit_burst=2)


async def test_burst_then_429(client: httpx.AsyncClient, make_key: KeyFactory) -> None:
    _, busy = await make_key(["webhooks.manage"])
    _, quiet = await make_key(["webhooks.manage"])
    statuses = [(await client.get("/v1/webhooks", headers=busy)).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    refused = await client.get("/v1/webhooks", headers=busy)
    assert refused.json()["error"]["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) >= 1
    assert (await client.get("/v1/webhooks", headers=quiet)).status_code == 200


def test_tokens_refill_with_time() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=2.0, burst=1, clock=lambda: now[0])
    assert limiter.acquire("k") == 0
    assert limiter.acquire("k") == pytest.approx(0.5)
    now[0] += 0.5
    assert limiter.acquire("k") == 0
