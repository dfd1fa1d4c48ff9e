"""Query embedding in, catalogue tracks out: index search, then track rows and their VA readings."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
from sqlalchemy.orm import Session

from app import catalog
from app.catalog import TrackFilters
from app.index import Snapshot
from app.settings import Settings
from models.scoring import Gaussians

NO_TRACK_PASSES = "no track in the catalogue passes the filters"
OVERFETCH = 20  # deleted tracks can linger in the index until the next reindex; excluded ones are skipped


@dataclass(frozen=True)
class TrackResult:
    """One ranked track with its score parts and the model's VA reading of it."""

    track_id: int
    title: str
    artist: str
    score: float
    corr: float
    neg_kl: float
    valence: float
    arousal: float

    @property
    def audio_url(self) -> str:
        return f"/v1/tracks/{self.track_id}/audio"


def allowed_rows(session: Session, snapshot: Snapshot, filters: TrackFilters | None) -> np.ndarray | None:
    """The index rows of the tracks that pass ``filters`` (None: no filters, every row)."""
    return None if filters is None else snapshot.rows_of(catalog.filtered_track_ids(session, filters))


def search_tracks(session: Session, snapshot: Snapshot, query: Gaussians, *, settings: Settings, lam: float, k: int,
                  exclude: Collection[int] = (), allowed: np.ndarray | None = None) -> list[TrackResult]:
    """The top ``k`` catalogue tracks for a (1, d) query embedding, skipping ``exclude`` and deleted tracks; with
    ``allowed`` (``allowed_rows``), the exact top ``k`` among those rows."""
    hits = snapshot.search(query, lam=lam, k=k + OVERFETCH + len(exclude), rescore_head=settings.rescore_head,
                           ef_search=settings.hnsw_ef_search, allowed=allowed)
    hits = [h for h in hits if h.track_id not in exclude]
    tracks = catalog.tracks_by_ids(session, [h.track_id for h in hits])
    readings = catalog.reading_of(session, list(tracks), snapshot.model_version)
    return [
        TrackResult(track_id=h.track_id, title=tracks[h.track_id].title, artist=tracks[h.track_id].artist,
                    score=h.score, corr=h.corr, neg_kl=h.neg_kl, valence=readings[h.track_id].valence,
                    arousal=readings[h.track_id].arousal)
        for h in hits if h.track_id in tracks and h.track_id in readings
    ][:k]
