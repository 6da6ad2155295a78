"""``/v1/topups`` and Safaricom's callbacks, against daraja-mock running as its own process.

The mock answers OAuth, the STK push and the STK query; it sends no callbacks, so the
tests post Daraja-shaped callbacks (tests/mpesa_payloads.py), genuine, duplicate and forged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import select
from tests.daraja import DarajaMockProcess
from tests.mpesa_payloads import c2b_payment, stk_callback
from tests.support import KeyFactory

from sautikit.api import create_api
from sautikit.billing.mpesa import TopUpService
from sautikit.billing.mpesa.topups import assign_payment, callback_urls
from sautikit.config import Settings
from sautikit.db import Database
from sautikit.db.models import Event, MpesaPayment, WalletEntry
from sautikit.db.types import utcnow

SHORTCODE = "600638"
PHONE = "+254708374149"


def daraja_settings(tmp_path: Path, base_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "var",
        "secret_key": SecretStr("test-secret"),
        "public_url": "https://voice.example.co.ke",
        "daraja_consumer_key": SecretStr("test_key"),
        "daraja_consumer_secret": SecretStr("test_secret"),
        "daraja_shortcode": SHORTCODE,
        "daraja_passkey": SecretStr(
            "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"
        ),
        "daraja_base_url": base_url,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(tmp_path: Path, daraja_mock: DarajaMockProcess) -> Settings:
    return daraja_settings(tmp_path, daraja_mock.base_url)


@pytest.fixture
async def service(settings: Settings, database: Database) -> AsyncIterator[TopUpService]:
    topups = TopUpService(settings, database)
    yield topups
    await topups.aclose()


@pytest.fixture
def api_app(settings: Settings, database: Database, service: TopUpService) -> FastAPI:
    return create_api(settings, database, topups=service)


@pytest.fixture(autouse=True)
async def paid_by_default(daraja_mock: DarajaMockProcess) -> None:
    await daraja_mock.set_stk_result(0)


def urls(settings: Settings) -> dict[str, str]:
    """The callback URLs as paths on the test client."""
    public = settings.effective_daraja_callback_base_url
    return {name: url.removeprefix(public) for name, url in callback_urls(settings).items()}


async def start_topup(
    client: httpx.AsyncClient, headers: dict[str, str], amount_minor: int = 10_000
) -> dict[str, Any]:
    response = await client.post(
        "/v1/topups",
        json={
            "provider": "mpesa",
            "amount_minor": amount_minor,
            "currency": "KES",
            "phone_e164": PHONE,
        },
        headers=headers,
    )
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "pending"
    # The push is sent right after the answer: the top-up now names Daraja's push.
    topup: dict[str, Any] = (
        await client.get(f"/v1/topups/{response.json()['id']}", headers=headers)
    ).json()
    return topup


async def balance(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    body = (await client.get("/v1/wallet/balance", headers=headers)).json()
    return int(body["balance_minor"])


async def top_up_events(database: Database, workspace_id: str) -> list[dict[str, Any]]:
    async with database.transaction() as session:
        events = await session.scalars(
            select(Event)
            .where(Event.workspace_id == workspace_id, Event.kind == "wallet.top_up")
            .order_by(Event.id)
        )
        return [event.data for event in events]


async def test_an_stk_push_confirmed_by_its_callback_credits_the_wallet_once(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    settings: Settings,
    database: Database,
    daraja_mock: DarajaMockProcess,
) -> None:
    workspace_id, headers = await make_key(["wallet.read", "wallet.write"])
    topup = await start_topup(client, headers)
    assert topup["status"] == "pending" and topup["checkout_request_id"].startswith("ws_CO_")

    pushes = [r for r in await daraja_mock.requests() if "stkpush/" in str(r["path"])]
    sent: dict[str, Any] = pushes[-1]["body"]  # type: ignore[assignment]
    assert sent["Amount"] == 100 and sent["PhoneNumber"] == "254708374149"
    assert sent["BusinessShortCode"] == SHORTCODE and sent["PartyB"] == SHORTCODE
    assert sent["CallBackURL"] == callback_urls(settings)["stk"]
    assert sent["CallBackURL"].startswith("https://voice.example.co.ke/v1/topups/daraja/stk/")
    assert sent["AccountReference"] == topup["account_reference"]
    assert len(sent["Timestamp"]) == 14

    paid = stk_callback(topup["checkout_request_id"], amount_kes=100, receipt="QKX1ABC2DE")
    answer = await client.post(urls(settings)["stk"], json=paid)
    assert answer.status_code == 200
    assert answer.json() == {"ResultCode": 0, "ResultDesc": "Accepted"}
    assert await balance(client, headers) == 10_000

    # Safaricom may post the same callback again: it changes nothing.
    again = await client.post(urls(settings)["stk"], json=paid)
    assert again.json()["ResultCode"] == 0
    assert await balance(client, headers) == 10_000

    shown = (await client.get(f"/v1/topups/{topup['id']}", headers=headers)).json()
    assert shown["status"] == "confirmed" and shown["provider_reference"] == "QKX1ABC2DE"

    # Safaricom may mask the phone's middle digits; the visible ones must still match.
    second = await start_topup(client, headers)
    masked = stk_callback(second["checkout_request_id"], amount_kes=100, receipt="QKX1MASKED")
    masked["Body"]["stkCallback"]["CallbackMetadata"]["Item"][4]["Value"] = "2547****4149"
    assert (await client.post(urls(settings)["stk"], json=masked)).status_code == 200
    assert await balance(client, headers) == 20_000
    event, _ = await top_up_events(database, workspace_id)
    assert {key: event[key] for key in ("topup_id", "amount_minor", "currency")} == {
        "topup_id": topup["id"],
        "amount_minor": 10_000,
        "currency": "KES",
    }
    assert event["new_balance_minor"] == 10_000
    assert (event["provider"], event["provider_reference"]) == ("mpesa", "QKX1ABC2DE")
    entries = (await client.get("/v1/wallet/transactions", headers=headers)).json()["data"]
    assert [(e["entry_type"], e["reference"]) for e in entries] == [
        ("top_up", "QKX1MASKED"),
        ("top_up", "QKX1ABC2DE"),
    ]


async def test_a_cancelled_push_fails_with_the_reason_and_credits_nothing(
    client: httpx.AsyncClient, make_key: KeyFactory, settings: Settings
) -> None:
    _, headers = await make_key(["wallet.read", "wallet.write"])
    topup = await start_topup(client, headers)
    cancelled = stk_callback(
        topup["checkout_request_id"], result_code=1032, result_desc="Request cancelled by user"
    )
    assert (await client.post(urls(settings)["stk"], json=cancelled)).status_code == 200
    shown = (await client.get(f"/v1/topups/{topup['id']}", headers=headers)).json()
    assert shown["status"] == "failed"
    assert shown["failure_reason"] == "Request cancelled by user"
    assert await balance(client, headers) == 0


async def test_forged_callbacks_credit_nothing(
    client: httpx.AsyncClient, make_key: KeyFactory, settings: Settings, database: Database
) -> None:
    workspace_id, headers = await make_key(["wallet.read", "wallet.write"])
    topup = await start_topup(client, headers)
    checkout = topup["checkout_request_id"]
    stk = urls(settings)["stk"]

    wrong_token = await client.post(
        "/v1/topups/daraja/stk/" + "0" * 32, json=stk_callback(checkout, amount_kes=100)
    )
    assert wrong_token.status_code == 404
    unknown = await client.post(stk, json=stk_callback("ws_CO_000000000000000", result_code=1))
    assert unknown.status_code == 400 and unknown.json()["ResultCode"] == 1
    more = await client.post(stk, json=stk_callback(checkout, amount_kes=10_000))
    assert more.status_code == 400 and "amount" in more.json()["ResultDesc"]
    other_phone = await client.post(
        stk, json=stk_callback(checkout, amount_kes=100, phone=254711111111)
    )
    assert other_phone.status_code == 400 and "phone" in other_phone.json()["ResultDesc"]
    masked_other = stk_callback(checkout, amount_kes=100)
    masked_other["Body"]["stkCallback"]["CallbackMetadata"]["Item"][4]["Value"] = "2547****4140"
    assert (await client.post(stk, json=masked_other)).status_code == 400
    no_receipt = stk_callback(checkout, amount_kes=100)
    no_receipt["Body"]["stkCallback"]["CallbackMetadata"]["Item"].pop(1)
    assert (await client.post(stk, json=no_receipt)).status_code == 400
    assert (await client.post(stk, content=b"not json")).status_code == 400

    assert await balance(client, headers) == 0
    assert await top_up_events(database, workspace_id) == []
    shown = (await client.get(f"/v1/topups/{topup['id']}", headers=headers)).json()
    assert shown["status"] == "pending"

    # A receipt already credited to one push cannot pay for another.
    await client.post(stk, json=stk_callback(checkout, amount_kes=100, receipt="QKX1REUSED"))
    second = await start_topup(client, headers)
    replay = stk_callback(second["checkout_request_id"], amount_kes=100, receipt="QKX1REUSED")
    assert (await client.post(stk, json=replay)).status_code == 400
    assert await balance(client, headers) == 10_000


async def test_callbacks_from_outside_the_allow_list_are_refused(
    tmp_path: Path, database: Database, daraja_mock: DarajaMockProcess, make_key: KeyFactory
) -> None:
    settings = daraja_settings(
        tmp_path, daraja_mock.base_url, daraja_callback_allowlist=["196.201.214.0/24"]
    )
    app = create_api(settings, database)
    transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        refused = await http.post(urls(settings)["stk"], json=stk_callback("ws_CO_1"))
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "topups.source_not_allowed"
    transport = httpx.ASGITransport(app=app, client=("196.201.214.200", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        passed = await http.post(urls(settings)["stk"], json=stk_callback("ws_CO_1", result_code=1))
    assert passed.status_code == 400 and passed.json()["ResultDesc"] == "unknown CheckoutRequestID"


@pytest.mark.parametrize(
    ("result_code", "status", "reason"),
    [
        (0, "confirmed", None),
        (1032, "failed", "Request cancelled by user."),
        (1037, "failed", "DS timeout user cannot be reached."),
    ],
)
async def test_a_push_with_no_callback_is_settled_by_the_stk_query(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    service: TopUpService,
    settings: Settings,
    daraja_mock: DarajaMockProcess,
    result_code: int,
    status: str,
    reason: str | None,
) -> None:
    _, headers = await make_key(["wallet.read", "wallet.write"])
    topup = await start_topup(client, headers)
    await daraja_mock.set_stk_result(result_code)

    assert await service.settle_overdue() == 0  # not yet overdue: nothing is asked
    later = utcnow() + timedelta(seconds=settings.daraja_stk_query_after_seconds + 1)
    assert await service.settle_overdue(now=later) == 1
    shown = (await client.get(f"/v1/topups/{topup['id']}", headers=headers)).json()
    assert (shown["status"], shown["failure_reason"]) == (status, reason)
    assert await balance(client, headers) == (10_000 if result_code == 0 else 0)
    queried = [r for r in await daraja_mock.requests() if "stkpushquery" in str(r["path"])]
    assert queried[-1]["body"]["CheckoutRequestID"] == topup["checkout_request_id"]  # type: ignore[index]

    # The late callback after the query settled it credits nothing more.
    late = stk_callback(topup["checkout_request_id"], amount_kes=100, receipt="QKX1LATE00")
    assert (await client.post(urls(settings)["stk"], json=late)).status_code == 200
    assert await balance(client, headers) == 10_000
    assert await service.settle_overdue(now=later) == 0


async def test_topups_are_validated_and_confined_to_the_workspace(
    client: httpx.AsyncClient, make_key: KeyFactory
) -> None:
    _, headers = await make_key(["wallet.read", "wallet.write"])
    base = {"provider": "mpesa", "amount_minor": 10_000, "currency": "KES", "phone_e164": PHONE}
    for field, value in [
        ("amount_minor", 10_050),
        ("amount_minor", 0),
        ("phone_e164", "+255712345678"),
        ("currency", "USD"),
        ("provider", "airtel"),
    ]:
        response = await client.post("/v1/topups", json={**base, field: value}, headers=headers)
        assert response.status_code == 400, (field, value)
        assert response.json()["error"]["field"] == field
    topup = await start_topup(client, headers)

    _, stranger = await make_key(["wallet.read", "wallet.write"])
    assert (await client.get(f"/v1/topups/{topup['id']}", headers=stranger)).status_code == 404
    assert (await client.get("/v1/topups", headers=stranger)).json()["data"] == []
    listed = (await client.get("/v1/topups", headers=headers)).json()["data"]
    assert [item["id"] for item in listed] == [topup["id"]]
    _, reader = await make_key(["wallet.read"])
    refused = await client.post("/v1/topups", json=base, headers=reader)
    assert refused.status_code == 403


async def test_without_daraja_settings_topups_answer_503(
    tmp_path: Path, database: Database, make_key: KeyFactory
) -> None:
    app = create_api(Settings(data_dir=tmp_path / "var", secret_key=SecretStr("s")), database)
    _, headers = await make_key(["wallet.write"])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        response = await http.post(
            "/v1/topups",
            json={"provider": "mpesa", "amount_minor": 100, "currency": "KES", "phone_e164": PHONE},
            headers=headers,
        )
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "topups.not_configured"


async def test_a_paybill_payment_to_the_account_reference_credits_that_workspace_once(
    client: httpx.AsyncClient, make_key: KeyFactory, settings: Settings, database: Database
) -> None:
    workspace_id, headers = await make_key(["wallet.read"])
    paybill = (await client.get("/v1/topups/paybill", headers=headers)).json()
    assert paybill["shortcode"] == SHORTCODE
    reference = paybill["account_reference"]
    again = (await client.get("/v1/topups/paybill", headers=headers)).json()
    assert again["account_reference"] == reference  # fixed, not drawn anew

    validation, confirmation = urls(settings)["c2b_validation"], urls(settings)["c2b_confirmation"]
    typed = reference.lower()  # customers type it as they like
    ok = await client.post(validation, json=c2b_payment("RKTQDM7W6S", bill_ref=typed))
    assert ok.json() == {"ResultCode": "0", "ResultDesc": "Accepted"}
    unknown = await client.post(validation, json=c2b_payment("RKTQDM7W6T", bill_ref="NOSUCH"))
    assert unknown.json()["ResultCode"] == "C2B00012"
    wrong_code = c2b_payment("RKTQDM7W6U", bill_ref=reference, shortcode="111111")
    assert (await client.post(validation, json=wrong_code)).json()["ResultCode"] == "C2B00015"

    payment = c2b_payment("RKTQDM7W6S", amount="250.00", bill_ref=typed)
    for _ in range(2):  # Safaricom's retry of the same confirmation credits nothing more
        answer = await client.post(confirmation, json=payment)
        assert answer.json() == {"ResultCode": 0, "ResultDesc": "Accepted"}
    assert await balance(client, headers) == 25_000
    (listed,) = (await client.get("/v1/topups", headers=headers)).json()["data"]
    assert (listed["method"], listed["status"]) == ("paybill", "confirmed")
    assert listed["provider_reference"] == "RKTQDM7W6S"
    (event,) = await top_up_events(database, workspace_id)
    assert (event["topup_id"], event["provider_reference"]) == (listed["id"], "RKTQDM7W6S")


async def test_a_paybill_payment_with_an_unknown_reference_is_kept_for_the_operator(
    client: httpx.AsyncClient, make_key: KeyFactory, settings: Settings, database: Database
) -> None:
    workspace_id, headers = await make_key(["wallet.read"])
    confirmation = urls(settings)["c2b_confirmation"]
    payment = c2b_payment("RKTQDM7W7A", amount="500", bill_ref="invoice008")
    for _ in range(2):
        assert (await client.post(confirmation, json=payment)).json()["ResultCode"] == 0
    async with database.transaction() as session:
        (kept,) = (await session.scalars(select(MpesaPayment))).all()
        assert (kept.trans_id, kept.amount_minor, kept.status) == (
            "RKTQDM7W7A",
            50_000,
            "unmatched",
        )
        assert kept.account_reference == "INVOICE008"
        assert (await session.scalars(select(WalletEntry))).all() == []

    async with database.transaction() as session:
        topup = await assign_payment(session, kept.id, workspace_id)
    assert topup.status == "confirmed"
    assert await balance(client, headers) == 50_000
    async with database.transaction() as session:
        with pytest.raises(ValueError, match="assigned already"):
            await assign_payment(session, kept.id, workspace_id)
    # Once assigned, the same confirmation arriving again changes nothing.
    assert (await client.post(confirmation, json=payment)).json()["ResultCode"] == 0
    assert await balance(client, headers) == 50_000


async def test_a_paid_callback_for_a_push_this_database_never_stored_is_kept(
    client: httpx.AsyncClient, settings: Settings, database: Database
) -> None:
    orphan = stk_callback("ws_CO_191220191020363925", amount_kes=40, receipt="QKXORPHAN1")
    answer = await client.post(urls(settings)["stk"], json=orphan)
    assert answer.status_code == 200
    async with database.transaction() as session:
        (kept,) = (await session.scalars(select(MpesaPayment))).all()
    assert (kept.source, kept.trans_id, kept.amount_minor) == ("stk", "QKXORPHAN1", 4_000)
