"""``/v1/operator``: the operator token, and idempotent wallet credits."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import select
from tests.support import KeyFactory

from sautikit.api import create_api
from sautikit.config import Settings
from sautikit.db import Database
from sautikit.db.models import Event, Trunk

TOKEN = "op_" + "x" * 40
OPERATOR = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "var",
        secret_key=SecretStr("test-secret"),
        operator_token=SecretStr(TOKEN),
    )


async def test_without_a_configured_token_the_operator_api_is_not_there(
    database: Database, tmp_path: Path
) -> None:
    app: FastAPI = create_api(
        Settings(data_dir=tmp_path / "var", secret_key=SecretStr("s")), database
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        credit = await http.post(
            "/v1/operator/workspaces/w/credit",
            json={"amount_minor": 100, "reference": "r"},
            headers=OPERATOR,
        )
        wallet = await http.get("/v1/operator/workspaces/w/wallet", headers={})
    for response in (credit, wallet):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


async def test_a_missing_or_wrong_token_is_refused(
    client: httpx.AsyncClient, make_key: KeyFactory
) -> None:
    workspace_id, key_headers = await make_key()
    wrong = [{}, key_headers] + [
        {"Authorization": value}
        for value in ("Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer ")
    ]
    for headers in wrong:
        response = await client.post(
            f"/v1/operator/workspaces/{workspace_id}/credit",
            json={"amount_minor": 0},  # the token is checked before the body
            headers=headers,
        )
        assert response.status_code == 401, headers
        assert response.json()["error"]["code"] == "operator.invalid_token"


async def test_a_credit_tops_up_the_wallet_once_per_idempotency_key(
    client: httpx.AsyncClient, make_key: KeyFactory, database: Database
) -> None:
    workspace_id, key_headers = await make_key(["wallet.read"])
    path = f"/v1/operator/workspaces/{workspace_id}/credit"
    body = {"amount_minor": 50_000, "reference": "M-Pesa QK12ABC"}
    headers = OPERATOR | {"Idempotency-Key": "receipt-QK12ABC"}

    first = await client.post(path, json=body, headers=headers)
    assert first.status_code == 201
    entry = first.json()
    assert entry["entry_type"] == "top_up"
    assert (entry["amount_minor"], entry["balance_after_minor"]) == (50_000, 50_000)
    assert (entry["currency"], entry["reference"]) == ("KES", "M-Pesa QK12ABC")

    again = await client.post(path, json=body, headers=headers)
    assert again.status_code == 201 and again.json()["id"] == entry["id"]
    assert again.headers["Idempotent-Replayed"] == "true"

    other = await client.post(path, json=body | {"amount_minor": 5}, headers=headers)
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency.conflict"

    without_key = await client.post(path, json=body, headers=OPERATOR)
    assert without_key.json()["balance_after_minor"] == 100_000

    balance = (await client.get("/v1/wallet/balance", headers=key_headers)).json()
    assert balance["balance_minor"] == 100_000
    operator_view = await client.get(
        f"/v1/operator/workspaces/{workspace_id}/wallet", headers=OPERATOR
    )
    assert operator_view.json()["balance_minor"] == 100_000
    async with database.transaction() as session:
        kinds = (
            await session.scalars(select(Event.kind).where(Event.workspace_id == workspace_id))
        ).all()
    assert list(kinds) == ["wallet.top_up", "wallet.top_up"]


async def test_bad_credits_are_refused_in_the_envelope(
    client: httpx.AsyncClient, make_key: KeyFactory
) -> None:
    workspace_id, _ = await make_key([])
    for body, field in [
        ({"amount_minor": 0, "reference": "r"}, "amount_minor"),
        ({"amount_minor": -100, "reference": "r"}, "amount_minor"),
        ({"amount_minor": 1.5, "reference": "r"}, "amount_minor"),
        ({"amount_minor": 100}, "reference"),
        ({"amount_minor": 100, "reference": "r", "currency": "USD"}, "currency"),
    ]:
        response = await client.post(
            f"/v1/operator/workspaces/{workspace_id}/credit", json=body, headers=OPERATOR
        )
        assert response.status_code == 400, body
        error = response.json()["error"]
        assert (error["code"], error["field"]) == ("validation.invalid_field", field)


async def test_an_unknown_workspace_or_bad_key_is_refused(client: httpx.AsyncClient) -> None:
    body = {"amount_minor": 100, "reference": "r"}
    unknown = await client.post("/v1/operator/workspaces/nope/credit", json=body, headers=OPERATOR)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "workspaces.not_found"
    wallet = await client.get("/v1/operator/workspaces/nope/wallet", headers=OPERATOR)
    assert wallet.json()["error"]["code"] == "workspaces.not_found"
    long_key = OPERATOR | {"Idempotency-Key": "k" * 300}
    bad_key = await client.post("/v1/operator/workspaces/nope/credit", json=body, headers=long_key)
    assert bad_key.status_code == 400
    assert bad_key.json()["error"]["field"] == "Idempotency-Key"


async def test_the_trunks_and_their_health_are_listed_without_passwords(
    client: httpx.AsyncClient, database: Database
) -> None:
    async with database.transaction() as session:
        session.add(
            Trunk(
                name="carrier",
                host="sip.carrier.test",
                port=0,
                prefixes=["+254"],
                password_encrypted="sealed",
                health="down",
            )
        )
    answer = await client.get("/v1/operator/trunks", headers=OPERATOR)
    assert answer.status_code == 200, answer.text
    (trunk,) = answer.json()["data"]
    assert (trunk["name"], trunk["port"], trunk["health"]) == ("carrier", 0, "down")
    assert "password" not in answer.text and "sealed" not in answer.text
    assert (await client.get("/v1/operator/trunks")).status_code == 401
