"""Query embedding in, catalogue tracks out: index search, then track rows and their VA readings."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy.orm import Session

from app import catalog
from app.routers.schemas import TrackHit
from app.services import Services
from models.scoring import Gaussians

OVERFETCH = 20  # deleted tracks can linger in the index until the next reindex; excluded ones are skipped


def search_tracks(services: Services, session: Session, query: Gaussians, *, lam: float, k: int,
                  exclude: Collection[int] = ()) -> list[TrackHit]:
    """The top ``k`` catalogue tracks for a (1, d) query embedding, skipping ``exclude`` and deleted tracks."""
    embedder, snapshot = services.require_embedder(), services.require_index()
    hits = snapshot.search(query, lam=lam, k=k + OVERFETCH + len(exclude), rescore_head=services.settings.rescore_head,
                           ef_search=services.settings.hnsw_ef_search)
    hits = [h for h in hits if h.track_id not in exclude]
    tracks = catalog.tracks_by_ids(session, [h.track_id for h in hits])
    readings = catalog.reading_of(session, list(tracks), embedder.version)
    return [
        TrackHit(track_id=h.track_id, title=tracks[h.track_id].title, artist=tracks[h.track_id].artist,
                 score=h.score, corr=h.corr, neg_kl=h.neg_kl, valence=readings[h.track_id].valence,
                 arousal=readings[h.track_id].arousal, audio_url=f"/v1/tracks/{h.track_id}/audio")
        for h in hits if h.track_id in tracks and h.track_id in readings
    ][:k]
