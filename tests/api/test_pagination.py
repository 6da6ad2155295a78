"""Cursor pagination: newest first, every item once, clear errors for bad parameters."""

from __future__ import annotations

import httpx
import pytest
from tests.support import KeyFactory


async def test_pages_cover_every_item_once_newest_first(
    client: httpx.AsyncClient, make_key: KeyFactory
) -> None:
    _, headers = await make_key(["webhooks.manage"])
    made = []
    for index in range(7):
        hook = {"url": f"https://app.example.com/hook/{index}", "events": ["*"]}
        made.append((await client.post("/v1/webhooks", json=hook, headers=headers)).json()["id"])

    seen: list[str] = []
    pages = 0
    params: dict[str, str | int] = {"limit": 3}
    while True:
        page = (await client.get("/v1/webhooks", params=params, headers=headers)).json()
        pages += 1
        seen += [hook["id"] for hook in page["data"]]
        if page["next_cursor"] is None:
            break
        params = {"limit": 3, "cursor": page["next_cursor"]}
    assert pages == 3
    assert seen == list(reversed(made))


async def test_default_page_holds_fifty(client: httpx.AsyncClient, make_key: KeyFactory) -> None:
    _, headers = await make_key(["webhooks.manage"])
    page = (await client.get("/v1/webhooks", headers=headers)).json()
    assert page == {"data": [], "next_cursor": None}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "Zm9vYmFy"}, "cursor"),
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"limit": "ten"}, "limit"),
    ],
)
async def test_bad_parameters_name_the_field(
    client: httpx.AsyncClient, make_key: KeyFactory, params: dict, field: str
) -> None:
    _, headers = await make_key(["webhooks.manage"])
    answer = await client.get("/v1/webhooks", params=params, headers=headers)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "validation.invalid_field"
    assert error["field"] == field
