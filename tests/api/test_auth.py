"""Bearer keys and scopes (SPEC §1): who may call, and what they are told when refused."""

from __future__ import annotations

import httpx
import pytest
from tests.support import KeyFactory

from sautikit import accounts
from sautikit.db import Database


async def test_missing_key_is_refused(client: httpx.AsyncClient) -> None:
    answer = await client.get("/v1/webhooks")
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "auth.missing_key"


@pytest.mark.parametrize(
    "header", ["Bearer sk_live_not-a-real-key", "Basic dXNlcjpwYXNz", "Bearer ", "sk_live_x"]
)
async def test_invalid_key_is_refused(client: httpx.AsyncClient, header: str) -> None:
    answer = await client.get("/v1/webhooks", headers={"Authorization": header})
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "api_key.invalid"


async def test_revoked_key_is_refused(
    client: httpx.AsyncClient, make_key: KeyFactory, database: Database
) -> None:
    _, headers = await make_key(["webhooks.manage"])
    assert (await client.get("/v1/webhooks", headers=headers)).status_code == 200
    async with database.transaction() as session:
        (key,) = [
            key
            for key in await accounts.list_api_keys(session)
            if key.key_hash == accounts.hash_api_key(headers["Authorization"].split()[1])
        ]
        await accounts.revoke_api_key(session, key.id)
    answer = await client.get("/v1/webhooks", headers=headers)
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "api_key.revoked"


async def test_missing_scope_is_refused(client: httpx.AsyncClient, make_key: KeyFactory) -> None:
    _, headers = await make_key(["calls.read"])
    answer = await client.get("/v1/webhooks", headers=headers)
    assert answer.status_code == 403
    error = answer.json()["error"]
    assert error["code"] == "api_key.scope_denied"
    assert "webhooks.manage" in error["message"]


async def test_any_valid_key_sees_its_workspace(
    client: httpx.AsyncClient, make_key: KeyFactory
) -> None:
    workspace_id, headers = await make_key(["calls.read"])
    answer = await client.get("/v1/workspace", headers=headers)
    assert answer.status_code == 200
    assert answer.json()["id"] == workspace_id
    assert answer.json()["scopes"] == ["calls.read"]


async def test_unknown_scope_is_refused_when_the_key_is_made(database: Database) -> None:
    async with database.transaction() as session:
        workspace = await accounts.create_workspace(session, "w")
        with pytest.raises(accounts.UnknownScopeError, match=r"calls\.delete"):
            await accounts.create_api_key(session, workspace.id, ["calls.read", "calls.delete"])


async def test_only_the_hash_of_a_key_is_stored(database: Database) -> None:
    async with database.transaction() as session:
        workspace = await accounts.create_workspace(session, "w")
        created = await accounts.create_api_key(session, workspace.id, ["calls.read"])
    assert created.secret.startswith("sk_live_")
    async with database.transaction() as session:
        (stored,) = await accounts.list_api_keys(session, workspace.id)
    assert created.secret not in (stored.key_hash, stored.prefix)
    assert stored.key_hash == accounts.hash_api_key(created.secret)


async def test_the_signing_secret_is_shown_to_webhook_managers(
    client: httpx.AsyncClient, make_key: KeyFactory
) -> None:
    workspace_id, manager = await make_key(["webhooks.manage"])
    _, reader = await make_key(["calls.read"], workspace_id=workspace_id)
    secret = (await client.get("/v1/workspace", headers=manager)).json()["signing_secret"]
    assert secret.startswith("whsec_")
    assert (await client.get("/v1/workspace", headers=manager)).json()["signing_secret"] == secret
    assert (await client.get("/v1/workspace", headers=reader)).json()["signing_secret"] is None
