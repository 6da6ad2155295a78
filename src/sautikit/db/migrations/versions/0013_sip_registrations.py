"""Device registrations in the database: they survive restarts and every process sees them.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

from sautikit.db.types import UtcDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sip_registrations",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("aor", sa.String(length=200), nullable=False),
        sa.Column("contact", sa.String(length=1024), nullable=False),
        sa.Column("source_host", sa.String(length=255), nullable=True),
        sa.Column("source_port", sa.Integer(), nullable=True),
        sa.Column("source_transport", sa.String(length=8), nullable=True),
        sa.Column("call_id", sa.String(length=255), nullable=False),
        sa.Column("cseq", sa.BigInteger(), nullable=False),
        sa.Column("q", sa.Float(), nullable=False),
        sa.Column("registered_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.Column("node", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("aor", "contact"),
    )
    with op.batch_alter_table("sip_registrations") as batch:
        batch.create_index("ix_sip_registrations_aor", ["aor"], unique=False)
        batch.create_index("ix_sip_registrations_expires_at", ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_table("sip_registrations")
