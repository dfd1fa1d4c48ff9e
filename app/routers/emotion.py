"""Emotion to music: a VA curve, a VA point or a named emotion in; ranked tracks with score parts out."""

from __future__ import annotations

from fastapi import APIRouter

from app import limits
from app.analysis import encode_emotion_query
from app.db import SessionDep
from app.routers.schemas import EmotionQuery, EmotionToMusicResponse, ErrorOut, NamedEmotion, TrackHit, VAPoint
from app.search import NO_TRACK_PASSES, allowed_rows, search_tracks
from app.services import EmbedderDep, IndexDep, SettingsDep

router = APIRouter(prefix="/v1", tags=["emotion"])
ERRORS = {code: {"model": ErrorOut} for code in (413, 422, 503)}


@router.post("/emotion-to-music", response_model=EmotionToMusicResponse, responses=ERRORS,  # type: ignore[arg-type]
             summary="Tracks whose feeling matches a curve, a point or a named emotion")
def emotion_to_music(query: EmotionQuery, settings: SettingsDep, embedder: EmbedderDep, snapshot: IndexDep,
                     session: SessionDep) -> EmotionToMusicResponse:
    limits.check_k(settings, query.k)
    if query.curve is not None:
        limits.check_curve(settings, [p.t for p in query.curve])
    point = None if query.point is None else (query.point.valence, query.point.arousal)
    gaussians, (valence, arousal) = encode_emotion_query(embedder, curve=query.curve_array(), point=point,
                                                         emotion=query.emotion)
    lam = embedder.config.score_lam if query.lam is None else query.lam
    allowed = allowed_rows(session, snapshot, query.filters.to_filters() if query.filters else None)
    results = search_tracks(session, snapshot, gaussians, settings=settings, lam=lam, k=query.k, allowed=allowed)
    return EmotionToMusicResponse(results=[TrackHit.of(r, query_va=(valence, arousal)) for r in results],
                                  reason=NO_TRACK_PASSES if query.filters and not results else None,
                                  query=VAPoint(valence=valence, arousal=arousal), lam=lam,
                                  model_version=embedder.version, index_generation=snapshot.generation)


@router.get("/emotions", response_model=list[NamedEmotion], summary="The named emotions a query may use")
def emotions(embedder: EmbedderDep) -> list[NamedEmotion]:
    return [NamedEmotion(name=t.name, valence=t.valence, arousal=t.arousal, source=t.source) for t in embedder.terms]
