"""tracks: tempo, key and mode from the audio, and the decoded audio's fingerprint

Revision ID: 7c1e5a9d2b40
Revises: 01ed248489f5
Create Date: 2026-12-02 06:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "7c1e5a9d2b40"
down_revision = "01ed248489f5"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: tracks added before this revision get their values when they are next analysed.
    with op.batch_alter_table("tracks") as batch:
        batch.add_column(sa.Column("tempo_bpm", sa.Float(), nullable=True))
        batch.add_column(sa.Column("key", sa.String(length=2), nullable=True))
        batch.add_column(sa.Column("mode", sa.String(length=5), nullable=True))
        batch.create_index("ix_tracks_tempo_bpm", ["tempo_bpm"])
        batch.add_column(sa.Column("audio_fingerprint", sa.String(length=64), nullable=True))
        batch.create_unique_constraint("uq_tracks_audio_fingerprint", ["audio_fingerprint"])


def downgrade() -> None:
    with op.batch_alter_table("tracks") as batch:
        batch.drop_constraint("uq_tracks_audio_fingerprint", type_="unique")
        batch.drop_column("audio_fingerprint")
        batch.drop_index("ix_tracks_tempo_bpm")
        batch.drop_column("mode")
        batch.drop_column("key")
        batch.drop_column("tempo_bpm")
