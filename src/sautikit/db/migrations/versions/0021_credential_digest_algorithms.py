"""Digest algorithms per SIP credential.

``sip_credentials.digest_algorithms``: the algorithms a device's challenge offers, in
order (e.g. ``["SHA-256", "MD5"]`` for a phone that speaks RFC 8760); NULL means the
deployment's ``SAUTIKIT_SIP_DIGEST_ALGORITHMS``.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sip_credentials") as batch:
        batch.add_column(sa.Column("digest_algorithms", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sip_credentials") as batch:
        batch.drop_column("digest_algorithms")
