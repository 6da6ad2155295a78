"""The sync client is generated from the async one and must not drift from it."""

from sautikit_sdk import _unasync


def test_the_generated_sync_client_is_up_to_date() -> None:
    assert _unasync.SYNC_TARGET.read_text() == _unasync.generate(), (
        "src/sautikit_sdk/_sync.py is stale: run python -m sautikit_sdk._unasync"
    )


def test_the_sync_client_has_no_asyncio_left() -> None:
    text = _unasync.SYNC_TARGET.read_text()
    for word in ("async def", "async for", "await ", "import asyncio", "AsyncSautikit"):
        assert word not in text
