"""``/v1/events``: the event log, deliveries with their attempts, and redelivery."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from tests.events.support import Receiver
from tests.support import KeyFactory

from sautikit.config import Settings
from sautikit.db import Database
from sautikit.db.models import Call, WebhookSubscription
from sautikit.events.delivery import DeliveryWorker
from sautikit.events.outbox import record_event
from sautikit.events.schedule import RetrySchedule


async def _event(
    database: Database,
    workspace_id: str,
    kind: str = "call.completed",
    *,
    call_id: str | None = None,
    target_url: str | None = None,
) -> str:
    async with database.transaction() as session:
        event = await record_event(
            session,
            workspace_id=workspace_id,
            kind=kind,
            data={"note": kind},
            call_id=call_id,
            target_url=target_url,
        )
        return event.id


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    started = await Receiver().start()
    yield started
    await started.close()


def _worker(
    database: Database, tmp_path: Path, schedule: RetrySchedule | None = None
) -> DeliveryWorker:
    # Receivers listen on 127.0.0.1, which only the operator's switch lets deliveries reach.
    settings = Settings(
        data_dir=tmp_path / "worker", secret_key=SecretStr("s"), allow_private_http=True
    )
    return DeliveryWorker(database, settings, schedule=schedule)


async def test_the_log_lists_events_newest_first_with_filters(
    client: httpx.AsyncClient, database: Database, make_key: KeyFactory
) -> None:
    workspace_id, headers = await make_key(["webhooks.manage"])
    async with database.transaction() as session:
        call = Call(
            workspace_id=workspace_id,
            direction="outbound",
            from_number="+254700000001",
            to_number="+254700000002",
        )
        session.add(call)
        await session.flush()
        call_id = call.id
    started = await _event(database, workspace_id, "call.started", call_id=call_id)
    completed = await _event(database, workspace_id, "call.completed", call_id=call_id)
    top_up = await _event(database, workspace_id, "wallet.top_up")

    listed = await client.get("/v1/events", headers=headers)
    assert listed.status_code == 200
    assert [event["id"] for event in listed.json()["data"]] == [top_up, completed, started]
    assert listed.json()["next_cursor"] is None

    by_kind = await client.get("/v1/events", params={"kind": "call.completed"}, headers=headers)
    assert [event["id"] for event in by_kind.json()["data"]] == [completed]
    by_call = await client.get("/v1/events", params={"call_id": call_id}, headers=headers)
    assert [event["id"] for event in by_call.json()["data"]] == [completed, started]

    first = (await client.get("/v1/events", params={"limit": 2}, headers=headers)).json()
    assert [event["id"] for event in first["data"]] == [top_up, completed]
    rest = await client.get(
        "/v1/events", params={"limit": 2, "cursor": first["next_cursor"]}, headers=headers
    )
    assert [event["id"] for event in rest.json()["data"]] == [started]
    assert rest.json()["next_cursor"] is None


async def test_an_unknown_kind_is_a_validation_error(
    client: httpx.AsyncClient, make_key: KeyFactory
) -> None:
    _, headers = await make_key(["webhooks.manage"])
    answer = await client.get("/v1/events", params={"kind": "call.exploded"}, headers=headers)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert (error["code"], error["field"]) == ("validation.invalid_field", "kind")
    assert error["request_id"] == answer.headers["x-request-id"]


async def test_one_event_carries_its_envelope_fields(
    client: httpx.AsyncClient, database: Database, make_key: KeyFactory
) -> None:
    workspace_id, headers = await make_key(["webhooks.manage"])
    event_id = await _event(database, workspace_id, target_url="https://app.example.com/events")
    answer = await client.get(f"/v1/events/{event_id}", headers=headers)
    assert answer.status_code == 200
    event = answer.json()
    assert event["id"] == event_id
    assert event["kind"] == "call.completed"
    assert event["workspace_id"] == workspace_id
    assert event["data"] == {"note": "call.completed"}
    assert event["events_url"] == "https://app.example.com/events"
    assert event["occurred_at"].endswith("Z")
    assert event["dispatched_at"] is None


async def test_another_workspaces_event_answers_404(
    client: httpx.AsyncClient, database: Database, make_key: KeyFactory
) -> None:
    alice_workspace, alice = await make_key(["webhooks.manage"])
    _, bob = await make_key(["webhooks.manage"])
    event_id = await _event(database, alice_workspace)

    for method, path in [
        ("GET", f"/v1/events/{event_id}"),
        ("GET", f"/v1/events/{event_id}/deliveries"),
        ("POST", f"/v1/events/{event_id}/redeliver"),
        ("GET", "/v1/events/01a20000-0000-7000-8000-000000000000"),
        ("GET", "/v1/events/not-an-id"),
    ]:
        answer = await client.request(method, path, headers=bob)
        assert answer.status_code == 404, path
        error = answer.json()["error"]
        assert error["code"] == "events.not_found"
        assert error["request_id"] == answer.headers["x-request-id"]
        assert "note" not in answer.text

    assert (await client.get("/v1/events", headers=bob)).json()["data"] == []
    mine = (await client.get("/v1/events", headers=alice)).json()["data"]
    assert [event["id"] for event in mine] == [event_id]


async def test_the_log_needs_the_webhooks_manage_scope(
    client: httpx.AsyncClient, make_key: KeyFactory
) -> None:
    _, headers = await make_key(["calls.read"])
    answer = await client.get("/v1/events", headers=headers)
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "api_key.scope_denied"


async def test_deliveries_show_each_attempt_with_status_latency_and_error(
    client: httpx.AsyncClient,
    database: Database,
    make_key: KeyFactory,
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    receiver.answers = [500]
    workspace_id, headers = await make_key(["webhooks.manage"])
    event_id = await _event(database, workspace_id, target_url=receiver.url)
    no_wait = RetrySchedule([timedelta(0)] * 7)
    async with _worker(database, tmp_path, schedule=no_wait) as worker:
        await worker.run_once()
        await worker.run_once()

    answer = await client.get(f"/v1/events/{event_id}/deliveries", headers=headers)
    assert answer.status_code == 200
    [delivery] = answer.json()["data"]
    assert delivery["event_id"] == event_id
    assert delivery["url"] == receiver.url
    assert delivery["subscription_id"] is None
    assert (delivery["status"], delivery["attempt_count"]) == ("delivered", 2)
    assert delivery["delivered_at"] is not None
    failed, succeeded = delivery["attempts"]
    assert (failed["status_code"], failed["error"]) == (500, "the receiver answered HTTP 500")
    assert (succeeded["status_code"], succeeded["error"]) == (200, None)
    assert all(attempt["latency_ms"] >= 0 for attempt in delivery["attempts"])
    assert "secret" not in answer.text


async def test_redeliver_sends_a_dead_lettered_event_again_once_per_key(
    client: httpx.AsyncClient,
    database: Database,
    make_key: KeyFactory,
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    receiver.then = 500
    workspace_id, headers = await make_key(["webhooks.manage"])
    async with database.transaction() as session:
        subscription = WebhookSubscription(
            workspace_id=workspace_id, url=receiver.url, events=["*"], secret="whsec_x"
        )
        session.add(subscription)
    event_id = await _event(database, workspace_id, target_url=receiver.url)
    no_wait = RetrySchedule([timedelta(0)] * 7)
    async with _worker(database, tmp_path, schedule=no_wait) as worker:
        for _ in range(8):
            await worker.run_once()
    dead = (await client.get(f"/v1/events/{event_id}/deliveries", headers=headers)).json()
    assert {delivery["status"] for delivery in dead["data"]} == {"dead_letter"}

    retry = {**headers, "Idempotency-Key": "redeliver-1"}
    first = await client.post(f"/v1/events/{event_id}/redeliver", headers=retry)
    assert first.status_code == 202
    fresh = first.json()["data"]
    assert len(fresh) == 2
    assert {delivery["status"] for delivery in fresh} == {"pending"}
    assert {delivery["subscription_id"] for delivery in fresh} == {None, subscription.id}
    again = await client.post(f"/v1/events/{event_id}/redeliver", headers=retry)
    assert again.status_code == 202
    assert again.json() == first.json()

    receiver.then = 200
    async with _worker(database, tmp_path) as worker:
        assert (await worker.run_once()).attempted == 2
    listed = (await client.get(f"/v1/events/{event_id}/deliveries", headers=headers)).json()
    statuses = {delivery["id"]: delivery["status"] for delivery in listed["data"]}
    assert len(statuses) == 4
    assert {statuses[delivery["id"]] for delivery in fresh} == {"delivered"}
    assert sorted(statuses.values()) == ["dead_letter", "dead_letter", "delivered", "delivered"]
    assert [delivery["id"] for delivery in listed["data"]][:2] == sorted(
        (delivery["id"] for delivery in fresh), reverse=True
    )
