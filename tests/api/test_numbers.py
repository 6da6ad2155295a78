"""``/v1/numbers``: inventory, claim (with money and races), routing, release, isolation."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import select
from tests.support import KeyFactory

from sautikit.billing import ledger
from sautikit.billing.numbers import import_inventory, parse_inventory
from sautikit.db import Database
from sautikit.db.models import Event, Number, SipCredential

INVENTORY = (
    b"number,monthly_price_minor,capabilities\n"
    b"+254201000001,10000,voice\n"
    b"+254201000002,10000,voice;sms\n"
    b"+254711000003,25000,voice\n"
)


@pytest.fixture
async def numbers(database: Database) -> dict[str, str]:
    """The inventory loaded; e164 → id."""
    async with database.transaction() as session:
        await import_inventory(session, parse_inventory(INVENTORY))
        return dict((await session.execute(select(Number.e164, Number.id))).all())


async def _fund(database: Database, workspace_id: str, amount_minor: int) -> None:
    async with database.transaction() as session:
        await ledger.top_up(session, workspace_id, amount_minor, idempotency_key="test-top-up")


def _error(answer: httpx.Response, status: int) -> str:
    assert answer.status_code == status, answer.text
    body = answer.json()["error"]
    assert body["request_id"].startswith("req_")
    return body["code"]


async def test_available_lists_the_inventory_with_prices(
    client: httpx.AsyncClient, make_key: KeyFactory, numbers: dict[str, str]
) -> None:
    _, key = await make_key(["numbers.read"])
    answer = await client.get("/v1/numbers/available", headers=key)
    assert answer.status_code == 200
    listed = {item["number"]: item for item in answer.json()["data"]}
    assert set(listed) == set(numbers)
    assert listed["+254711000003"] == {
        "id": numbers["+254711000003"],
        "number": "+254711000003",
        "capabilities": ["voice"],
        "monthly_price_minor": 25000,
        "currency": "KES",
    }
    for prefix in ("+25420", "25420", " 25420"):  # an unencoded '+' arrives as a space
        answer = await client.get("/v1/numbers/available", params={"prefix": prefix}, headers=key)
        assert sorted(item["number"] for item in answer.json()["data"]) == [
            "+254201000001",
            "+254201000002",
        ]
    answer = await client.get("/v1/numbers/available?capability=sms", headers=key)
    assert [item["number"] for item in answer.json()["data"]] == ["+254201000002"]
    answer = await client.get("/v1/numbers/available?prefix=abc", headers=key)
    assert _error(answer, 400) == "validation.invalid_field"
    assert answer.json()["error"]["field"] == "prefix"


async def test_claim_debits_the_first_month_and_answers_the_active_number(
    client: httpx.AsyncClient, make_key: KeyFactory, numbers: dict[str, str], database: Database
) -> None:
    workspace_id, key = await make_key(["numbers.read", "numbers.write"])
    await _fund(database, workspace_id, 30_000)
    number_id = numbers["+254711000003"]
    answer = await client.post(f"/v1/numbers/{number_id}/claim", headers=key)
    assert answer.status_code == 200, answer.text
    claimed = answer.json()
    assert (claimed["id"], claimed["status"], claimed["number"]) == (
        number_id,
        "active",
        "+254711000003",
    )
    assert claimed["paid_until"] > claimed["claimed_at"]
    async with database.transaction() as session:
        assert await ledger.balance(session, workspace_id) == 5_000
        kinds = (
            await session.scalars(select(Event.kind).where(Event.workspace_id == workspace_id))
        ).all()
    assert "number.provisioned" in kinds

    available = (await client.get("/v1/numbers/available", headers=key)).json()["data"]
    assert number_id not in [item["id"] for item in available]
    mine = (await client.get("/v1/numbers", headers=key)).json()
    assert [item["id"] for item in mine["data"]] == [number_id]
    assert (await client.get(f"/v1/numbers/{number_id}", headers=key)).json() == claimed

    again = await client.post(f"/v1/numbers/{number_id}/claim", headers=key)
    assert _error(again, 409) == "numbers.not_available"
    unknown = await client.post("/v1/numbers/nope/claim", headers=key)
    assert _error(unknown, 404) == "numbers.not_found"


async def test_a_short_wallet_answers_402_and_claims_nothing(
    client: httpx.AsyncClient, make_key: KeyFactory, numbers: dict[str, str], database: Database
) -> None:
    workspace_id, key = await make_key(["numbers.read", "numbers.write"])
    await _fund(database, workspace_id, 24_999)
    number_id = numbers["+254711000003"]
    answer = await client.post(f"/v1/numbers/{number_id}/claim", headers=key)
    assert _error(answer, 402) == "wallet.insufficient_funds"
    available = (await client.get("/v1/numbers/available", headers=key)).json()["data"]
    assert number_id in [item["id"] for item in available]
    async with database.transaction() as session:
        assert await ledger.balance(session, workspace_id) == 24_999


async def test_concurrent_claims_through_the_api_have_one_winner(
    client: httpx.AsyncClient, make_key: KeyFactory, numbers: dict[str, str], database: Database
) -> None:
    keys = []
    for _ in range(5):
        workspace_id, key = await make_key(["numbers.write"])
        await _fund(database, workspace_id, 10_000)
        keys.append(key)
    number_id = numbers["+254201000001"]
    answers = await asyncio.gather(
        *(client.post(f"/v1/numbers/{number_id}/claim", headers=key) for key in keys)
    )
    assert sorted(answer.status_code for answer in answers) == [200, 409, 409, 409, 409]
    assert all(
        answer.json()["error"]["code"] == "numbers.not_available"
        for answer in answers
        if answer.status_code == 409
    )


async def test_an_idempotent_claim_is_charged_once(
    client: httpx.AsyncClient, make_key: KeyFactory, numbers: dict[str, str], database: Database
) -> None:
    workspace_id, key = await make_key(["numbers.write"])
    await _fund(database, workspace_id, 30_000)
    url = f"/v1/numbers/{numbers['+254201000002']}/claim"
    headers = {**key, "Idempotency-Key": "claim-1"}
    first = await client.post(url, headers=headers)
    second = await client.post(url, headers=headers)
    assert first.status_code == second.status_code == 200
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    async with database.transaction() as session:
        assert await ledger.balance(session, workspace_id) == 20_000


async def test_another_workspaces_number_answers_404(
    client: httpx.AsyncClient, make_key: KeyFactory, numbers: dict[str, str], database: Database
) -> None:
    owner_id, owner = await make_key(["numbers.read", "numbers.write"])
    _, stranger = await make_key(["numbers.read", "numbers.write", "sip.manage"])
    await _fund(database, owner_id, 10_000)
    number_id = numbers["+254201000001"]
    assert (await client.post(f"/v1/numbers/{number_id}/claim", headers=owner)).status_code == 200

    attempts = [
        ("GET", f"/v1/numbers/{number_id}", None),
        ("PATCH", f"/v1/numbers/{number_id}/routing", {"voice_url": "https://evil.example/"}),
        ("DELETE", f"/v1/numbers/{number_id}", None),
        ("POST", f"/v1/numbers/{number_id}/sip-credentials", None),
        ("GET", f"/v1/numbers/{number_id}/sip-credentials", None),
    ]
    for method, path, body in attempts:
        answer = await client.request(method, path, json=body, headers=stranger)
        assert _error(answer, 404) == "numbers.not_found"
        assert "+254201000001" not in answer.text
    assert (await client.get("/v1/numbers", headers=stranger)).json()["data"] == []

    unclaimed = await client.get(f"/v1/numbers/{numbers['+254201000002']}", headers=stranger)
    assert _error(unclaimed, 404) == "numbers.not_owned"
    still_owned = await client.get(f"/v1/numbers/{number_id}", headers=owner)
    assert still_owned.json()["voice_url"] is None


async def test_routing_changes_only_the_fields_sent(
    client: httpx.AsyncClient, make_key: KeyFactory, numbers: dict[str, str], database: Database
) -> None:
    workspace_id, key = await make_key(["numbers.read", "numbers.write"])
    await _fund(database, workspace_id, 10_000)
    number_id = numbers["+254201000001"]
    await client.post(f"/v1/numbers/{number_id}/claim", headers=key)
    path = f"/v1/numbers/{number_id}/routing"

    answer = await client.patch(
        path,
        json={
            "voice_url": "https://app.example.com/voice",
            "voice_method": "GET",
            "events_url": "https://app.example.com/events",
        },
        headers=key,
    )
    assert answer.status_code == 200, answer.text
    routed = answer.json()
    assert (routed["voice_url"], routed["voice_method"], routed["events_url"]) == (
        "https://app.example.com/voice",
        "GET",
        "https://app.example.com/events",
    )
    answer = await client.patch(
        path, json={"fallback_url": "http://backup.example.com/", "events_url": None}, headers=key
    )
    routed = answer.json()
    assert routed["voice_url"] == "https://app.example.com/voice"
    assert routed["fallback_url"] == "http://backup.example.com/"
    assert routed["events_url"] is None
    assert routed["callback_encoding"] is None  # the workspace's choice
    answer = await client.patch(path, json={"callback_encoding": "json"}, headers=key)
    assert answer.json()["callback_encoding"] == "json"
    assert answer.json()["voice_url"] == "https://app.example.com/voice"

    for body, field in [
        ({"callback_encoding": "xml"}, "callback_encoding"),
        ({"voice_url": "ftp://app.example.com/voice"}, "voice_url"),
        ({"voice_url": "not a url"}, "voice_url"),
        ({"voice_method": "PUT"}, "voice_method"),
        ({"events_url": "https://x.example/" + "a" * 2048}, "events_url"),
        ({"voice_urll": "https://app.example.com/"}, "voice_urll"),
    ]:
        answer = await client.patch(path, json=body, headers=key)
        assert _error(answer, 400) == "validation.invalid_field"
        assert answer.json()["error"]["field"] == field


async def test_release_returns_the_number_to_the_inventory(
    client: httpx.AsyncClient, make_key: KeyFactory, numbers: dict[str, str], database: Database
) -> None:
    workspace_id, key = await make_key(["numbers.read", "numbers.write", "sip.manage"])
    await _fund(database, workspace_id, 10_000)
    number_id = numbers["+254201000001"]
    await client.post(f"/v1/numbers/{number_id}/claim", headers=key)
    await client.patch(
        f"/v1/numbers/{number_id}/routing",
        json={"voice_url": "https://app.example.com/voice"},
        headers=key,
    )
    credential = (await client.post(f"/v1/numbers/{number_id}/sip-credentials", headers=key)).json()

    answer = await client.delete(f"/v1/numbers/{number_id}", headers=key)
    assert answer.status_code == 204
    assert (await client.get("/v1/numbers", headers=key)).json()["data"] == []
    available = (await client.get("/v1/numbers/available", headers=key)).json()["data"]
    assert number_id in [item["id"] for item in available]
    gone = await client.get(f"/v1/numbers/{number_id}", headers=key)
    assert _error(gone, 404) == "numbers.not_owned"
    async with database.transaction() as session:
        number = await session.get(Number, number_id)
        assert number is not None and number.voice_url is None
        released = await session.scalar(select(Event).where(Event.kind == "number.released"))
        assert released is not None and released.data["number_id"] == number_id
        revoked = await session.get(SipCredential, credential["id"])
        assert revoked is not None and revoked.revoked_at is not None


async def test_claiming_needs_numbers_write(
    client: httpx.AsyncClient, make_key: KeyFactory, numbers: dict[str, str]
) -> None:
    _, key = await make_key(["numbers.read"])
    answer = await client.post(f"/v1/numbers/{numbers['+254201000001']}/claim", headers=key)
    assert _error(answer, 403) == "api_key.scope_denied"
