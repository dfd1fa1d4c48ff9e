"""embeddings: the class probabilities of the representation each embedding came from

Revision ID: c4f1a7e2d9b8
Revises: b7d3e9a1c520
Create Date: 2026-12-07 08:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "c4f1a7e2d9b8"
down_revision = "b7d3e9a1c520"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Null: stored before this revision; the next reindex embeds the track again and fills it.
    with op.batch_alter_table("embeddings") as batch:
        batch.add_column(sa.Column("classes", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("embeddings") as batch:
        batch.drop_column("classes")
