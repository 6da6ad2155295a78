"""Foundation: workspaces, API keys, idempotency records, the rate deck, webhook subscriptions.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

from sautikit.db.types import UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _id() -> sa.Column[str]:
    return sa.Column("id", sa.String(36), primary_key=True)


def _workspace(nullable: bool = False) -> sa.Column[str]:
    return sa.Column(
        "workspace_id",
        sa.String(36),
        sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
        nullable=nullable,
    )


def _created_at() -> sa.Column[Any]:
    return sa.Column("created_at", UtcDateTime(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "workspaces",
        _id(),
        sa.Column("name", sa.String(200), nullable=False),
        _created_at(),
    )
    op.create_table(
        "api_keys",
        _id(),
        _workspace(),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("prefix", sa.String(32), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("scopes", sa.JSON(), nullable=False),
        _created_at(),
        sa.Column("revoked_at", UtcDateTime(), nullable=True),
    )
    op.create_index("ix_api_keys_workspace_id", "api_keys", ["workspace_id"])
    op.create_table(
        "idempotency_records",
        _id(),
        _workspace(),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("method", sa.String(10), nullable=False),
        sa.Column("path", sa.String(2048), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response_body", sa.Text(), nullable=False),
        _created_at(),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.UniqueConstraint("workspace_id", "key"),
    )
    op.create_index("ix_idempotency_records_workspace_id", "idempotency_records", ["workspace_id"])
    op.create_index("ix_idempotency_records_expires_at", "idempotency_records", ["expires_at"])
    op.create_table(
        "rates",
        _id(),
        _workspace(nullable=True),
        sa.Column("direction", sa.String(10), nullable=False),
        sa.Column("prefix", sa.String(32), nullable=False),
        sa.Column("destination", sa.String(200), nullable=False),
        sa.Column("rate_per_minute_minor", sa.BigInteger(), nullable=False),
        _created_at(),
    )
    op.create_index("ix_rates_lookup", "rates", ["direction", "prefix"])
    op.create_table(
        "webhook_subscriptions",
        _id(),
        _workspace(),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("secret", sa.String(100), nullable=False),
        _created_at(),
    )
    op.create_index(
        "ix_webhook_subscriptions_workspace_id", "webhook_subscriptions", ["workspace_id"]
    )


def downgrade() -> None:
    for table in ("webhook_subscriptions", "rates", "idempotency_records", "api_keys"):
        op.drop_table(table)
    op.drop_table("workspaces")
