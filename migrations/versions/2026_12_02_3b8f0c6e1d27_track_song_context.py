"""tracks: song context (album, genre, year, lyrics)

Revision ID: 3b8f0c6e1d27
Revises: 7c1e5a9d2b40
Create Date: 2026-12-02 13:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "3b8f0c6e1d27"
down_revision = "7c1e5a9d2b40"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tracks") as batch:
        batch.add_column(sa.Column("album", sa.String(length=300), nullable=False, server_default=""))
        batch.add_column(sa.Column("genre", sa.String(length=100), nullable=False, server_default=""))
        batch.add_column(sa.Column("year", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("lyrics", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tracks") as batch:
        for column in ("lyrics", "year", "genre", "album"):
            batch.drop_column(column)
