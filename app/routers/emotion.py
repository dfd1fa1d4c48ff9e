"""Emotion to music: a VA curve, a VA point, a named emotion or a catalogue track in; ranked tracks with score parts
out."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import NamedTuple

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session, sessionmaker

from app import limits
from app.analysis import encode_emotion_query, encode_point_queries, encode_span_query
from app.index import SearchIndex
from app.routers.schemas import EmotionQuery, EmotionToMusicResponse, ErrorOut, NamedEmotion, TrackHit, VAPoint
from app.search import (
    NO_TRACK_PASSES,
    QueryEmbedding,
    TrackResult,
    allowed_rows,
    allowed_spans,
    no_span_reason,
    search_alike,
    search_spans,
    search_tracks,
    search_tracks_many,
    span_index,
    track_query,
)
from app.services import EmbedderDep, IndexDep, Services, ServicesDep, SettingsDep
from app.settings import Settings
from models.inference import Embedder
from models.scoring import Gaussians, stack

router = APIRouter(prefix="/v1", tags=["emotion"])
ERRORS = {code: {"model": ErrorOut} for code in (404, 409, 413, 422, 503)}
NO_OTHER_TRACK = "the index holds no track but the one asked about"


def _spans(session: Session, snapshot: SearchIndex, embedder: Embedder, query: EmotionQuery, gaussians: Gaussians,
           *, settings: Settings, lam: float, exclude: tuple[int, ...]) -> tuple[list[TrackResult], str | None]:
    """The best-matching span of each of the top tracks, and why there is none when there is none."""
    if query.span_seconds is not None:
        limits.check_span(settings, query.span_seconds)
    spans = span_index(snapshot)
    pieces, seconds = encode_span_query(embedder, gaussians, curve=query.curve_array(), seconds=query.span_seconds)
    allowed = allowed_spans(session, spans, query.filters.to_filters() if query.filters else None)
    results = search_spans(session, snapshot, pieces, lam=lam, k=query.k, allowed=allowed, exclude=exclude)
    return results, None if results else no_span_reason(spans, seconds=seconds, allowed=allowed)


@router.post("/emotion-to-music", response_model=EmotionToMusicResponse, responses=ERRORS,  # type: ignore[arg-type]
             summary="Tracks whose feeling matches a curve, a point, a named emotion or a catalogue track")
async def emotion_to_music(query: EmotionQuery, settings: SettingsDep, embedder: EmbedderDep, snapshot: IndexDep,
                           services: ServicesDep) -> EmotionToMusicResponse:
    if query.curve is None and query.like_track is None and not query.span and query.filters is None:
        limits.check_k(settings, query.k)
        return await services.answer_batched(_answer_points, PointRequest(query, services))  # the query thread
    work = partial(_emotion_to_music, query, settings, embedder, snapshot, services.sessions)
    if query.curve is None and not query.span:
        return await services.answer(work)  # a filtered point or named emotion, or a track: the query thread, alone
    return await run_in_threadpool(work)


class PointRequest(NamedTuple):
    query: EmotionQuery
    services: Services


def _answer_points(requests: Sequence[PointRequest]) -> list[EmotionToMusicResponse | Exception]:
    """Unfiltered point and named-emotion queries waiting together (``app.query_thread``), each answered as
    ``_emotion_to_music`` answers it alone: the points in one pass of the encoder, the tracks in one index call and
    one catalogue listing. Every request of a process shares its ``Services``."""
    services = requests[0].services
    embedder, snapshot, settings = services.require_model().embedder, services.require_index(), services.settings
    queries = [r.query for r in requests]
    encoded = encode_point_queries(embedder, [(None if q.point is None else (q.point.valence, q.point.arousal),
                                               q.emotion) for q in queries])
    asked = {i: e for i, e in enumerate(encoded) if not isinstance(e, Exception)}  # the rest: an unknown emotion
    lams = {i: embedder.query_lam(queries[i].lam) for i in asked}
    with services.sessions() as session:
        found = search_tracks_many(session, snapshot, stack([g for g, _ in asked.values()]), settings=settings,
                                   lams=list(lams.values()), ks=[queries[i].k for i in asked]) if asked else []
    results = dict(zip(asked, found, strict=True))
    return [e if isinstance(e, Exception) else
            EmotionToMusicResponse(results=[TrackHit.of(r, query_va=e[1]) for r in results[i]], reason=None,
                                   query=VAPoint(valence=e[1][0], arousal=e[1][1]), lam=lams[i],
                                   model_version=embedder.version, index_generation=snapshot.generation)
            for i, e in enumerate(encoded)]


def _emotion_to_music(query: EmotionQuery, settings: Settings, embedder: Embedder, snapshot: SearchIndex,
                      sessions: sessionmaker[Session]) -> EmotionToMusicResponse:
    limits.check_k(settings, query.k)
    if query.curve is not None:
        limits.check_curve(settings, [p.t for p in query.curve])
    lam = embedder.query_lam(query.lam)
    filters = query.filters.to_filters() if query.filters else None
    exclude = () if query.like_track is None else (query.like_track,)  # a track is not "like" itself
    with sessions() as session:
        asked = _query(session, embedder, snapshot, query)
        gaussians, (valence, arousal) = asked.gaussians, asked.va
        if query.span:
            results, reason = _spans(session, snapshot, embedder, query, gaussians, settings=settings, lam=lam,
                                     exclude=exclude)
        else:
            if query.like_track is not None:
                results = search_alike(session, snapshot, asked, settings=settings, lam=lam, k=query.k,
                                       exclude=exclude, filters=filters)
            else:
                results = search_tracks(session, snapshot, gaussians, settings=settings, lam=lam, k=query.k,
                                        allowed=allowed_rows(session, snapshot, filters))
            reason = NO_TRACK_PASSES if filters and not results else None
            if not results and reason is None and exclude:
                reason = NO_OTHER_TRACK
    return EmotionToMusicResponse(results=[TrackHit.of(r, query_va=(valence, arousal)) for r in results],
                                  reason=reason, query=VAPoint(valence=valence, arousal=arousal), lam=lam,
                                  model_version=embedder.version, index_generation=snapshot.generation)


def _query(session: Session, embedder: Embedder, snapshot: SearchIndex, query: EmotionQuery) -> QueryEmbedding:
    """The query's embedding and its VA: a catalogue track's stored embedding (with its class probabilities), or
    the emotion encoder's."""
    if query.like_track is not None:
        return track_query(session, query.like_track, snapshot.model_version)
    point = None if query.point is None else (query.point.valence, query.point.arousal)
    gaussians, va = encode_emotion_query(embedder, curve=query.curve_array(), point=point, emotion=query.emotion)
    return QueryEmbedding(gaussians, va, None)


@router.get("/emotions", response_model=list[NamedEmotion], summary="The named emotions a query may use")
def emotions(embedder: EmbedderDep) -> list[NamedEmotion]:
    return [NamedEmotion(name=t.name, valence=t.valence, arousal=t.arousal, source=t.source) for t in embedder.terms]
