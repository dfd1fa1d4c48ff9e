"""Query embedding in, catalogue tracks out: index search, then track rows and their VA readings."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
from sqlalchemy.orm import Session

from app import catalog
from app.batching import MicroBatcher
from app.catalog import TrackFilters
from app.index import Hit, Snapshot
from app.settings import Settings
from models.inference import Embedder
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


@dataclass(frozen=True)
class SearchJob:
    """One unfiltered index search of a request."""

    snapshot: Snapshot
    query: Gaussians  # (1, d) arrays
    lam: float
    k: int


class QueryBatches:
    """The model and index work of concurrent requests, batched (``app.batching``): VA points through the
    emotion encoder, unfiltered searches through one FAISS call per snapshot."""

    def __init__(self, embedder: Embedder, settings: Settings) -> None:
        self.embedder, self.settings = embedder, settings
        self.points: MicroBatcher[tuple[float, float], Gaussians] = MicroBatcher(self._embed_points,
                                                                                 name="batch-points")
        self.searches: MicroBatcher[SearchJob, list[Hit]] = MicroBatcher(self._search, name="batch-search")

    def _embed_points(self, points: list[tuple[float, float]]) -> list[Gaussians]:
        embedded = self.embedder.embed_points(np.array(points, dtype=np.float64))
        return [Gaussians(*(part[i : i + 1] for part in embedded)) for i in range(len(points))]

    def _search(self, jobs: list[SearchJob]) -> list[list[Hit]]:
        answers: dict[int, list[Hit]] = {}
        by_snapshot: dict[int, list[int]] = {}
        for i, job in enumerate(jobs):
            by_snapshot.setdefault(id(job.snapshot), []).append(i)
        for members in by_snapshot.values():
            snapshot = jobs[members[0]].snapshot
            queries = Gaussians(*(np.vstack(parts) for parts in zip(*(jobs[i].query for i in members), strict=True)))
            found = snapshot.search_many(queries, lams=[jobs[i].lam for i in members],
                                         ks=[jobs[i].k for i in members], rescore_head=self.settings.rescore_head,
                                         ef_search=self.settings.hnsw_ef_search)
            answers.update(zip(members, found, strict=True))
        return [answers[i] for i in range(len(jobs))]

    def close(self) -> None:
        self.points.close()
        self.searches.close()


def allowed_rows(session: Session, snapshot: Snapshot, filters: TrackFilters | None) -> np.ndarray | None:
    """The index rows of the tracks that pass ``filters`` (None: no filters, every row)."""
    return None if filters is None else snapshot.rows_of(catalog.filtered_track_ids(session, filters))


def search_tracks(session: Session, snapshot: Snapshot, query: Gaussians, *, settings: Settings, lam: float, k: int,
                  exclude: Collection[int] = (), allowed: np.ndarray | None = None,
                  batches: QueryBatches | None = None) -> list[TrackResult]:
    """The top ``k`` catalogue tracks for a (1, d) query embedding, skipping ``exclude`` and deleted tracks; with
    ``allowed`` (``allowed_rows``), the exact top ``k`` among those rows. With ``batches``, an unfiltered search
    joins the concurrent requests' searches in one index call."""
    wanted = k + OVERFETCH + len(exclude)
    if batches is not None and allowed is None:
        hits = batches.searches(SearchJob(snapshot, query, lam, wanted))
    else:
        hits = snapshot.search(query, lam=lam, k=wanted, rescore_head=settings.rescore_head,
                               ef_search=settings.hnsw_ef_search, allowed=allowed)
    hits = [h for h in hits if h.track_id not in exclude]
    shown = catalog.listings(session, [h.track_id for h in hits], snapshot.model_version)
    return [TrackResult(track_id=h.track_id, title=shown[h.track_id].title, artist=shown[h.track_id].artist,
                        score=h.score, corr=h.corr, neg_kl=h.neg_kl, valence=shown[h.track_id].valence,
                        arousal=shown[h.track_id].arousal)
            for h in hits if h.track_id in shown][:k]
