"""Query-time work on top of the model: analyse audio, rank named emotions, encode emotion queries."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from app.decoding import Decoded, fingerprint
from models.curves import curve_mean
from models.errors import QueryError
from models.frontend import hear
from models.fusion import context_text
from models.harmony import Tonality
from models.inference import Embedder, TrackSpans
from models.scoring import Gaussians, composite_scores, unstack
from models.song_model import SongModel
from models.taxonomy import TAXONOMIES
from models.text import sentence_encoder


@dataclass(frozen=True)
class SongFusion:
    """What the music model's heads read from a song model's representation of a track with lyrics."""

    version: str  # the song model's
    valence: float
    arousal: float
    classes: dict[str, dict[str, float]]  # empty where only the stored VA is at hand


@dataclass(frozen=True)
class SongAnalysis:
    """A song model's reading of a track with lyrics (``models.song_model``): the fused embedding, which the
    index holds in place of the audio's, and its reading."""

    gaussians: Gaussians  # (1, d) each
    fusion: SongFusion


@dataclass(frozen=True)
class TrackAnalysis:
    """A track's reading (``models.inference.TrackReading``: the overall VA is the mean of the curve) with the
    whole clip's embedding (``gaussians``, the index's item); named emotions are ranked from ``windows``."""

    gaussians: Gaussians  # (1, d) each
    windows: Gaussians  # (W, d) each
    classes: dict[str, dict[str, float]]  # taxonomy -> class -> probability, averaged over the windows
    valence: float
    arousal: float
    valence_std: float
    arousal_std: float
    curve: list[list[float]]  # [[t, valence, arousal], ...] at window centres
    duration_s: float
    tonality: Tonality  # tempo, key and mode (models.harmony)
    fingerprint: str  # of the decoded signal (app.decoding.fingerprint)
    spans: TrackSpans | None  # the span search's units (models.inference.SpanGrid); computed for the catalogue
    song: SongAnalysis | None = None  # where a song model read the track's lyrics

    @property
    def indexed(self) -> Gaussians:
        """The embedding the index holds: the song model's where it read the lyrics, else the audio's."""
        return self.gaussians if self.song is None else self.song.gaussians

    @property
    def indexed_classes(self) -> dict[str, list[float]]:
        """The class probabilities of the same representation (taxonomy -> [p, ...] in the taxonomy's order):
        what tracks that feel alike are ranked by (``app.alike``)."""
        classes = self.classes if self.song is None else self.song.fusion.classes
        return {t: list(probabilities.values()) for t, probabilities in classes.items()}


@dataclass(frozen=True)
class EmotionHit:
    name: str
    score: float
    corr: float
    neg_kl: float
    valence: float
    arousal: float


def analyze_audio(embedder: Embedder, y: np.ndarray, *, sr: int) -> TrackAnalysis:
    features, tonality = hear(embedder.frontend, y)
    return analyze_decoded(embedder, Decoded(features, y.size / sr, tonality, fingerprint(y)))


def analyze_decoded(embedder: Embedder, decoded: Decoded, *, spans: bool = False, song: SongModel | None = None,
                    lyrics: str | None = None, title: str = "", artist: str = "") -> TrackAnalysis:
    """Embedding of the whole clip, the VA curve read over sliding windows, and its aggregate reading; with
    ``spans``, the span embeddings a catalogue track keeps (a query upload does not need them); with a ``song``
    model and ``lyrics``, the fused reading too (``TrackAnalysis.song``; a tri-modal song model also reads the
    ``title`` and ``artist`` where both are known). The curve and its aggregate stay the audio's: lyrics carry no
    time."""
    features = decoded.features
    track = embedder.read_track(features)
    whole = embedder.represent_tracks([features])  # (1, H): the index's item, and what a song model replaces
    return TrackAnalysis(
        gaussians=embedder.read_representations(whole).gaussians, windows=track.windows,
        classes=rounded(track.classes),
        valence=float(track.mean[0]), arousal=float(track.mean[1]), valence_std=float(track.std[0]),
        arousal_std=float(track.std[1]),
        curve=[[round(float(t), 3), round(float(cv), 4), round(float(ca), 4)]
               for t, (cv, ca) in zip(track.times, track.curve, strict=True)],
        duration_s=decoded.seconds, tonality=decoded.tonality, fingerprint=decoded.fingerprint,
        spans=_within(embedder.embed_spans(features), decoded.seconds) if spans else None,
        song=(analyze_song(embedder, song, features, whole[0], lyrics, context=song_context(title, artist))
              if song is not None and lyrics else None),
    )


