"""Catalogue tables (SQLAlchemy 2.0). The schema is made only by the Alembic migrations in migrations/."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Index, Integer, LargeBinary, MetaData, String, Text, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
MAX_TITLE_CHARS = 300  # titles, artists and albums
MAX_GENRE_CHARS = 100


class JobState(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"


ACTIVE_JOB_STATES = (JobState.queued.value, JobState.running.value)
_ACTIVE_SQL = text("state IN ({})".format(", ".join(f"'{s}'" for s in ACTIVE_JOB_STATES)))


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Track(Base):
    __tablename__ = "tracks"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(MAX_TITLE_CHARS))
    artist: Mapped[str] = mapped_column(String(MAX_TITLE_CHARS), default="")
    duration_s: Mapped[float] = mapped_column(Float)
    audio_path: Mapped[str] = mapped_column(String(500))  # relative to the data folder
    content_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 of the audio file
    # sha256 of the decoded signal (app.decoding.fingerprint): one track per recording, whatever its container
    audio_fingerprint: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    source: Mapped[str] = mapped_column(String(50), default="upload")
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Song context, from the file's tags, a sidecar or the admin API (app.songinfo).
    album: Mapped[str] = mapped_column(String(MAX_TITLE_CHARS), default="", server_default="")
    genre: Mapped[str] = mapped_column(String(MAX_GENRE_CHARS), default="", server_default="")
    year: Mapped[int | None] = mapped_column(Integer, nullable=True)
    lyrics: Mapped[str | None] = mapped_column(Text, nullable=True)
    # From the audio (models.harmony); None for tracks not analysed since these columns came.
    tempo_bpm: Mapped[float | None] = mapped_column(Float, index=True, nullable=True)
    key: Mapped[str | None] = mapped_column(String(2), nullable=True)  # tonic: "C", "C#", ... "B"
    mode: Mapped[str | None] = mapped_column(String(5), nullable=True)  # "major" or "minor"
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    embeddings: Mapped[list[TrackEmbedding]] = relationship(
        back_populates="track", cascade="all, delete-orphan", passive_deletes=True)


class TrackEmbedding(Base):
    """One track's embedding under one model version, with the VA curve the model reads from it."""

    __tablename__ = "embeddings"
    __table_args__ = (Index("uq_embeddings_track_version", "track_id", "model_version", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"))
    model_version: Mapped[str] = mapped_column(String(100), index=True)
    E: Mapped[bytes] = mapped_column(LargeBinary)  # float32 (d,)
    mu: Mapped[bytes] = mapped_column(LargeBinary)
    logvar: Mapped[bytes] = mapped_column(LargeBinary)
    valence: Mapped[float] = mapped_column(Float)
    arousal: Mapped[float] = mapped_column(Float)
    valence_std: Mapped[float] = mapped_column(Float)
    arousal_std: Mapped[float] = mapped_column(Float)
    va_curve: Mapped[list[list[float]]] = mapped_column(JSON)  # [[t, valence, arousal], ...]
    # The track's spans (models.inference.SpanGrid): [[start_s, end_s], ...] and float32 (S, d) embeddings;
    # None for embeddings stored before spans existed (span search skips those tracks until they are re-embedded).
    span_times: Mapped[list[list[float]] | None] = mapped_column(JSON, nullable=True)
    span_E: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # noqa: N815 (E, as in the paper)
    span_mu: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    span_logvar: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    # Where a song model (models.song_model) read the track's lyrics: its version, and the fused VA it read; the
    # embedding (E, mu, logvar) is then the fused one. None: the audio's alone.
    song_model: Mapped[str | None] = mapped_column(String(100), nullable=True)
    fused_valence: Mapped[float | None] = mapped_column(Float, nullable=True)
    fused_arousal: Mapped[float | None] = mapped_column(Float, nullable=True)
    # The class probabilities of the representation the embedding came from (the song model's where it read the
    # lyrics): taxonomy -> [p, ...] in the taxonomy's order; tracks that feel alike are ranked by them (app.alike).
    # None for embeddings stored before they were kept (a reindex gives them).
    classes: Mapped[dict[str, list[float]] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    track: Mapped[Track] = relationship(back_populates="embeddings")


class Job(Base):
    """A background job (reindex). At most one active job per kind: a partial unique index enforces it."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index("uq_jobs_active_kind", "kind", unique=True,
              sqlite_where=_ACTIVE_SQL, postgresql_where=_ACTIVE_SQL),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(30))
    state: Mapped[str] = mapped_column(String(20), default=JobState.queued.value)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str] = mapped_column(Text, default="")
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    owner: Mapped[str | None] = mapped_column(String(300), nullable=True)  # "host:pid" of the process running it
