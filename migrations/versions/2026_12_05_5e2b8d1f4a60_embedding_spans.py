"""embeddings: the track's spans (start and end seconds, one embedding each) for span search

Revision ID: 5e2b8d1f4a60
Revises: 9d4a2c7e5f13
Create Date: 2026-12-05 05:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "5e2b8d1f4a60"
down_revision = "9d4a2c7e5f13"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: a track embedded before this revision has no spans until it is embedded again (span search skips it).
    with op.batch_alter_table("embeddings") as batch:
        batch.add_column(sa.Column("span_times", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("span_E", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("span_mu", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("span_logvar", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("embeddings") as batch:
        for name in ("span_logvar", "span_mu", "span_E", "span_times"):
            batch.drop_column(name)
