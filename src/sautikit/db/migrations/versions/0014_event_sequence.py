"""Events carry a per-call sequence; a delivery may carry a voice callback (SPEC §3, §7).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(
            sa.Column("event_sequence", sa.Integer(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("sequence", sa.Integer(), nullable=True))
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("callback", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("callback")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("sequence")
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("event_sequence")
