"""Trunks keep their health as the OPTIONS pings last found it (``up``, ``down``).

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("trunks") as batch:
        batch.add_column(
            sa.Column("health", sa.String(8), nullable=False, server_default="unknown")
        )
        batch.add_column(sa.Column("health_changed_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("trunks") as batch:
        batch.drop_column("health_changed_at")
        batch.drop_column("health")
