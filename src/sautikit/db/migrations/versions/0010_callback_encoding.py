"""Workspaces and numbers choose how POSTs to the app carry their fields (SPEC §3).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workspaces") as batch:
        batch.add_column(
            sa.Column("callback_encoding", sa.String(8), nullable=False, server_default="form")
        )
    with op.batch_alter_table("numbers") as batch:
        batch.add_column(sa.Column("callback_encoding", sa.String(8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("numbers") as batch:
        batch.drop_column("callback_encoding")
    with op.batch_alter_table("workspaces") as batch:
        batch.drop_column("callback_encoding")
