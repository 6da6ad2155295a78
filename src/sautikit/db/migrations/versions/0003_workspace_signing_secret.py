"""A per-workspace signing secret for events_url deliveries and voice callbacks.

Subscriptions carry their own ``whsec_`` secret; deliveries to a call's or number's
``events_url`` (and voice callbacks, SPEC §3) are signed with the workspace's. It is made
lazily, on first use, so existing workspaces need no backfill.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("workspaces", sa.Column("signing_secret", sa.String(100), nullable=True))


def downgrade() -> None:
    op.drop_column("workspaces", "signing_secret")
