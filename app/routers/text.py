"""Story to music: a paragraph in; tracks for the whole text, or a cue list following its emotional arc."""

from __future__ import annotations

from fastapi import APIRouter

from app.db import SessionDep
from app.errors import NotReadyError, PayloadTooLargeError
from app.routers.schemas import ErrorOut, SegmentOut, SentenceOut, TextQuery, TextToMusicResponse
from app.search import search_tracks
from app.services import ServicesDep
from app.story import arc_segments, whole_query
from models.errors import QueryError
from models.text import split_sentences

router = APIRouter(prefix="/v1", tags=["text"])
ERRORS = {code: {"model": ErrorOut} for code in (413, 422, 503)}


def _sentences(query: TextQuery, services: ServicesDep) -> list[str]:
    settings = services.settings
    if len(query.text) > settings.max_text_chars:
        raise PayloadTooLargeError(f"the text has {len(query.text)} characters; the limit is "
                                   f"{settings.max_text_chars} (MOODSPACE_MAX_TEXT_CHARS)")
    if query.k > settings.max_k:
        raise PayloadTooLargeError(f"k={query.k} is above the limit of {settings.max_k} (MOODSPACE_MAX_K)")
    sentences = split_sentences(query.text)
    if not sentences:
        raise QueryError("text: the text is empty")
    return sentences


@router.post("/text-to-music", response_model=TextToMusicResponse, responses=ERRORS,  # type: ignore[arg-type]
             summary="Music for a story, as a whole or following its emotional arc")
def text_to_music(query: TextQuery, services: ServicesDep, session: SessionDep) -> TextToMusicResponse:
    sentences = _sentences(query, services)
    embedder = services.require_embedder()
    if not embedder.has_text:
        raise NotReadyError("the model has no text heads; train them with `moodspace train-text`")
    services.require_index()
    va = embedder.text_va(sentences)
    lam = embedder.config.score_lam if query.lam is None else query.lam
    response = TextToMusicResponse(
        mode=query.mode, bridge=query.bridge, lam=lam, model_version=embedder.version,
        sentences=[SentenceOut(text=s, valence=v, arousal=a) for s, (v, a) in zip(sentences, va, strict=True)])
    if query.mode == "whole":
        gaussians = whole_query(embedder, query.text, sentences, va, bridge=query.bridge)
        response.results = search_tracks(services, session, gaussians, lam=lam, k=query.k)
        return response
    used: set[int] = set()
    response.segments = []
    for part in arc_segments(embedder, sentences, va, bridge=query.bridge):
        results = search_tracks(services, session, part.query, lam=lam, k=query.k, exclude=used)
        used |= {r.track_id for r in results}
        response.segments.append(SegmentOut(start=part.start, end=part.end, sentences=sentences[part.start:part.end],
                                            valence=part.valence, arousal=part.arousal, results=results))
    return response
