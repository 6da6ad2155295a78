"""Calls keep a snapshot of their SIP dialog, so the next process can end a crashed call
at the far end (BYE, CANCEL or a final answer: ``sautikit.sip.teardown``).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("sip_dialog", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("sip_dialog")
