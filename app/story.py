"""Story to music: sentences -> valence/arousal per sentence -> a whole-text query or an emotional arc of
segments, each with its own tracks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.arc import segment, smooth
from models.inference import Embedder
from models.scoring import Gaussians

BRIDGES = ("va", "metric")


@dataclass(frozen=True)
class Segment:
    start: int  # first sentence (0-based)
    end: int  # one past the last sentence
    valence: float
    arousal: float
    query: Gaussians


def whole_query(embedder: Embedder, text: str, sentences: list[str], va: np.ndarray, *, bridge: str) -> Gaussians:
    """One query for the whole story: its sentence-VA curve through the emotion encoder (``va``), or the
    paragraph through the metric head (``metric``)."""
    if bridge == "metric":
        return embedder.embed_text([text])
    return embedder.embed_curve(embedder.story_curve(va))


def arc_segments(embedder: Embedder, sentences: list[str], va: np.ndarray, *, bridge: str) -> list[Segment]:
    """Segments at the story's emotional change points, each with its mean VA and its query."""
    out = []
    for start, end in segment(va):
        part = va[start:end]
        if bridge == "metric":
            query = embedder.embed_text([" ".join(sentences[start:end])])
        else:
            query = embedder.embed_curve(embedder.story_curve(part))
        mean = smooth(part).mean(axis=0)
        out.append(Segment(start, end, float(mean[0]), float(mean[1]), query))
    return out
