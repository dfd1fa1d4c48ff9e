"""Every catalogue query. Callers pass a Session and commit once per request or job step."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from sqlalchemy import String, bindparam, cast, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.processes import process_exists
from app.tables import ACTIVE_JOB_STATES, Job, JobState, Track, TrackEmbedding, utcnow
from models.harmony import PITCHES, Tonality
from models.scoring import Gaussians
from models.spans import SpanTable

if TYPE_CHECKING:
    from models.inference import TrackSpans


@dataclass(frozen=True)
class VersionEmbeddings:
    """All embeddings of one model version, in track-id order."""

    track_ids: np.ndarray  # (N,) int64
    gaussians: Gaussians  # each (N, d) float32


def _blob(x: np.ndarray) -> bytes:
    return np.ascontiguousarray(x, dtype=np.float32).tobytes()


def _array(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.float32)


# Tracks ---------------------------------------------------------------------------------------------------------

def track_by_hash(session: Session, content_hash: str) -> Track | None:
    return session.scalars(select(Track).where(Track.content_hash == content_hash)).first()


def track_by_fingerprint(session: Session, fingerprint: str) -> Track | None:
    return session.scalars(select(Track).where(Track.audio_fingerprint == fingerprint)).first()


def get_track(session: Session, track_id: int) -> Track | None:
    return session.get(Track, track_id)


def add_track(session: Session, *, title: str, artist: str, duration_s: float, audio_path: str, content_hash: str,
              source: str, tags: Sequence[str] = (), fingerprint: str | None = None, album: str = "",
              genre: str = "", year: int | None = None, lyrics: str | None = None) -> Track:
    track = Track(title=title, artist=artist, duration_s=duration_s, audio_path=audio_path,
                  content_hash=content_hash, source=source, tags=list(tags), audio_fingerprint=fingerprint,
                  album=album, genre=genre, year=year, lyrics=lyrics)
    session.add(track)
    session.flush()
    return track


def set_tonality(track: Track, tonality: Tonality) -> None:
    """Tempo (rounded to 0.1 BPM; None when no beat was found), key and mode from the audio."""
    track.tempo_bpm = round(tonality.tempo_bpm, 1) if tonality.tempo_bpm > 0 else None
    track.key, track.mode = PITCHES[tonality.key.tonic], tonality.key.mode


def list_tracks(session: Session, *, limit: int, offset: int, query: str | None = None) -> tuple[list[Track], int]:
    """A page of tracks (newest id last) and the total count, optionally filtered by a substring of the title, the
    artist or a tag (case-insensitive; ``%`` and ``_`` are literal characters, not wildcards)."""
    statement = select(Track)
    if query:
        pattern = "%" + query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        fields = (Track.title, Track.artist, cast(Track.tags, String))
        statement = statement.where(or_(*(func.lower(f).like(pattern, escape="\\") for f in fields)))
    total = session.scalar(select(func.count()).select_from(statement.subquery())) or 0
    tracks = session.scalars(statement.order_by(Track.id).limit(limit).offset(offset)).all()
    return list(tracks), int(total)


@dataclass(frozen=True)
class TrackFilters:
    """What a track must be to be returned; None or empty: no condition. Text compares case-insensitively; a
    track with no tempo, key or year passes no condition on it."""

    tempo_min: float | None = None
    tempo_max: float | None = None
    key: str | None = None
    mode: str | None = None
    duration_min: float | None = None
    duration_max: float | None = None
    genre: str | None = None
    year_min: int | None = None
    year_max: int | None = None
    artists: tuple[str, ...] = ()
    exclude_artists: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()  # every one of them


def filtered_track_ids(session: Session, filters: TrackFilters) -> np.ndarray:
    """(M,) ids of the tracks that pass ``filters``."""
    f, conditions = filters, []
    for column, low, high in ((Track.tempo_bpm, f.tempo_min, f.tempo_max), (Track.duration_s, f.duration_min,
                              f.duration_max), (Track.year, f.year_min, f.year_max)):
        if low is not None:
            conditions.append(column >= low)
        if high is not None:
            conditions.append(column <= high)
    if f.key is not None:
        conditions.append(Track.key == f.key)
    if f.mode is not None:
        conditions.append(Track.mode == f.mode)
    if f.genre:
        conditions.append(func.lower(Track.genre) == f.genre.lower())
    if f.artists:
        conditions.append(func.lower(Track.artist).in_([a.lower() for a in f.artists]))
    if f.exclude_artists:
        conditions.append(func.lower(Track.artist).not_in([a.lower() for a in f.exclude_artists]))
    rows = session.execute(select(Track.id, Track.tags).where(*conditions)).all()
    wanted = {t.lower() for t in f.tags}
    return np.array([i for i, tags in rows if wanted <= {t.lower() for t in tags or ()}], dtype=np.int64)


class FilterFields(NamedTuple):
    """What the filters read of one track, as an index that evaluates them itself (Milvus) stores it."""

    tempo_bpm: float | None
    duration_s: float
    key: str | None
    mode: str | None
    genre: str
    year: int | None
    artist: str
    tags: list[str]


def filter_fields(session: Session, track_ids: np.ndarray, *, chunk: int = 5000) -> list[FilterFields]:
    """The filter fields of each of ``track_ids``, in their order (read in chunks)."""
    found: dict[int, FilterFields] = {}
    ids = [int(i) for i in track_ids]
    for start in range(0, len(ids), chunk):
        statement = select(Track.id, Track.tempo_bpm, Track.duration_s, Track.key, Track.mode, Track.genre,
                           Track.year, Track.artist, Track.tags).where(Track.id.in_(ids[start : start + chunk]))
        for track_id, tempo, duration, key, mode, genre, year, artist, tags in session.execute(statement):
            found[track_id] = FilterFields(tempo, duration, key, mode, genre or "", year, artist or "",
                                           list(tags or []))
    return [found.get(i, MISSING_TRACK) for i in ids]


MISSING_TRACK = FilterFields(None, 0.0, None, None, "", None, "", [])  # deleted since: results skip it anyway


def delete_track(session: Session, track_id: int) -> Track | None:
    track = session.get(Track, track_id)
    if track is not None:
        session.execute(delete(TrackEmbedding).where(TrackEmbedding.track_id == track_id))
        session.delete(track)
    return track


def count_tracks(session: Session) -> int:
    return int(session.scalar(select(func.count(Track.id))) or 0)


# Embeddings -----------------------------------------------------------------------------------------------------

def add_embedding(session: Session, *, track_id: int, model_version: str, gaussians: Gaussians,
                  va: tuple[float, float, float, float], curve: list[list[float]],
                  spans: TrackSpans | None = None, song: tuple[str, float, float] | None = None,
                  classes: dict[str, list[float]] | None = None) -> TrackEmbedding:
    """Store one track's embedding ((d,) arrays), VA reading and spans for a model version (replacing an older
    one); ``song``: the song model's version and fused valence and arousal, where it made the embedding;
    ``classes``: taxonomy -> probabilities of the representation the embedding came from."""
    session.execute(delete(TrackEmbedding).where(TrackEmbedding.track_id == track_id,
                                                 TrackEmbedding.model_version == model_version))
    row = TrackEmbedding(track_id=track_id, model_version=model_version, E=_blob(gaussians.E),
                         mu=_blob(gaussians.mu), logvar=_blob(gaussians.logvar), valence=va[0], arousal=va[1],
                         valence_std=va[2], arousal_std=va[3], va_curve=curve, classes=classes)
    if song is not None:
        row.song_model, row.fused_valence, row.fused_arousal = song
    if spans is not None:
        row.span_times = [[round(float(a), 3), round(float(b), 3)] for a, b in zip(spans.starts, spans.ends,
                                                                                    strict=True)]
        row.span_E, row.span_mu, row.span_logvar = (_blob(part) for part in spans.gaussians)
    session.add(row)
    return row


def embedding_for(session: Session, track_id: int, model_version: str) -> TrackEmbedding | None:
    return session.scalars(select(TrackEmbedding).where(TrackEmbedding.track_id == track_id,
                                                        TrackEmbedding.model_version == model_version)).first()


def stored_gaussians(row: TrackEmbedding) -> Gaussians:
    """A stored embedding as a (1, d) query: the track as the index holds it."""
    return Gaussians(*(_array(blob)[None] for blob in (row.E, row.mu, row.logvar)))


def embeddings_for_version(session: Session, model_version: str, *, chunk: int = 5000) -> VersionEmbeddings:
    """Every embedding of ``model_version`` as arrays, read in chunks."""
    ids: list[int] = []
    parts: list[list[np.ndarray]] = [[], [], []]
    statement = (select(TrackEmbedding.track_id, TrackEmbedding.E, TrackEmbedding.mu, TrackEmbedding.logvar)
                 .where(TrackEmbedding.model_version == model_version).order_by(TrackEmbedding.track_id))
    for rows in session.execute(statement.execution_options(yield_per=chunk)).partitions():
        for track_id, *blobs in rows:
            ids.append(track_id)
            for part, blob in zip(parts, blobs, strict=True):
                part.append(_array(blob))
    if not ids:
        return VersionEmbeddings(np.zeros(0, dtype=np.int64), Gaussians(*(np.zeros((0, 0), np.float32),) * 3))
    return VersionEmbeddings(np.array(ids, dtype=np.int64), Gaussians(*(np.stack(p) for p in parts)))


def classes_for_version(session: Session, model_version: str, *, chunk: int = 5000
                        ) -> tuple[np.ndarray, list[dict[str, list[float]] | None]]:
    """Every embedding of ``model_version``: track ids in order, and each one's stored class probabilities (None
    where it was stored before they were kept)."""
    statement = (select(TrackEmbedding.track_id, TrackEmbedding.classes)
                 .where(TrackEmbedding.model_version == model_version).order_by(TrackEmbedding.track_id))
    ids: list[int] = []
    classes: list[dict[str, list[float]] | None] = []
    for rows in session.execute(statement.execution_options(yield_per=chunk)).partitions():
        for track_id, probabilities in rows:
            ids.append(track_id)
            classes.append(probabilities)
    return np.array(ids, dtype=np.int64), classes


def spans_for_version(session: Session, model_version: str, *, chunk: int = 2000) -> SpanTable:
    """Every span of ``model_version``'s embeddings that have spans (tracks in id order, each track's spans in
    time order), read in chunks."""
    owners: list[np.ndarray] = []
    times: list[np.ndarray] = []
    parts: list[list[np.ndarray]] = [[], [], []]
    statement = (select(TrackEmbedding.track_id, TrackEmbedding.span_times, TrackEmbedding.span_E,
                        TrackEmbedding.span_mu, TrackEmbedding.span_logvar)
                 .where(TrackEmbedding.model_version == model_version, TrackEmbedding.span_E.is_not(None))
                 .order_by(TrackEmbedding.track_id))
    for rows in session.execute(statement.execution_options(yield_per=chunk)).partitions():
        for track_id, span_times, *blobs in rows:
            count = len(span_times or ())
            owners.append(np.full(count, track_id, dtype=np.int64))
            times.append(np.asarray(span_times, dtype=np.float64).reshape(count, 2))
            for part, blob in zip(parts, blobs, strict=True):
                part.append(_array(blob or b"").reshape(count, -1))
    if not owners:
        empty = np.zeros(0)
        return SpanTable(empty.astype(np.int64), empty, empty, Gaussians(*(np.zeros((0, 0), np.float32),) * 3))
    stacked = np.vstack(times)
    return SpanTable(np.concatenate(owners), stacked[:, 0], stacked[:, 1],
                        Gaussians(*(np.vstack(p) for p in parts)))


def tracks_to_embed(session: Session, model_version: str, song_model: str | None = None) -> list[Track]:
    """Tracks without an embedding for ``model_version``, with one stored before spans or class probabilities
    were kept, or, where a ``song_model`` (its version) reads lyrics, tracks with lyrics whose embedding another
    song model made or none."""
    embedded = select(TrackEmbedding.track_id).where(TrackEmbedding.model_version == model_version,
                                                     TrackEmbedding.span_E.is_not(None),
                                                     TrackEmbedding.classes.is_not(None))
    if song_model is not None:
        fused = or_(TrackEmbedding.song_model == song_model, TrackEmbedding.track_id.in_(
            select(Track.id).where(or_(Track.lyrics.is_(None), Track.lyrics == ""))))
        embedded = embedded.where(fused)
    return list(session.scalars(select(Track).where(Track.id.not_in(embedded)).order_by(Track.id)))


# Jobs -----------------------------------------------------------------------------------------------------------

def active_job(session: Session, kind: str) -> Job | None:
    return session.scalars(select(Job).where(Job.kind == kind, Job.state.in_(ACTIVE_JOB_STATES))).first()


def start_job(session: Session, kind: str) -> tuple[Job, bool]:
    """The active job of ``kind`` if there is one, else a new queued job (committed). Returns (job, created).

    A partial unique index allows one active job per kind, so two racing requests cannot both create one.
    """
    existing = active_job(session, kind)
    if existing is not None:
        return existing, False
    job = Job(id=str(uuid.uuid4()), kind=kind, state=JobState.queued.value, progress=0.0, message="queued", result={},
              owner=this_process())
    session.add(job)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        existing = active_job(session, kind)
        assert existing is not None, "the unique index fired, so an active job exists"
        return existing, False
    return job, True


def get_job(session: Session, job_id: str) -> Job | None:
    return session.get(Job, job_id)


def update_job(session: Session, job_id: str, **values: object) -> None:
    session.execute(update(Job).where(Job.id == job_id).values(**values))


def this_process() -> str:
    """The owner tag of jobs this process runs: host name and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