def rounded(classes: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """taxonomy -> class -> probability (4 decimals) from (C,) probabilities per taxonomy."""
    return {t: dict(zip(TAXONOMIES[t], (round(float(p), 4) for p in probabilities), strict=True))
            for t, probabilities in classes.items()}


def song_context(title: str, artist: str) -> str | None:
    """What a tri-modal song model reads of a track's title and artist: both, as the models were trained on songs
    that have both (a file name standing in for a title is not read alone)."""
    return context_text(title, artist) if title.strip() and artist.strip() else None


def analyze_song(embedder: Embedder, song: SongModel, features: np.ndarray, whole: np.ndarray, lyrics: str, *,
                 context: str | None = None) -> SongAnalysis | None:
    """The song model's reading of (T, F) front-end ``features``, whose whole-clip representation is ``whole``
    (H,), with ``lyrics`` (and ``context``, ``song_context``'s text, where the model reads it); None where the
    lyrics hold no words the encoder reads. The song model must have been fitted with ``embedder``'s music
    model."""
    assert song.music_model == embedder.version, "a song model replaces its own music model's representation"
    encoder = sentence_encoder()
    segments = encoder.encode_segments(lyrics)
    if segments.shape[0] == 0:
        return None
    vector = encoder.encode([context])[0] if song.reads_context and context else None
    h = song.represent(whole, features, segments, vector)
    read = embedder.read_representations(h[None])
    valence, arousal = (round(float(x), 4) for x in read.va.mean[0])
    return SongAnalysis(read.gaussians, SongFusion(song.version, valence, arousal,
                                                   rounded({t: p[0] for t, p in read.classes.items()})))


def _within(spans: TrackSpans, seconds: float) -> TrackSpans:
    """Spans whose last frame runs past the audio's end (frames are padded) end where the audio does."""
    return TrackSpans(spans.starts, np.minimum(spans.ends, seconds), spans.gaussians)


def rank_emotions(embedder: Embedder, music: Gaussians, *, lam: float, k: int) -> list[EmotionHit]:
    """Named emotions ranked by the composite score, averaged over the rows of ``music`` (a track's windows, or
    one embedding): music-to-emotion."""
    scores = composite_scores(music, embedder.terms_embedded, lam=lam)
    score, corr, neg_kl = (part.mean(axis=0) for part in scores)
    order = np.argsort(-score, kind="stable")[:k]
    return [EmotionHit(embedder.terms[i].name, float(score[i]), float(corr[i]), float(neg_kl[i]),
                       embedder.terms[i].valence, embedder.terms[i].arousal)
            for i in order]


def term_by_name(embedder: Embedder, name: str) -> int:
    names = [t.name for t in embedder.terms]
    key = name.strip().lower()
    if key not in names:
        close = difflib.get_close_matches(key, names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise QueryError(f"unknown emotion {name!r}{hint}; known: {', '.join(sorted(names))}")
    return names.index(key)


def encode_emotion_query(embedder: Embedder, *, curve: np.ndarray | None = None,
                         point: tuple[float, float] | None = None, emotion: str | None = None
                         ) -> tuple[Gaussians, tuple[float, float]]:
    """The query embedding for exactly one of a curve (T, 3), a VA point or a named emotion, and its mean VA.
    Curves and points arrive validated (the request schema checks them)."""
    if curve is not None:
        v, a = curve_mean(curve)
        return embedder.embed_curve(curve), (float(v), float(a))
    if point is not None:
        va = (float(point[0]), float(point[1]))
        return embedder.embed_points(np.array([va])), va
    assert emotion is not None, "the request schema requires one of curve, point, emotion"
    i = term_by_name(embedder, emotion)
    return Gaussians(*(part[i : i + 1] for part in embedder.terms_embedded)), tuple(embedder.term_va[i])


def encode_point_queries(embedder: Embedder, queries: Sequence[tuple[tuple[float, float] | None, str | None]]
                         ) -> list[tuple[Gaussians, tuple[float, float]] | QueryError]:
    """``encode_emotion_query`` of several (point, named emotion) queries, exactly one of the two set in each: the
    points in one pass of the emotion encoder; an unknown emotion's error in its place."""
    points = [(float(p[0]), float(p[1])) for p, _ in queries if p is not None]
    embedded = iter(unstack(embedder.embed_points(np.array(points)))) if points else iter(())
    encoded: list[tuple[Gaussians, tuple[float, float]] | QueryError] = []
    for point, emotion in queries:
        if point is not None:
            encoded.append((next(embedded), (float(point[0]), float(point[1]))))
            continue
        try:
            encoded.append(encode_emotion_query(embedder, emotion=emotion))
        except QueryError as error:
            encoded.append(error)
    return encoded


def encode_span_query(embedder: Embedder, query: Gaussians, *, curve: np.ndarray | None = None,
                      seconds: float | None = None) -> tuple[Gaussians, float]:
    """The pieces of a span query (``app.spans``) and the stretch they cover: a curve cut on the span grid over its
    length, else the steady ``query`` held for ``seconds`` (default: one span)."""
    grid = embedder.span_grid
    if curve is not None:
        return embedder.span_curve_query(curve), max(float(curve[-1, 0] - curve[0, 0]), grid.width_s)
    seconds = grid.width_s if seconds is None else seconds
    return embedder.span_steady_query(query, seconds), seconds
