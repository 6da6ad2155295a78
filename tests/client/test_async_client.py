"""``AsyncSautikit`` against the real API in process: every resource, errors, pagination,
idempotency."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from tests.client.conftest import BASE_URL, Fund, Workspace

from sautikit_sdk import (
    AsyncSautikit,
    AuthenticationError,
    ConflictError,
    InsufficientFundsError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)


async def test_an_unknown_call_raises_not_found_with_code_and_request_id(
    sdk: AsyncSautikit,
) -> None:
    with pytest.raises(NotFoundError) as raised:
        await sdk.calls.get("0190a0a0-0000-7000-8000-000000000000")
    error = raised.value
    assert (error.status, error.code) == (404, "calls.not_found")
    assert error.request_id is not None and error.request_id.startswith("req_")
    assert "calls.not_found" in str(error)


async def test_a_wrong_key_raises_authentication_error(http: httpx.AsyncClient) -> None:
    wrong = AsyncSautikit("sk_live_wrong", base_url=BASE_URL, http_client=http)
    with pytest.raises(AuthenticationError) as raised:
        await wrong.workspace.get()
    assert raised.value.status == 401
    assert raised.value.code == "api_key.invalid"


async def test_workspace_and_public_pricing(sdk: AsyncSautikit, workspace: Workspace) -> None:
    me = await sdk.workspace.get()
    assert me.id == workspace.id
    assert "calls.write" in me.scopes
    pricing = await sdk.pricing.get()
    assert pricing.currency == "KES"
    assert isinstance(pricing.number_rental_monthly_minor, int)
    assert any(rate.prefix.startswith("+254") for rate in pricing.outbound)


async def test_webhooks_round_trip_and_the_secret_is_shown_once(sdk: AsyncSautikit) -> None:
    created = await sdk.webhooks.create(url="https://app.example.com/events", events=["*"])
    assert created.secret.startswith("whsec_")
    fetched = await sdk.webhooks.get(created.id)
    assert (fetched.url, fetched.events) == ("https://app.example.com/events", ["*"])
    assert "secret" not in fetched.model_dump()
    assert [hook.id async for hook in sdk.webhooks.list()] == [created.id]
    await sdk.webhooks.delete(created.id)
    with pytest.raises(NotFoundError) as raised:
        await sdk.webhooks.get(created.id)
    assert raised.value.code == "webhooks.not_found"


async def test_a_bad_field_raises_validation_error_naming_it(sdk: AsyncSautikit) -> None:
    with pytest.raises(ValidationError) as raised:
        await sdk.webhooks.create(url="https://app.example.com/events", events=["call.nope"])
    assert raised.value.code == "validation.invalid_field"
    assert raised.value.field == "events"


async def test_iteration_follows_next_cursor_across_every_page(sdk: AsyncSautikit) -> None:
    made = [
        (await sdk.webhooks.create(url=f"https://app.example.com/{n}", events=["*"])).id
        for n in range(7)
    ]
    listed = [hook.id async for hook in sdk.webhooks.list(limit=3)]
    assert listed == list(reversed(made))  # newest first, all seven over three pages
    first = await sdk.webhooks.list(limit=3).page()
    assert len(first.data) == 3 and first.next_cursor is not None
    second = await sdk.webhooks.list(limit=3).page(first.next_cursor)
    assert [hook.id for hook in second.data] == listed[3:6]


async def test_the_same_idempotency_key_returns_the_same_object(sdk: AsyncSautikit) -> None:
    first = await sdk.webhooks.create(
        url="https://app.example.com/events", events=["*"], idempotency_key="hook-1"
    )
    again = await sdk.webhooks.create(
        url="https://app.example.com/events", events=["*"], idempotency_key="hook-1"
    )
    assert again == first
    assert len([hook async for hook in sdk.webhooks.list()]) == 1
    with pytest.raises(ConflictError) as raised:
        await sdk.webhooks.create(
            url="https://app.example.com/other", events=["*"], idempotency_key="hook-1"
        )
    assert raised.value.code == "idempotency.conflict"


async def test_each_create_without_a_key_is_a_new_object(sdk: AsyncSautikit) -> None:
    one = await sdk.webhooks.create(url="https://app.example.com/events", events=["*"])
    two = await sdk.webhooks.create(url="https://app.example.com/events", events=["*"])
    assert one.id != two.id


async def test_numbers_claim_route_credentials_release_with_the_wallet(
    sdk: AsyncSautikit, inventory: dict[str, str], fund: Fund
) -> None:
    available = [number async for number in sdk.numbers.available(prefix="+25420")]
    assert {number.number for number in available} == {"+254201000001", "+254201000002"}
    assert all(number.monthly_price_minor == 10000 for number in available)

    number_id = inventory["+254201000001"]
    with pytest.raises(InsufficientFundsError) as short:
        await sdk.numbers.claim(number_id)
    assert (short.value.status, short.value.code) == (402, "wallet.insufficient_funds")

    await fund(25000)
    claimed = await sdk.numbers.claim(number_id)
    assert (claimed.number, claimed.status) == ("+254201000001", "active")
    balance = await sdk.wallet.balance()
    assert (balance.balance_minor, balance.currency) == (15000, "KES")
    entries = [entry async for entry in sdk.wallet.transactions()]
    assert [(entry.entry_type, entry.amount_minor) for entry in entries] == [
        ("number_rental", -10000),
        ("top_up", 25000),
    ]
    assert [entry.id async for entry in sdk.wallet.transactions(entry_type="top_up")] == [
        entries[1].id
    ]

    routed = await sdk.numbers.update_routing(
        number_id, voice_url="https://app.example.com/voice", events_url="https://app.example.com/e"
    )
    assert routed.voice_url == "https://app.example.com/voice"
    cleared = await sdk.numbers.update_routing(number_id, events_url=None)
    assert (cleared.voice_url, cleared.events_url) == ("https://app.example.com/voice", None)
    assert (await sdk.numbers.get(number_id)).events_url is None
    assert [number.id async for number in sdk.numbers.list()] == [number_id]

    login = await sdk.sip_credentials.create(number_id, username="desk-1")
    assert login.password and login.username == "desk-1"
    rotated = await sdk.sip_credentials.rotate(number_id, login.id)
    assert rotated.replaces == login.id and rotated.password != login.password
    listed = {item.id async for item in sdk.sip_credentials.list(number_id)}
    assert listed == {login.id, rotated.id}
    await sdk.sip_credentials.delete(number_id, login.id)
    assert (await sdk.sip_credentials.get(number_id, login.id)).status == "revoked"

    kinds = [event.kind async for event in sdk.events.list()]
    assert "number.provisioned" in kinds

    await sdk.numbers.release(number_id)
    with pytest.raises(NotFoundError):
        await sdk.numbers.get(number_id)


async def test_calls_create_refuses_what_it_cannot_dial(
    sdk: AsyncSautikit, inventory: dict[str, str], fund: Fund
) -> None:
    answer_url = "https://app.example.com/calls/connect-and-record"
    with pytest.raises(PermissionDeniedError) as not_ours:
        await sdk.calls.create(to="+254722999000", from_="+254201000001", action_url=answer_url)
    assert (not_ours.value.code, not_ours.value.field) == ("numbers.not_owned", "from")

    await fund(10000)
    await sdk.numbers.claim(inventory["+254201000001"])  # the wallet is now empty
    with pytest.raises(ValidationError) as bad_url:
        await sdk.calls.create(to="+254722999000", from_="+254201000001", action_url="nope")
    assert bad_url.value.field == "action_url"
    with pytest.raises(PermissionDeniedError) as abroad:
        await sdk.calls.create(to="+15551234567", from_="+254201000001", action_url=answer_url)
    assert abroad.value.code == "destinations.not_allowed"
    with pytest.raises(InsufficientFundsError):
        await sdk.calls.create(to="+254722999000", from_="+254201000001", action_url=answer_url)
    assert [call async for call in sdk.calls.list(status="completed")] == []
    with pytest.raises(NotFoundError) as no_call:
        await sdk.calls.recording_url("0190a0a0-0000-7000-8000-000000000000")
    assert no_call.value.code == "calls.not_found"


async def test_settings_read_and_change_only_what_is_given(sdk: AsyncSautikit) -> None:
    before = await sdk.settings.get()
    assert before.destination_allowlist == ["+254"]
    changed = await sdk.settings.update(retention_days=30, sip_host_allowlist=("pbx.example.com",))
    assert (changed.retention_days, changed.sip_host_allowlist) == (30, ["pbx.example.com"])
    assert changed.destination_allowlist == before.destination_allowlist
    assert changed.low_balance_threshold_minor == before.low_balance_threshold_minor


async def test_recordings_and_conferences_answer_in_their_shapes(sdk: AsyncSautikit) -> None:
    assert [recording async for recording in sdk.recordings.list()] == []
    with pytest.raises(NotFoundError) as missing:
        await sdk.recordings.get("0190a0a0-0000-7000-8000-000000000000")
    assert missing.value.code == "recordings.not_found"
    assert [room async for room in sdk.conferences.list()] == []
    with pytest.raises(NotFoundError) as no_room:
        await sdk.conferences.get("standup room")
    assert no_room.value.code == "conferences.not_found"
    assert [queue async for queue in sdk.queues.list()] == []
    with pytest.raises(NotFoundError) as no_queue:
        await sdk.queues.get("support")
    assert no_queue.value.code == "queues.not_found"
    with pytest.raises(NotFoundError):
        await sdk.queues.remove("support", "0190a0a0-0000-7000-8000-000000000000")


async def test_events_deliveries_and_redelivery(
    sdk: AsyncSautikit, inventory: dict[str, str], fund: Fund
) -> None:
    await sdk.webhooks.create(url="https://app.example.com/events", events=["*"])
    await fund(10000)
    await sdk.numbers.claim(inventory["+254201000002"])
    (event,) = [event async for event in sdk.events.list(kind="number.provisioned")]
    assert (await sdk.events.get(event.id)).data == event.data
    redelivered = await sdk.events.redeliver(event.id)
    assert {delivery.url for delivery in redelivered} == {"https://app.example.com/events"}
    listed = [delivery async for delivery in sdk.events.deliveries(event.id)]
    assert {delivery.id for delivery in redelivered} <= {delivery.id for delivery in listed}


class _AnswerLostOnce(httpx.AsyncBaseTransport):
    """Lets the first POST reach the app, then loses its answer, as a dropped connection
    does; records the Idempotency-Key of every POST."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.keys: list[str | None] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.method == "POST":
            self.keys.append(request.headers.get("Idempotency-Key"))
            if len(self.keys) == 1:
                await response.aread()
                raise httpx.ReadError("connection reset", request=request)
        return response


async def test_a_post_whose_answer_was_lost_is_retried_once_with_the_same_key(
    api_app: FastAPI, workspace: Workspace
) -> None:
    lossy = _AnswerLostOnce(httpx.ASGITransport(app=api_app))
    async with httpx.AsyncClient(transport=lossy) as http:
        sdk = AsyncSautikit(workspace.api_key, base_url=BASE_URL, http_client=http, retry_backoff=0)
        created = await sdk.webhooks.create(url="https://app.example.com/events", events=["*"])
        assert len(lossy.keys) == 2 and lossy.keys[0] == lossy.keys[1] is not None
        assert [hook.id async for hook in sdk.webhooks.list()] == [created.id]
