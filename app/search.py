"""Query embedding in, catalogue tracks out: index search, then track rows and their VA readings."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from app import catalog
from app.catalog import TrackFilters
from app.index import Hit, SearchIndex
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


def allowed_rows(session: Session, snapshot: SearchIndex, filters: TrackFilters | None) -> Any:
    """What the index needs to keep the tracks that pass ``filters`` (None: no filters, every track)."""
    if filters is None:
        return None
    return snapshot.select(filters, lambda: catalog.filtered_track_ids(session, filters))


def search_tracks(session: Session, snapshot: SearchIndex, query: Gaussians, *, settings: Settings, lam: float, k: int,
                  exclude: Collection[int] = (), allowed: Any = None) -> list[TrackResult]:
    """The top ``k`` catalogue tracks for a (1, d) query embedding, skipping ``exclude`` and deleted tracks; with
    ``allowed`` (``allowed_rows``), the exact top ``k`` among those rows."""
    hits = snapshot.search(query, lam=lam, k=k + OVERFETCH + len(exclude), rescore_head=settings.rescore_head,
                           ef_search=settings.hnsw_ef_search, allowed=allowed)
    hits = [h for h in hits if h.track_id not in exclude]
    shown = catalog.listings(session, [h.track_id for h in hits], snapshot.model_version)
    return _results(hits, shown)[:k]


def search_cue_list(session: Session, snapshot: SearchIndex, queries: list[Gaussians], *, settings: Settings,
                    lam: float, k: int, allowed: Any = None) -> list[list[TrackResult]]:
    """The top ``k`` tracks of each cue's (1, d) query, no track in two cues (earlier cues choose first): the
    answers of ``search_tracks`` called cue after cue with the tracks used so far excluded. Unfiltered, every cue is
    searched in one index call: cue ``i`` can lose at most ``k * i`` of its tracks to the cues before it, so that
    many more candidates are fetched for it."""
    if allowed is not None or len(queries) < 2:
        answers: list[list[TrackResult]] = []
        for query in queries:
            used = {r.track_id for cue in answers for r in cue}
            answers.append(search_tracks(session, snapshot, query, settings=settings, lam=lam, k=k, exclude=used,
                                         allowed=allowed))
        return answers
    stacked = Gaussians(*(np.vstack(parts) for parts in zip(*queries, strict=True)))
    found = snapshot.search_many(stacked, lams=[lam] * len(queries),
                                 ks=[k * (i + 1) + OVERFETCH for i in range(len(queries))],
                                 rescore_head=settings.rescore_head, ef_search=settings.hnsw_ef_search)
    shown = catalog.listings(session, sorted({h.track_id for hits in found for h in hits}), snapshot.model_version)
    answers, used = [], set()
    for hits in found:
        cue = _results([h for h in hits if h.track_id not in used], shown)[:k]
        used |= {r.track_id for r in cue}
        answers.append(cue)
    return answers


def _results(hits: list[Hit], shown: dict[int, catalog.Listing]) -> list[TrackResult]:
    return [TrackResult(track_id=h.track_id, title=shown[h.track_id].title, artist=shown[h.track_id].artist,
                        score=h.score, corr=h.corr, neg_kl=h.neg_kl, valence=shown[h.track_id].valence,
                        arousal=shown[h.track_id].arousal)
            for h in hits if h.track_id in shown]
