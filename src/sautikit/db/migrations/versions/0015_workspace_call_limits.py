"""Workspace call limits that fit real use: 10 new calls a second, 50 live calls.

The first defaults (1 call a second, 10 live calls, a bridged call counted twice) made a
second API call in one second answer 429. New workspaces get the new defaults; existing
workspaces keep the limits they have (a limit is an anti-fraud setting, never raised
behind an operator's back) and can be raised through ``PATCH /v1/settings``.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workspaces") as batch:
        batch.alter_column("max_concurrent_calls", server_default="50")
        batch.alter_column("max_calls_per_second", server_default="10")


def downgrade() -> None:
    with op.batch_alter_table("workspaces") as batch:
        batch.alter_column("max_concurrent_calls", server_default="10")
        batch.alter_column("max_calls_per_second", server_default="1")
