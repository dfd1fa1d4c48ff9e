"""Story to music: sentences -> valence/arousal per sentence -> a whole-text query or an emotional arc of
segments, each with its own tracks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.arc import segment, smooth
from models.inference import Embedder
from models.scoring import Gaussians

BRIDGES = ("va", "metric")


@dataclass(frozen=True)
class Cue:
    start: int  # first sentence (0-based)
    end: int  # one past the last sentence
    valence: float
    arousal: float


@dataclass(frozen=True)
class Segment(Cue):
    query: Gaussians  # the cue's query for whole-track search


def whole_query(embedder: Embedder, text: str, va: np.ndarray, *, bridge: str) -> Gaussians:
    """One query for the whole story: its sentence-VA curve through the emotion encoder (``va``), or the
    paragraph through the metric head (``metric``)."""
    return whole_queries(embedder, [text], [va], bridge=bridge)


def whole_queries(embedder: Embedder, texts: Sequence[str], vas: Sequence[np.ndarray], *, bridge: str) -> Gaussians:
    """``whole_query`` of several stories with one bridge in one pass of the encoder: (n, d) arrays."""
    if bridge == "metric":
        return embedder.embed_text(list(texts))
    return embedder.embed_curves([embedder.story_curve(va) for va in vas])


def arc_cues(va: np.ndarray) -> list[Cue]:
    """The story's stretches between emotional change points, each with its mean (smoothed) VA."""
    out = []
    for start, end in segment(va):
        mean = smooth(va[start:end]).mean(axis=0)
        out.append(Cue(start, end, float(mean[0]), float(mean[1])))
    return out


def arc_segments(embedder: Embedder, sentences: list[str], va: np.ndarray, *, bridge: str) -> list[Segment]:
    """Segments at the story's emotional change points, each with its mean VA and its query."""
    out = []
    for cue in arc_cues(va):
        if bridge == "metric":
            query = embedder.embed_text([" ".join(sentences[cue.start:cue.end])])
        else:
            query = embedder.embed_curve(embedder.story_curve(va[cue.start:cue.end]))
        out.append(Segment(cue.start, cue.end, cue.valence, cue.arousal, query))
    return out


def sentence_curve(va: np.ndarray, seconds_per_sentence: float) -> np.ndarray:
    """A (S, 2) sentence VA sequence as a curve over ``S * seconds_per_sentence`` seconds, each sentence's VA at
    the middle of its time and held to both ends."""
    middles = (np.arange(va.shape[0]) + 0.5) * seconds_per_sentence
    times = np.r_[0.0, middles, va.shape[0] * seconds_per_sentence]
    return np.column_stack([times, np.vstack([va[:1], va, va[-1:]])])


def span_query(embedder: Embedder, text: str, va: np.ndarray, *, bridge: str,
               seconds_per_sentence: float) -> tuple[Gaussians, float]:
    """The pieces of a span query (``app.spans``) for a text of ``len(va)`` sentences, and the seconds it takes:
    its sentence-VA curve cut on the span grid (``va``), or its metric embedding held that long (``metric``)."""
    seconds = va.shape[0] * seconds_per_sentence
    if bridge == "metric":
        return embedder.span_steady_query(embedder.embed_text([text]), seconds), seconds
    return embedder.span_curve_query(sentence_curve(va, seconds_per_sentence)), seconds
