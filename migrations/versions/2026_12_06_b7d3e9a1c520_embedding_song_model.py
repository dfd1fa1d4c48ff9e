"""embeddings: the song model that read the track's lyrics into its embedding, and its fused reading

Revision ID: b7d3e9a1c520
Revises: 5e2b8d1f4a60
Create Date: 2026-12-06 19:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "b7d3e9a1c520"
down_revision = "5e2b8d1f4a60"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Null: the embedding is the audio's alone (no lyrics, no song model, or stored before this revision).
    with op.batch_alter_table("embeddings") as batch:
        batch.add_column(sa.Column("song_model", sa.String(100), nullable=True))
        batch.add_column(sa.Column("fused_valence", sa.Float(), nullable=True))
        batch.add_column(sa.Column("fused_arousal", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("embeddings") as batch:
        for name in ("fused_arousal", "fused_valence", "song_model"):
            batch.drop_column(name)
