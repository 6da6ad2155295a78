"""M-Pesa top-ups: the ``topups`` table, unmatched payments, each workspace's Paybill
account reference (made on first use, so existing workspaces need no backfill).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

from sautikit.db.types import UtcDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workspaces") as batch:
        batch.add_column(sa.Column("mpesa_account_ref", sa.String(12), nullable=True))
        batch.create_unique_constraint("uq_workspaces_mpesa_account_ref", ["mpesa_account_ref"])
    op.create_table(
        "topups",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "workspace_id",
            sa.String(36),
            sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("phone_e164", sa.String(20), nullable=True),
        sa.Column("account_reference", sa.String(20), nullable=True),
        sa.Column("checkout_request_id", sa.String(64), nullable=True, unique=True),
        sa.Column("merchant_request_id", sa.String(64), nullable=True),
        sa.Column("provider_reference", sa.String(64), nullable=True, unique=True),
        sa.Column("result_code", sa.String(16), nullable=True),
        sa.Column("failure_reason", sa.String(255), nullable=True),
        sa.Column(
            "entry_id",
            sa.String(36),
            sa.ForeignKey("wallet_entries.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("push_sent_at", UtcDateTime(), nullable=True),
        sa.Column("query_attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("settled_at", UtcDateTime(), nullable=True),
    )
    op.create_table(
        "mpesa_payments",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("trans_id", sa.String(64), nullable=False, unique=True),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("msisdn", sa.String(100), nullable=True),
        sa.Column("account_reference", sa.String(100), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column(
            "topup_id",
            sa.String(36),
            sa.ForeignKey("topups.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("received_at", UtcDateTime(), nullable=False),
        sa.Column("assigned_at", UtcDateTime(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("mpesa_payments")
    op.drop_table("topups")
    with op.batch_alter_table("workspaces") as batch:
        batch.drop_constraint("uq_workspaces_mpesa_account_ref", type_="unique")
        batch.drop_column("mpesa_account_ref")
