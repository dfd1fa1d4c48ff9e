"""Story to music: a paragraph in; tracks for the whole text, or a cue list following its emotional arc."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import NamedTuple

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
    search_tracks_many,
    span_index,
)
from app.services import EmbedderDep, IndexDep, Services, ServicesDep, SettingsDep
from app.settings import Settings
from app.story import BRIDGES, arc_cues, arc_segments, span_query, whole_queries, whole_query
from models.config import TextConfig
from models.errors import QueryError
from models.inference import Embedder
from models.scoring import Gaussians, stack, unstack
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
    quick = not query.span and len(query.text) <= QUICK_TEXT_CHARS
    if quick and query.mode == "whole" and query.filters is None:
        story = StoryRequest(query, _sentences(query, settings), services)
        return await services.answer_batched(_answer_stories, story)  # the query thread, with others like it
    work = partial(_text_to_music, query, settings, embedder, snapshot, services.sessions)
    if quick:
        return await services.answer(work)  # a paragraph over the track index: the query thread
    return await run_in_threadpool(work)  # a long text's sentences take a while to encode; spans longer still


class StoryRequest(NamedTuple):
    query: TextQuery
    sentences: list[str]
    services: Services


def _answer_stories(requests: Sequence[StoryRequest]) -> list[TextToMusicResponse | Exception]:
    """Unfiltered whole-story queries waiting together (``app.query_thread``), each answered as
    ``_text_to_music`` answers it alone: every sentence in one pass of the sentence encoder, the stories' queries
    in one pass per bridge, the tracks in one index call and one catalogue listing."""
    services = requests[0].services
    embedder = _require_text(services.require_model().embedder)
    snapshot, settings = services.require_index(), services.settings
    counts = [len(r.sentences) for r in requests]
    vas = np.split(embedder.text_va([s for r in requests for s in r.sentences]), np.cumsum(counts)[:-1])
    queries: dict[int, Gaussians] = {}
    for bridge in BRIDGES:
        asked = [i for i, r in enumerate(requests) if r.query.bridge == bridge]
        if asked:
            found = whole_queries(embedder, [requests[i].query.text for i in asked], [vas[i] for i in asked],
                                  bridge=bridge)
            queries |= dict(zip(asked, unstack(found), strict=True))
    lams = [embedder.query_lam(r.query.lam) for r in requests]
    with services.sessions() as session:
        results = search_tracks_many(session, snapshot, stack([queries[i] for i in range(len(requests))]),
                                     settings=settings, lams=lams, ks=[r.query.k for r in requests])
    answers: list[TextToMusicResponse | Exception] = []
    for request, va, lam, found_tracks in zip(requests, vas, lams, results, strict=True):
        response = _response(request.query, request.sentences, va, embedder=embedder, snapshot=snapshot, lam=lam)
        mean = va.mean(axis=0)
        response.results = [TrackHit.of(r, query_va=(float(mean[0]), float(mean[1]))) for r in found_tracks]
        answers.append(response)
    return answers


def _require_text(embedder: Embedder) -> Embedder:
    if not embedder.has_text:
        raise NotReadyError("the model has no text heads; train them with `moodspace train-text`")
    return embedder


def _response(query: TextQuery, sentences: list[str], va: np.ndarray, *, embedder: Embedder, snapshot: SearchIndex,
              lam: float) -> TextToMusicResponse:
    """The answer's frame: the query's settings and each sentence's reading, no tracks yet."""
    return TextToMusicResponse(
        mode=query.mode, bridge=query.bridge, lam=lam, model_version=embedder.version,
        index_generation=snapshot.generation,
        sentences=[SentenceOut(text=s, valence=v, arousal=a) for s, (v, a) in zip(sentences, va, strict=True)])


def _text_to_music(query: TextQuery, settings: Settings, embedder: Embedder, snapshot: SearchIndex,
                   sessions: sessionmaker[Session]) -> TextToMusicResponse:
    sentences = _sentences(query, settings)
    va = _require_text(embedder).text_va(sentences)
    lam = embedder.query_lam(query.lam)
    response = _response(query, sentences, va, embedder=embedder, snapshot=snapshot, lam=lam)
    with sessions() as session:
        if query.span:
            _spans(session, snapshot, embedder, query, sentences, va, settings=settings, lam=lam, response=response)
            return response
        if query.mode == "whole":
            gaussians = whole_query(embedder, query.text, va, bridge=query.bridge)
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
