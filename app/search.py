"""Query embedding in, catalogue tracks out: index search, then track rows and their VA readings."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from sqlalchemy.orm import Session

from app import catalog
from app.alike import TABLES, most_alike
from app.catalog import TrackFilters
from app.errors import NotFoundError, NotReadyError, SpansUnavailableError
from app.index import Hit, SearchIndex
from app.settings import Settings
from app.spans import SpanSearch
from models.scoring import Gaussians, composite_scores, stack
from models.taxonomy import likeness_vector

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
    start_s: float | None = None  # span search: the best-matching stretch of the track
    end_s: float | None = None
    likeness: float | None = None  # tracks that feel alike (app.alike): what they are ranked by

    @property
    def audio_url(self) -> str:
        """The track's audio; for a span, with a media fragment (``#t=start,end``) that players start from."""
        fragment = "" if self.start_s is None else f"#t={self.start_s:g},{self.end_s:g}"
        return f"/v1/tracks/{self.track_id}/audio{fragment}"


def allowed_rows(session: Session, snapshot: SearchIndex, filters: TrackFilters | None) -> Any:
    """What the index needs to keep the tracks that pass ``filters`` (None: no filters, every track)."""
    if filters is None:
        return None
    return snapshot.select(filters, lambda: catalog.filtered_track_ids(session, filters))


def span_index(snapshot: SearchIndex) -> SpanSearch:
    """The serving snapshot's span index, or a 409 naming why there is none."""
    if snapshot.spans is not None:
        return snapshot.spans
    raise SpansUnavailableError("the serving index was built before span search existed; reindex "
                                "(POST /v1/admin/reindex or `moodspace reindex`) to add spans")


def allowed_spans(session: Session, spans: SpanSearch, filters: TrackFilters | None) -> np.ndarray | None:
    """The span rows of the tracks that pass ``filters`` (None: no filters, every span)."""
    return None if filters is None else spans.rows_of(catalog.filtered_track_ids(session, filters))


def no_span_reason(spans: SpanSearch, *, seconds: float, allowed: np.ndarray | None) -> str:
    """Why a span search found nothing: the filters, or no track as long as the span."""
    if allowed is not None and allowed.size == 0:
        return NO_TRACK_PASSES
    passing = " that passes the filters" if allowed is not None else ""
    return (f"no track has a stretch as long as the {seconds:g} s asked for; the longest{passing} is "
            f"{spans.longest_s(allowed):.1f} s")


class QueryEmbedding(NamedTuple):
    """A query's embedding and its VA; a track as the query (``like_track``, an upload's ``tracks``) also gives its
    class probabilities (None where they were not kept, and for every other kind of query)."""

    gaussians: Gaussians
    va: tuple[float, float]
    classes: dict[str, list[float]] | None


def track_query(session: Session, track_id: int, model_version: str) -> QueryEmbedding:
    """A catalogue track as the query of tracks that feel like it (``EmotionQuery.like_track``)."""
    if catalog.get_track(session, track_id) is None:
        raise NotFoundError(f"like_track: no track {track_id} in the catalogue")
    stored = catalog.embedding_for(session, track_id, model_version)
    if stored is None:
        raise NotReadyError(f"like_track: track {track_id} has no reading by model {model_version} yet; "
                            f"the next reindex gives it one")
    return QueryEmbedding(catalog.stored_gaussians(stored), (stored.valence, stored.arousal), stored.classes)


def search_alike(session: Session, snapshot: SearchIndex, query: QueryEmbedding, *, settings: Settings, lam: float,
                 k: int, exclude: Collection[int] = (), filters: TrackFilters | None = None) -> list[TrackResult]:
    """The ``k`` catalogue tracks that feel most like a track (``app.alike``: by the likeness of their class
    probabilities, each with the composite score parts of its embedding against the track's), skipping
    ``exclude`` and deleted tracks, among those that pass ``filters``. Where the track or any catalogue embedding
    has no class probabilities (stored before they were kept), the ranking is the embedding's (``search_tracks``)
    until the next reindex."""
    vector = likeness_vector(query.classes) if query.classes else None
    table = TABLES.get(session, snapshot.model_version, snapshot.generation) if vector is not None else None
    if vector is None or table is None or not table.complete or vector.size != table.vectors.shape[1]:
        return search_tracks(session, snapshot, query.gaussians, settings=settings, lam=lam, k=k, exclude=exclude,
                             allowed=allowed_rows(session, snapshot, filters))
    allowed = None if filters is None else catalog.filtered_track_ids(session, filters)
    found = most_alike(table, vector, k=k + OVERFETCH, exclude=exclude, allowed=allowed)
    rows = catalog.reading_of(session, [track_id for track_id, _ in found], snapshot.model_version)
    shown = catalog.listings(session, list(rows), snapshot.model_version)
    found = [(track_id, likeness) for track_id, likeness in found if track_id in rows and track_id in shown][:k]
    if not found:
        return []
    parts = composite_scores(query.gaussians, stack([catalog.stored_gaussians(rows[i]) for i, _ in found]), lam=lam)
    return [TrackResult(track_id=i, title=shown[i].title, artist=shown[i].artist, score=float(parts.score[0, j]),
                        corr=float(parts.corr[0, j]), neg_kl=float(parts.neg_kl[0, j]), valence=shown[i].valence,
                        arousal=shown[i].arousal, likeness=likeness)
            for j, (i, likeness) in enumerate(found)]


