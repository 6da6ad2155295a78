"""URLs that can never be delivered are refused when they are given (SPEC §8)."""

from __future__ import annotations

import httpx
import pytest
from tests.support import KeyFactory

from sautikit.api.urls import is_private_host

PRIVATE = ["http://127.0.0.1:9/hook", "http://10.1.2.3/x", "https://[::1]/x", "http://localhost/"]


@pytest.mark.parametrize("url", PRIVATE)
async def test_a_webhook_to_a_private_address_is_refused(
    client: httpx.AsyncClient, make_key: KeyFactory, url: str
) -> None:
    _, headers = await make_key()
    answer = await client.post("/v1/webhooks", json={"url": url, "events": ["*"]}, headers=headers)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert (error["code"], error["field"]) == ("validation.invalid_field", "url")
    assert "private address" in error["message"]
    assert (await client.get("/v1/webhooks", headers=headers)).json()["data"] == []


@pytest.mark.parametrize("field", ["action_url", "events_url", "fallback_url"])
async def test_a_call_with_a_private_url_is_refused_before_anything_happens(
    client: httpx.AsyncClient, make_key: KeyFactory, field: str
) -> None:
    _, headers = await make_key()
    body = {
        "to": "+254722999000",
        "from": "+254700000001",
        "action_url": "https://app.example.com/voice",
        field: "http://192.168.1.20/cb",
    }
    answer = await client.post("/v1/calls", json=body, headers=headers)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["field"] == field


async def test_a_bad_scheme_is_refused(client: httpx.AsyncClient, make_key: KeyFactory) -> None:
    _, headers = await make_key()
    answer = await client.post(
        "/v1/webhooks", json={"url": "ftp://hooks.example.com/x", "events": ["*"]}, headers=headers
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["field"] == "url"


def test_host_names_are_left_to_the_connection_guard() -> None:
    assert is_private_host("10.0.0.1") and is_private_host("[fe80::1]")
    assert is_private_host("LOCALHOST") and is_private_host("api.localhost")
    assert not is_private_host("hooks.example.com")  # resolved (and checked) when used
    assert not is_private_host("8.8.8.8")
