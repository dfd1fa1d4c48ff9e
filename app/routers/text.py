"""Story to music: a paragraph in; tracks for the whole text, or a cue list following its emotional arc."""

from __future__ import annotations

from functools import partial

import numpy as np
from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session, sessionmaker

from app import limits
from app.errors import NotReadyError
from app.index import SearchIndex
from app.routers.schemas import ErrorOut, SegmentOut, SentenceOut, TextQuery, TextToMusicResponse, TrackHit
from app.search import (
    NO_TRACK_PASSES,
    allowed_rows,
    allowed_spans,
    no_span_reason,
    search_cue_list,
    search_span_cue_list,
    search_spans,
    search_tracks,
    span_index,
)
from app.services import EmbedderDep, IndexDep, ServicesDep, SettingsDep
from app.settings import Settings
from app.story import arc_cues, arc_segments, span_query, whole_query
from models.config import TextConfig
from models.errors import QueryError
from models.inference import Embedder
from models.text import split_sentences

router = APIRouter(prefix="/v1", tags=["text"])
QUICK_TEXT_CHARS = 2_000  # texts up to this long are answered on the query thread (a few sentences to encode)
ERRORS = {code: {"model": ErrorOut} for code in (409, 413, 422, 503)}


def _sentences(query: TextQuery, settings: Settings) -> list[str]:
    limits.check_text(settings, query.text)
    limits.check_k(settings, query.k)
    sentences = split_sentences(query.text)
    if not sentences:
        raise QueryError("text: the text is empty")
    return sentences


def _arc(session: Session, snapshot: SearchIndex, embedder: Embedder, query: TextQuery, sentences: list[str],
         va: np.ndarray, *, settings: Settings, lam: float) -> list[SegmentOut]:
    """A cue list: one segment per stretch of the arc (``va``: (S, 2) per sentence), no track twice."""
    allowed = allowed_rows(session, snapshot, query.filters.to_filters() if query.filters else None)
    parts = arc_segments(embedder, sentences, va, bridge=query.bridge)
    found = search_cue_list(session, snapshot, [part.query for part in parts], settings=settings, lam=lam, k=query.k,
                            allowed=allowed)
    return [SegmentOut(start=part.start, end=part.end, sentences=sentences[part.start:part.end],
                       valence=part.valence, arousal=part.arousal,
                       results=[TrackHit.of(r, query_va=(part.valence, part.arousal)) for r in results])
            for part, results in zip(parts, found, strict=True)]


def _spans(session: Session, snapshot: SearchIndex, embedder: Embedder, query: TextQuery, sentences: list[str],
           va: np.ndarray, *, settings: Settings, lam: float, response: TextToMusicResponse) -> None:
    """Span search for the whole text, or per cue of the arc: each track's best stretch as long as the text (or
    the cue) takes at ``seconds_per_sentence``; no track twice in a cue list."""
    step = query.seconds_per_sentence or (embedder.config.text or TextConfig()).seconds_per_sentence
    limits.check_span(settings, len(sentences) * step)
    spans = span_index(snapshot)
    allowed = allowed_spans(session, spans, query.filters.to_filters() if query.filters else None)
    if query.mode == "whole":
        pieces, seconds = span_query(embedder, query.text, va, bridge=query.bridge, seconds_per_sentence=step)
        results = search_spans(session, snapshot, pieces, lam=lam, k=query.k, allowed=allowed)
        mean = va.mean(axis=0)
        response.results = [TrackHit.of(r, query_va=(float(mean[0]), float(mean[1]))) for r in results]
        if not results:
            response.reason = no_span_reason(spans, seconds=seconds, allowed=allowed)
        return
    parts = arc_cues(va)
    cues = [span_query(embedder, " ".join(sentences[p.start:p.end]), va[p.start:p.end], bridge=query.bridge,
                       seconds_per_sentence=step) for p in parts]
    found = search_span_cue_list(session, snapshot, [pieces for pieces, _ in cues], lam=lam, k=query.k,
                                 allowed=allowed)
    response.segments = [SegmentOut(start=part.start, end=part.end, sentences=sentences[part.start:part.end],
                                    valence=part.valence, arousal=part.arousal,
                                    results=[TrackHit.of(r, query_va=(part.valence, part.arousal)) for r in results])
                         for part, results in zip(parts, found, strict=True)]
    if not any(results for results in found):
        seconds = min(cue_seconds for _, cue_seconds in cues)
        response.reason = no_span_reason(spans, seconds=seconds, allowed=allowed)


@router.post("/text-to-music", response_model=TextToMusicResponse, responses=ERRORS,  # type: ignore[arg-type]
             summary="Music for a story, as a whole or following its emotional arc")
async def text_to_music(query: TextQuery, settings: SettingsDep, embedder: EmbedderDep, snapshot: IndexDep,
                        services: ServicesDep) -> TextToMusicResponse:
    work = partial(_text_to_music, query, settings, embedder, snapshot, services.sessions)
    if not query.span and len(query.text) <= QUICK_TEXT_CHARS:
        return await services.answer(work)  # a paragraph over the track index: the query thread
    return await run_in_threadpool(work)  # a long text's sentences take a while to encode; spans longer still


def _text_to_music(query: TextQuery, settings: Settings, embedder: Embedder, snapshot: SearchIndex,
                   sessions: sessionmaker[Session]) -> TextToMusicResponse:
    sentences = _sentences(query, settings)
    if not embedder.has_text:
        raise NotReadyError("the model has no text heads; train them with `moodspace train-text`")
    va = embedder.text_va(sentences)
    lam = embedder.config.score_lam if query.lam is None else query.lam
    response = TextToMusicResponse(
        mode=query.mode, bridge=query.bridge, lam=lam, model_version=embedder.version,
        index_generation=snapshot.generation,
        sentences=[SentenceOut(text=s, valence=v, arousal=a) for s, (v, a) in zip(sentences, va, strict=True)])
    with sessions() as session:
        if query.span:
            _spans(session, snapshot, embedder, query, sentences, va, settings=settings, lam=lam, response=response)
            return response
        if query.mode == "whole":
            gaussians = whole_query(embedder, query.text, sentences, va, bridge=query.bridge)
            allowed = allowed_rows(session, snapshot, query.filters.to_filters() if query.filters else None)
            results = search_tracks(session, snapshot, gaussians, settings=settings, lam=lam, k=query.k,
                                    allowed=allowed)
            mean = va.mean(axis=0)
            response.results = [TrackHit.of(r, query_va=(float(mean[0]), float(mean[1]))) for r in results]
            found = bool(results)
        else:
            response.segments = _arc(session, snapshot, embedder, query, sentences, va, settings=settings, lam=lam)
            found = any(s.results for s in response.segments)
    if query.filters and not found:
        response.reason = NO_TRACK_PASSES
    return response
