"""``/v1/keys`` (a workspace's own keys, with ``keys.manage``) and the operator's
workspaces and keys: nothing a developer needs takes a shell on the server."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from tests.support import KeyFactory

from sautikit.config import Settings

TOKEN = "op_" + "k" * 40
OPERATOR = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "var",
        secret_key=SecretStr("test-secret"),
        operator_token=SecretStr(TOKEN),
    )


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def test_a_key_makes_lists_and_revokes_keys_of_its_workspace(
    client: httpx.AsyncClient, make_key: KeyFactory
) -> None:
    _, manager = await make_key(["keys.manage", "calls.read", "calls.write"])
    made = await client.post(
        "/v1/keys", json={"name": "worker", "scopes": ["calls.read"]}, headers=manager
    )
    assert made.status_code == 201, made.text
    key = made.json()
    assert key["secret"].startswith("sk_live_") and key["secret"].startswith(key["prefix"])
    assert (key["name"], key["scopes"], key["revoked_at"]) == ("worker", ["calls.read"], None)
    worker = _bearer(key["secret"])
    assert (await client.get("/v1/calls", headers=worker)).status_code == 200

    listed = (await client.get("/v1/keys", headers=manager)).json()["data"]
    assert key["id"] in [k["id"] for k in listed] and len(listed) == 2
    assert all("secret" not in k for k in listed)
    shown = (await client.get(f"/v1/keys/{key['id']}", headers=manager)).json()
    assert "secret" not in shown and shown["prefix"] == key["prefix"]

    assert (await client.delete(f"/v1/keys/{key['id']}", headers=manager)).status_code == 204
    refused = await client.get("/v1/calls", headers=worker)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "api_key.revoked"
    again = (await client.get(f"/v1/keys/{key['id']}", headers=manager)).json()
    assert again["revoked_at"] is not None


async def test_keys_need_keys_manage_and_grant_no_more_than_the_maker_holds(
    client: httpx.AsyncClient, make_key: KeyFactory
) -> None:
    _, reader = await make_key(["calls.read"])
    for answer in (
        await client.get("/v1/keys", headers=reader),
        await client.post("/v1/keys", json={"scopes": ["calls.read"]}, headers=reader),
    ):
        assert answer.status_code == 403
        assert answer.json()["error"]["code"] == "api_key.scope_denied"
    _, manager = await make_key(["keys.manage", "calls.read"])
    wider = await client.post(
        "/v1/keys", json={"scopes": ["calls.read", "wallet.write"]}, headers=manager
    )
    assert wider.status_code == 403
    assert "wallet.write" in wider.json()["error"]["message"]
    unknown = await client.post("/v1/keys", json={"scopes": ["calls.rede"]}, headers=manager)
    assert unknown.status_code == 400
    assert unknown.json()["error"]["code"] == "validation.invalid_field"


async def test_another_workspace_s_key_is_not_found(
    client: httpx.AsyncClient, make_key: KeyFactory
) -> None:
    _, theirs = await make_key(["keys.manage"])
    _, ours = await make_key(["keys.manage"])
    their_id = (await client.get("/v1/keys", headers=theirs)).json()["data"][0]["id"]
    for answer in (
        await client.get(f"/v1/keys/{their_id}", headers=ours),
        await client.delete(f"/v1/keys/{their_id}", headers=ours),
    ):
        assert answer.status_code == 404
        assert answer.json()["error"]["code"] == "api_keys.not_found"
    assert (await client.get(f"/v1/keys/{their_id}", headers=theirs)).json()["revoked_at"] is None


async def test_the_operator_sets_up_a_tenant_over_http(client: httpx.AsyncClient) -> None:
    made = await client.post("/v1/operator/workspaces", json={"name": "Acme"}, headers=OPERATOR)
    assert made.status_code == 201, made.text
    workspace = made.json()
    assert workspace["name"] == "Acme"
    listed = (await client.get("/v1/operator/workspaces", headers=OPERATOR)).json()["data"]
    assert workspace["id"] in [w["id"] for w in listed]
    shown = await client.get(f"/v1/operator/workspaces/{workspace['id']}", headers=OPERATOR)
    assert shown.json() == workspace

    key = await client.post(
        f"/v1/operator/workspaces/{workspace['id']}/keys",
        json={"name": "owner", "scopes": ["keys.manage", "wallet.read"]},
        headers=OPERATOR,
    )
    assert key.status_code == 201, key.text
    owner = _bearer(key.json()["secret"])
    assert (await client.get("/v1/workspace", headers=owner)).json()["id"] == workspace["id"]
    credit = await client.post(
        f"/v1/operator/workspaces/{workspace['id']}/credit",
        json={"amount_minor": 50_000, "reference": "bank transfer 7781"},
        headers=OPERATOR,
    )
    assert credit.status_code == 201
    balance = (await client.get("/v1/wallet/balance", headers=owner)).json()
    assert balance["balance_minor"] == 50_000

    keys = await client.get(f"/v1/operator/workspaces/{workspace['id']}/keys", headers=OPERATOR)
    assert [k["id"] for k in keys.json()["data"]] == [key.json()["id"]]
    revoked = await client.delete(f"/v1/operator/keys/{key.json()['id']}", headers=OPERATOR)
    assert revoked.status_code == 204
    assert (await client.get("/v1/workspace", headers=owner)).status_code == 401


async def test_operator_routes_refuse_keys_and_unknown_things(
    client: httpx.AsyncClient, make_key: KeyFactory
) -> None:
    _, key = await make_key()
    assert (await client.get("/v1/operator/workspaces", headers=key)).status_code == 401
    missing = "0192f3c4-0000-7000-8000-000000000000"
    for answer in (
        await client.get(f"/v1/operator/workspaces/{missing}", headers=OPERATOR),
        await client.post(
            f"/v1/operator/workspaces/{missing}/keys",
            json={"scopes": ["calls.read"]},
            headers=OPERATOR,
        ),
        await client.delete(f"/v1/operator/keys/{missing}", headers=OPERATOR),
    ):
        assert answer.status_code == 404, answer.text
    blank = await client.post("/v1/operator/workspaces", json={"name": ""}, headers=OPERATOR)
    assert blank.status_code == 400
