"""Every request is confined to its key's workspace: another's object answers 404."""

from __future__ import annotations

import httpx
from tests.support import KeyFactory

HOOK = {"url": "https://app.example.com/hook", "events": ["call.completed"]}


async def test_another_workspaces_object_answers_404(
    client: httpx.AsyncClient, make_key: KeyFactory
) -> None:
    _, alice = await make_key(["webhooks.manage"])
    _, bob = await make_key(["webhooks.manage"])
    created = (await client.post("/v1/webhooks", json=HOOK, headers=alice)).json()

    for method in ("GET", "DELETE"):
        answer = await client.request(method, f"/v1/webhooks/{created['id']}", headers=bob)
        assert answer.status_code == 404
        assert answer.json()["error"]["code"] == "webhooks.not_found"
        assert created["url"] not in answer.text

    assert (await client.get("/v1/webhooks", headers=bob)).json()["data"] == []
    mine = (await client.get("/v1/webhooks", headers=alice)).json()["data"]
    assert [hook["id"] for hook in mine] == [created["id"]]


async def test_keys_of_one_workspace_share_its_objects(
    client: httpx.AsyncClient, make_key: KeyFactory
) -> None:
    workspace_id, first = await make_key(["webhooks.manage"])
    _, second = await make_key(["webhooks.manage"], workspace_id=workspace_id)
    created = (await client.post("/v1/webhooks", json=HOOK, headers=first)).json()
    answer = await client.get(f"/v1/webhooks/{created['id']}", headers=second)
    assert answer.status_code == 200
    assert "secret" not in answer.json()
