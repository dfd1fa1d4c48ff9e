"""Emotion to music: a VA curve, a VA point or a named emotion in; ranked tracks with score parts out."""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter

from app.analysis import encode_emotion_query
from app.db import SessionDep
from app.errors import PayloadTooLargeError
from app.routers.schemas import EmotionQuery, EmotionToMusicResponse, ErrorOut, NamedEmotion, VAPoint
from app.search import search_tracks
from app.services import ServicesDep

router = APIRouter(prefix="/v1", tags=["emotion"])
ERRORS = {code: {"model": ErrorOut} for code in (413, 422, 503)}


def _check_limits(query: EmotionQuery, services: ServicesDep) -> None:
    settings = services.settings
    if query.k > settings.max_k:
        raise PayloadTooLargeError(f"k={query.k} is above the limit of {settings.max_k} (MOODSPACE_MAX_K)")
    if query.curve is not None:
        if len(query.curve) > settings.max_curve_points:
            raise PayloadTooLargeError(f"the curve has {len(query.curve)} points; the limit is "
                                       f"{settings.max_curve_points} (MOODSPACE_MAX_CURVE_POINTS)")
        if query.curve[-1].t - query.curve[0].t > settings.max_curve_seconds:
            raise PayloadTooLargeError(f"the curve spans more than {settings.max_curve_seconds:.0f} s "
                                       "(MOODSPACE_MAX_CURVE_SECONDS)")


@router.post("/emotion-to-music", response_model=EmotionToMusicResponse, responses=ERRORS,  # type: ignore[arg-type]
             summary="Tracks whose feeling matches a curve, a point or a named emotion")
def emotion_to_music(query: EmotionQuery, services: ServicesDep, session: SessionDep) -> EmotionToMusicResponse:
    _check_limits(query, services)
    embedder = services.require_embedder()
    services.require_index()
    curve = None if query.curve is None else np.array([[p.t, p.valence, p.arousal] for p in query.curve])
    point = None if query.point is None else (query.point.valence, query.point.arousal)
    gaussians, (valence, arousal) = encode_emotion_query(embedder, curve=curve, point=point, emotion=query.emotion)
    lam = embedder.config.score_lam if query.lam is None else query.lam
    results = search_tracks(services, session, gaussians, lam=lam, k=query.k)
    return EmotionToMusicResponse(results=results, query=VAPoint(valence=valence, arousal=arousal), lam=lam,
                                  model_version=embedder.version)


@router.get("/emotions", response_model=list[NamedEmotion], summary="The named emotions a query may use")
def emotions(services: ServicesDep) -> list[NamedEmotion]:
    embedder = services.require_embedder()
    return [NamedEmotion(name=t.name, valence=t.valence, arousal=t.arousal, source=t.source) for t in embedder.terms]
