"""``/v1/wallet``: balance and ledger pages, scoped to the key's workspace."""

from __future__ import annotations

from typing import Any

import httpx
from tests.support import KeyFactory

from sautikit.billing import ledger
from sautikit.billing.quota import open_quota
from sautikit.config import Settings
from sautikit.db import Database
from sautikit.db.models import Call


async def _credit(database: Database, workspace_id: str, amount: int, key: str) -> None:
    async with database.transaction() as session:
        await ledger.top_up(session, workspace_id, amount, idempotency_key=key, reference=key)


async def test_a_new_wallet_reads_as_empty_not_as_an_error(
    client: httpx.AsyncClient, make_key: KeyFactory
) -> None:
    _, headers = await make_key(["wallet.read"])
    response = await client.get("/v1/wallet/balance", headers=headers)
    assert response.status_code == 200
    assert response.json() == {
        "balance_minor": 0,
        "available_minor": 0,
        "currency": "KES",
        "low_balance_threshold_minor": 10_000,
    }


async def test_the_balance_shows_what_live_calls_hold(
    client: httpx.AsyncClient, make_key: KeyFactory, database: Database
) -> None:
    workspace_id, headers = await make_key(["wallet.read"])
    await _credit(database, workspace_id, 5_000, "mpesa-1")
    async with database.transaction() as session:
        call = Call(
            workspace_id=workspace_id,
            direction="outbound",
            from_number="+254700000001",
            to_number="+254711000000",
        )
        session.add(call)
        await session.flush()
        await open_quota(session, workspace_id, call.id, 300, seconds=120)
    body = (await client.get("/v1/wallet/balance", headers=headers)).json()
    assert (body["balance_minor"], body["available_minor"]) == (5_000, 4_400)


async def test_the_ledger_pages_newest_first(
    client: httpx.AsyncClient, make_key: KeyFactory, database: Database
) -> None:
    workspace_id, headers = await make_key(["wallet.read"])
    for n in range(5):
        await _credit(database, workspace_id, 100 * (n + 1), f"pay-{n}")
    async with database.transaction() as session:
        await ledger.charge_transcription(session, workspace_id, "rec-1", 60, settings=Settings())

    seen: list[dict[str, Any]] = []
    params: dict[str, str | int] = {"limit": 2}
    while True:
        page = (await client.get("/v1/wallet/transactions", headers=headers, params=params)).json()
        seen += page["data"]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert [entry["amount_minor"] for entry in seen] == [-100, 500, 400, 300, 200, 100]
    assert [entry["balance_after_minor"] for entry in seen] == [1_400, 1_500, 1_000, 600, 300, 100]
    newest = seen[0]
    assert newest["entry_type"] == "transcription" and newest["currency"] == "KES"
    assert newest["idempotency_key"] == "transcription:rec-1"

    only = await client.get(
        "/v1/wallet/transactions", headers=headers, params={"entry_type": "transcription"}
    )
    assert [entry["id"] for entry in only.json()["data"]] == [newest["id"]]


async def test_another_workspaces_ledger_is_invisible(
    client: httpx.AsyncClient, make_key: KeyFactory, database: Database
) -> None:
    theirs, _ = await make_key(["wallet.read"])
    await _credit(database, theirs, 9_999, "theirs")
    _, headers = await make_key(["wallet.read"])
    page = (await client.get("/v1/wallet/transactions", headers=headers)).json()
    assert page == {"data": [], "next_cursor": None}
    assert (await client.get("/v1/wallet/balance", headers=headers)).json()["balance_minor"] == 0


async def test_keys_without_wallet_read_and_bad_queries_are_refused(
    client: httpx.AsyncClient, make_key: KeyFactory
) -> None:
    _, calls_only = await make_key(["calls.read"])
    for path in ("/v1/wallet/balance", "/v1/wallet/transactions"):
        denied = await client.get(path, headers=calls_only)
        assert denied.status_code == 403
        assert denied.json()["error"]["code"] == "api_key.scope_denied"
        missing = await client.get(path)
        assert missing.status_code == 401
        assert missing.json()["error"]["code"] == "auth.missing_key"

    _, headers = await make_key(["wallet.read"])
    for params, field in (({"entry_type": "gift"}, "entry_type"), ({"cursor": "xyz"}, "cursor")):
        bad = await client.get("/v1/wallet/transactions", headers=headers, params=params)
        assert bad.status_code == 400
        error = bad.json()["error"]
        assert (error["code"], error["field"]) == ("validation.invalid_field", field)
        assert error["request_id"].startswith("req_")
