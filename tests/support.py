"""Types and helpers shared by test modules (fixtures live in conftest.py)."""

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from sautikit.db.models import Number
from sautikit.db.types import utcnow

# make_key(scopes=None, workspace_id=None) -> (workspace id, auth headers)
KeyFactory = Callable[..., Awaitable[tuple[str, dict[str, str]]]]


def active_number(e164: str, workspace_id: str, **routing: Any) -> Number:
    """A number the workspace claimed and paid for this month (``routing``: its
    voice_url etc.)."""
    return Number(
        e164=e164,
        monthly_price_minor=10_000,
        status="active",
        workspace_id=workspace_id,
        claimed_at=utcnow(),
        paid_until=utcnow() + timedelta(days=30),
        **routing,
    )
