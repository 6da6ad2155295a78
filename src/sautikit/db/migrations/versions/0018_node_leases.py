"""Node leases: each ``sautikit serve`` renews its row; a survivor closes the calls of a
node whose lease ran out. Recordings say why they failed.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

from sautikit.db.types import UtcDateTime

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "nodes",
        sa.Column("id", sa.String(100), primary_key=True),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.Column("renewed_at", UtcDateTime(), nullable=False),
        sa.Column("lease_expires_at", UtcDateTime(), nullable=False, index=True),
        sa.Column("sip_address", sa.String(300), nullable=True),
        sa.Column("recovered_by", sa.String(100), nullable=True),
        sa.Column("recovered_at", UtcDateTime(), nullable=True),
    )
    with op.batch_alter_table("recordings") as batch:
        batch.add_column(sa.Column("failure_reason", sa.String(500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("recordings") as batch:
        batch.drop_column("failure_reason")
    op.drop_table("nodes")
