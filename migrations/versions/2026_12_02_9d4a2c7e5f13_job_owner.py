"""jobs: the process that runs a job (host and pid), so a process starting beside it does not fail it

Revision ID: 9d4a2c7e5f13
Revises: 3b8f0c6e1d27
Create Date: 2026-12-02 22:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "9d4a2c7e5f13"
down_revision = "3b8f0c6e1d27"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: a job written before this revision has no owner and counts as interrupted, as before.
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("owner", sa.String(length=300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("owner")