def search_spans(session: Session, snapshot: SearchIndex, pieces: Gaussians, *, lam: float, k: int,
                 exclude: Collection[int] = (), allowed: np.ndarray | None = None) -> list[TrackResult]:
    """The top ``k`` tracks by their best-matching run of spans for ``pieces`` (``app.spans``), each with where
    that run lies; skipping ``exclude`` and deleted tracks; with ``allowed`` (``allowed_spans``), among those."""
    hits = span_index(snapshot).search(pieces, lam=lam, k=k + OVERFETCH, allowed=allowed, exclude=exclude)
    shown = catalog.listings(session, [h.track_id for h in hits], snapshot.model_version)
    return [TrackResult(track_id=h.track_id, title=shown[h.track_id].title, artist=shown[h.track_id].artist,
                        score=h.score, corr=h.corr, neg_kl=h.neg_kl, valence=shown[h.track_id].valence,
                        arousal=shown[h.track_id].arousal, start_s=h.start_s, end_s=h.end_s)
            for h in hits if h.track_id in shown][:k]


def search_span_cue_list(session: Session, snapshot: SearchIndex, cues: list[Gaussians], *, lam: float, k: int,
                         allowed: np.ndarray | None = None) -> list[list[TrackResult]]:
    """The top ``k`` spans of each cue's pieces, no track (so no span) in two cues: earlier cues choose first."""
    answers: list[list[TrackResult]] = []
    for pieces in cues:
        used = {r.track_id for cue in answers for r in cue}
        answers.append(search_spans(session, snapshot, pieces, lam=lam, k=k, exclude=used, allowed=allowed))
    return answers


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
    found = _search_many(session, snapshot, stack(queries), settings=settings, lams=[lam] * len(queries),
                         ks=[k * (i + 1) for i in range(len(queries))])
    answers, used = [], set()
    for results in found:
        cue = [r for r in results if r.track_id not in used][:k]
        used |= {r.track_id for r in cue}
        answers.append(cue)
    return answers


def search_tracks_many(session: Session, snapshot: SearchIndex, queries: Gaussians, *, settings: Settings,
                       lams: Sequence[float], ks: Sequence[int]) -> list[list[TrackResult]]:
    """``search_tracks`` of several unfiltered queries ((n, d) arrays, a lam and a k each) in one index call and
    one catalogue listing: each answer is the one ``search_tracks`` gives that query alone."""
    found = _search_many(session, snapshot, queries, settings=settings, lams=lams, ks=ks)
    return [results[:k] for results, k in zip(found, ks, strict=True)]


def _search_many(session: Session, snapshot: SearchIndex, queries: Gaussians, *, settings: Settings,
                 lams: Sequence[float], ks: Sequence[int]) -> list[list[TrackResult]]:
    """Each query's top ``k + OVERFETCH`` hits that are still in the catalogue, listed in one database query."""
    found = snapshot.search_many(queries, lams=lams, ks=[k + OVERFETCH for k in ks],
                                 rescore_head=settings.rescore_head, ef_search=settings.hnsw_ef_search)
    shown = catalog.listings(session, sorted({h.track_id for hits in found for h in hits}), snapshot.model_version)
    return [_results(hits, shown) for hits in found]


def _results(hits: list[Hit], shown: dict[int, catalog.Listing]) -> list[TrackResult]:
    return [TrackResult(track_id=h.track_id, title=shown[h.track_id].title, artist=shown[h.track_id].artist,
                        score=h.score, corr=h.corr, neg_kl=h.neg_kl, valence=shown[h.track_id].valence,
                        arousal=shown[h.track_id].arousal)
            for h in hits if h.track_id in shown]
