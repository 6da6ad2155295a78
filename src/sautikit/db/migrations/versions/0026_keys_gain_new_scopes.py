"""Keys made before ``settings.read`` and ``keys.manage`` existed keep what they could do.

Before these scopes, ``GET /v1/settings`` answered any key and only the operator made keys.
A key that holds every scope of SPEC §1 (what ``--scopes all`` gave) was the workspace's
whole-access key, so it gains both: its app still reads the settings and can now manage
keys, as an ``all`` key made today does. A key with fewer scopes gains nothing: that its
``calls.read`` no longer shows the allow-lists, bucket and retention is the fix
(docs/api.md, "Keys made before 0.1").

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-04
"""

from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

# SPEC §1's scopes: what every key could be given when these two were added.
_SPEC_SCOPES = frozenset(
    {
        "calls.read",
        "calls.write",
        "numbers.read",
        "numbers.write",
        "recordings.read",
        "recordings.write",
        "wallet.read",
        "wallet.write",
        "webhooks.manage",
        "sip.manage",
    }
)
_ADDED = ("settings.read", "keys.manage")

_keys = sa.table("api_keys", sa.column("id", sa.String), sa.column("scopes", sa.JSON))


def _granted(scopes: list[str]) -> list[str] | None:
    if not _SPEC_SCOPES.issubset(scopes):
        return None
    missing = [scope for scope in _ADDED if scope not in scopes]
    return scopes + missing if missing else None


def _withdrawn(scopes: list[str]) -> list[str] | None:
    kept = [scope for scope in scopes if scope not in _ADDED]
    return kept if len(kept) != len(scopes) else None


def _rewrite(change: Callable[[list[str]], list[str] | None]) -> None:
    """Apply ``change`` to every key's scopes; None means the key stays as it is."""
    connection = op.get_bind()
    for key_id, scopes in connection.execute(sa.select(_keys.c.id, _keys.c.scopes)).all():
        changed = change(list(scopes or []))
        if changed is not None:
            connection.execute(sa.update(_keys).where(_keys.c.id == key_id).values(scopes=changed))


def upgrade() -> None:
    _rewrite(_granted)


def downgrade() -> None:
    _rewrite(_withdrawn)