def fail_interrupted_jobs(session: Session) -> int:
    """Jobs left queued or running by a process that died: mark them failed so they can be run again. A job whose
    owner still runs (another server process, a command-line reindex) or runs on another host is left alone; a
    job without an owner (written before owners were kept) counts as interrupted."""
    active = session.scalars(select(Job).where(Job.state.in_(ACTIVE_JOB_STATES))).all()
    dead = [job.id for job in active if not _owner_alive(job.owner)]
    if dead:
        session.execute(update(Job).where(Job.id.in_(dead)).values(
            state=JobState.failed.value, message="interrupted: the service stopped while the job ran",
            finished_at=utcnow()))
    return len(dead)


def _owner_alive(owner: str | None) -> bool:
    """Whether a job's owner may still run it (called while this process starts: its own pid is a reused one)."""
    host, _, pid = (owner or "").rpartition(":")
    if not host or not pid.isdigit() or int(pid) == os.getpid():
        return False
    if host != socket.gethostname():
        return True  # cannot be checked from here
    return process_exists(int(pid))


class Listing(NamedTuple):
    """What a search result shows of a track: its names and the model's VA reading."""

    title: str
    artist: str
    valence: float
    arousal: float


# Built once: a statement made per request would cost its cache key each time (about half of the query's time).
LISTINGS = (select(Track.id, Track.title, Track.artist, TrackEmbedding.valence, TrackEmbedding.arousal)
            .join(TrackEmbedding, TrackEmbedding.track_id == Track.id)
            .where(TrackEmbedding.model_version == bindparam("version"),
                   Track.id.in_(bindparam("track_ids", expanding=True))))


def listings(session: Session, track_ids: Sequence[int], model_version: str) -> dict[int, Listing]:
    """Titles, artists and VA readings of tracks under one model version, in one query of five columns (tracks
    without an embedding of that version are left out)."""
    if not track_ids:
        return {}
    rows = session.execute(LISTINGS, {"version": model_version, "track_ids": [int(i) for i in track_ids]})
    return {row.id: Listing(row.title, row.artist, row.valence, row.arousal) for row in rows}


def reading_of(session: Session, track_ids: Sequence[int], model_version: str) -> dict[int, TrackEmbedding]:
    """The embedding rows (with their VA reading) of tracks under one model version."""
    if not track_ids:
        return {}
    rows = session.scalars(select(TrackEmbedding).where(TrackEmbedding.model_version == model_version,
                                                        TrackEmbedding.track_id.in_([int(i) for i in track_ids])))
    return {row.track_id: row for row in rows}
