"""``Sautikit`` (sync) over real TCP to a uvicorn server on a loopback ephemeral port.

The server runs in the test's event loop; the sync client runs in a worker thread, as it
would in a plain script.
"""

from __future__ import annotations

import asyncio

import pytest
from tests.client.conftest import Fund, Workspace

from sautikit_sdk import ConflictError, NotFoundError, Sautikit, ValidationError


async def test_the_sync_client_round_trips_numbers_wallet_webhooks_and_settings(
    live_url: str, workspace: Workspace, inventory: dict[str, str], fund: Fund
) -> None:
    await fund(50000)

    def script() -> None:
        with Sautikit(workspace.api_key, base_url=live_url, timeout=10) as client:
            assert client.workspace.get().id == workspace.id
            offered = {number.number: number.id for number in client.numbers.available(limit=1)}
            assert offered == {e164: id_ for e164, id_ in inventory.items()}
            claimed = client.numbers.claim(inventory["+254711000003"])
            assert claimed.monthly_price_minor == 25000
            assert client.wallet.balance().balance_minor == 25000
            assert [number.id for number in client.numbers.list()] == [claimed.id]

            made = [
                client.webhooks.create(url=f"https://app.example.com/{n}", events=["*"]).id
                for n in range(5)
            ]
            assert [hook.id for hook in client.webhooks.list(limit=2)] == made[::-1]
            again = client.webhooks.create(
                url="https://app.example.com/0", events=["*"], idempotency_key="k"
            )
            assert (
                client.webhooks.create(
                    url="https://app.example.com/0", events=["*"], idempotency_key="k"
                )
                == again
            )
            with pytest.raises(ConflictError):
                client.webhooks.create(url="https://x.example/", events=["*"], idempotency_key="k")
            client.webhooks.delete(again.id)
            with pytest.raises(NotFoundError) as gone:
                client.webhooks.get(again.id)
            assert gone.value.request_id and gone.value.request_id.startswith("req_")

            assert client.settings.update(low_balance_threshold_minor=500).retention_days > 0
            assert client.settings.get().low_balance_threshold_minor == 500
            with pytest.raises(ValidationError) as invalid:
                client.calls.create(to="+254722999000", from_="+254711000003", action_url="x")
            assert invalid.value.field == "action_url"

    await asyncio.to_thread(script)
