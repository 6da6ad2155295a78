"""SRTP requirement per workspace and per trunk: ``optional`` (answer SRTP when offered) or
``required`` (refuse plain RTP with 488; offers to the trunk are SRTP).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("workspaces", "trunks"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column("srtp", sa.String(8), nullable=False, server_default="optional")
            )


def downgrade() -> None:
    for table in ("workspaces", "trunks"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("srtp")
