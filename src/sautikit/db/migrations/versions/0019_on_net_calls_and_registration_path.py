"""On-net calls and registration paths.

``calls.on_net``: the call went to a number a workspace of this deployment holds, so it
stayed on the platform and is rated at the deck's ``on_net`` rate (decided once, at
admission, so a number released mid-call does not change the price).

``sip_registrations.path``: the Path header (RFC 3327) a proxy in front added to the
REGISTER, in order; calls to the phone are routed back through it.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(
            sa.Column("on_net", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("sip_registrations") as batch:
        batch.add_column(sa.Column("path", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sip_registrations") as batch:
        batch.drop_column("path")
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("on_net")
