"""Digest algorithms per carrier trunk.

``trunks.digest_algorithms``: the algorithms Sautikit answers the trunk's challenge with,
best first (``["SHA-256"]`` refuses an MD5 downgrade); NULL answers the first challenge
it can, as before.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("trunks") as batch:
        batch.add_column(sa.Column("digest_algorithms", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("trunks") as batch:
        batch.drop_column("digest_algorithms")
