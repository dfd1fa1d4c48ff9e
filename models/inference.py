"""Everything a trained bundle answers at query time: embed audio, windows of audio, VA curves, VA points and
named emotions; read valence/arousal off a music embedding.

The VA reading comes from a categorical head where the config names one (``config.class_reading``: the expected VA
placement of the class probabilities; ``config.grid_share`` mixes the grid reading below into it, axis by axis),
else from the music encoder's dimensional head where the model has one
(``config.dimensional``: a Gaussian over valence and arousal from the shared music representation). Otherwise it is
a music-to-emotion
retrieval: a grid of constant VA sequences over [-1, 1]^2 is encoded once by the emotion encoder; a music
embedding scores every grid point with the composite score, and a softmax over those scores (temperature fitted on
validation data, stored in the model) gives a mean and a spread.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from models.bundle import Bundle
from models.config import TextConfig
from models.curves import resample_curve
from models.encoders import CrossModalModel, pad
from models.frontend import frame_times, make_frontend
from models.scoring import Gaussians, composite_scores
from models.taxonomy import CLASS_VA, TAXONOMIES
from models.text import BASE_VERSION, sentence_encoder
from models.vocabulary import EmotionTerm, vocabulary

GRID_STEPS = 21  # VA grid points per axis for the reading
POINT_FRAMES = 8  # a VA point is encoded as a constant sequence of this many frames
WINDOW_SECONDS = 7.68  # window of the VA curve read from audio (9 log-mel frames; 3 musicnn frames)
SPAN_SECONDS = 10.0  # a catalogue span (the unit of span search) is about this long ...
SPAN_HOP_SECONDS = 5.0  # ... and one starts about this often (both rounded to whole frames)


def va_grid(steps: int = GRID_STEPS) -> np.ndarray:
    axis = np.linspace(-1.0, 1.0, steps)
    return np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1).reshape(-1, 2)


def curve_sequence(curve: np.ndarray, *, frame_seconds: float) -> np.ndarray:
    """A validated (T, 3) curve read at frame centres from its first to its last time: (frames, 2).

    A single point, or a curve shorter than one frame, becomes ``POINT_FRAMES`` copies of its mean."""
    start, end = curve[0, 0], curve[-1, 0]
    if end - start < frame_seconds:
        return np.repeat(curve[:, 1:].mean(axis=0, keepdims=True), POINT_FRAMES, axis=0)
    times = start + (np.arange(int((end - start) / frame_seconds) + 1) + 0.5) * frame_seconds
    return resample_curve(curve, np.clip(times, start, end))


@dataclass(frozen=True)
class Reading:
    """Valence/arousal read off music embeddings: mean and std, each (N, 2)."""

    mean: np.ndarray
    std: np.ndarray


@dataclass(frozen=True)
class TrackReading:
    """One reading per track: the VA curve over sliding windows and its aggregate. ``mean`` is the curve's mean;
    ``std`` the spread of the window readings around it (mean within-window variance plus the variance of the
    window means); ``classes`` each categorical head's probabilities averaged over the same windows. Looping a
    clip leaves all of them where they were."""

    windows: Gaussians  # (W, d) each
    times: np.ndarray  # (W,) window centres in seconds
    curve: np.ndarray  # (W, 2) valence, arousal per window
    mean: np.ndarray  # (2,)
    std: np.ndarray  # (2,)
    classes: dict[str, np.ndarray]  # taxonomy -> (C,)


@dataclass(frozen=True)
class SpanGrid:
    """Where a track's spans lie: ``width`` frames each, one every ``hop`` frames from the start. A query for a
    stretch of ``seconds`` is cut on the same grid into ``pieces(seconds)`` pieces, piece ``j`` matched against
    the span ``j`` hops after the first: a run of spans follows the query's shape, not only its mean."""

    width: int
    hop: int
    frame_seconds: float

    @classmethod
    def of(cls, frame_seconds: float) -> SpanGrid:
        return cls(max(1, round(SPAN_SECONDS / frame_seconds)), max(1, round(SPAN_HOP_SECONDS / frame_seconds)),
                   frame_seconds)

    @property
    def width_s(self) -> float:
        return self.width * self.frame_seconds

    @property
    def hop_s(self) -> float:
        return self.hop * self.frame_seconds

    def pieces(self, seconds: float) -> int:
        """Spans in the longest run no longer than ``seconds`` (one at least: a shorter stretch is matched to one
        span)."""
        return max(1, int(np.floor((seconds - self.width_s) / self.hop_s + 1e-9)) + 1)

    def starts(self, n_frames: int) -> np.ndarray:
        """First frame of each span of a track of ``n_frames`` (one span of every frame if it is shorter)."""
        return np.arange(0, max(n_frames - self.width, 0) + 1, self.hop)


@dataclass(frozen=True)
class TrackSpans:
    """A track's spans: start and end in seconds and one music embedding each, in time order."""

    starts: np.ndarray  # (S,) seconds
    ends: np.ndarray  # (S,)
    gaussians: Gaussians  # (S, d) each


@dataclass(frozen=True)
class RepresentationReading:
    """What the music model's heads read from representations: (N, d) embeddings, (N, C_t) class probabilities per
    taxonomy, and the (N, 2) VA reading."""

    gaussians: Gaussians
    classes: dict[str, np.ndarray]
    va: Reading


def placement_reading(probabilities: np.ndarray, taxonomy: str) -> Reading:
    """The expected VA placement of (N, C) class probabilities of ``taxonomy``, and the spread of that mixture."""
    placement = np.array([CLASS_VA[taxonomy][c] for c in TAXONOMIES[taxonomy]], dtype=np.float64)  # (C, 2)
    mean = probabilities @ placement
    return Reading(mean, np.sqrt(np.maximum(probabilities @ placement**2 - mean**2, 0.0)))


def mixed_reading(head: Reading, grid: Reading, share: tuple[float, float]) -> Reading:
    """The two readings as a mixture, ``share`` of ``grid`` and the rest of ``head`` per axis (valence, arousal):
    the mixture's mean and spread (each part's variance plus the spread between the two means)."""
    w = np.asarray(share, dtype=np.float64)
    mean = (1.0 - w) * head.mean + w * grid.mean
    var = (1.0 - w) * head.std**2 + w * grid.std**2 + w * (1.0 - w) * (head.mean - grid.mean) ** 2
    return Reading(mean, np.sqrt(var))


class Embedder:
    """A loaded bundle, ready to embed queries and catalogue items. Holds the encoded VA grid and vocabulary."""

    def __init__(self, model: CrossModalModel, *, version: str = "unsaved", text_encoder: str = BASE_VERSION) -> None:
        self.model, self.config, self.version = model.eval(), model.config, version
        self.text_encoder = text_encoder  # the sentence encoder the text heads were trained on
        self.frontend = make_frontend(self.config.frontend)
        self.grid_va = va_grid()
        self.grid = self.embed_points(self.grid_va)
        self.terms: list[EmotionTerm] = vocabulary()
        self.term_va = np.array([[t.valence, t.arousal] for t in self.terms])
        self.terms_embedded = self.embed_points(self.term_va)

    @classmethod
    def from_bundle(cls, bundle: Bundle) -> Embedder:
        return cls(bundle.model, version=bundle.version,
                   text_encoder=bundle.metrics.get("text", {}).get("encoder", BASE_VERSION))

    @torch.inference_mode()
    def embed_features(self, sequences: list[np.ndarray]) -> Gaussians:
        """Music embeddings of (T, F) feature sequences."""
        return self.model.music(*pad(sequences)).numpy()

    @torch.inference_mode()
    def represent_windows(self, features: np.ndarray) -> np.ndarray:
        """(T, H): the shared music representation of each frame's window (``window_frames``), the sequence every
        head of the music encoder reads one row of."""
        frames, _ = self.window_frames(features)
        return self.model.music.represent(*pad(frames)).numpy()

    @torch.inference_mode()
    def represent_tracks(self, sequences: list[np.ndarray]) -> np.ndarray:
        """(N, H): the shared music representation of whole (T, F) feature sequences, what every head reads."""
        return self.model.music.represent(*pad(sequences)).numpy()

    @torch.inference_mode()
    def class_probabilities(self, sequences: list[np.ndarray]) -> dict[str, np.ndarray]:
        """(N, C_t) probabilities of each categorical head (``config.taxonomies``) for (T, F) feature sequences."""
        if not self.config.taxonomies:
            return {}
        logits = self.model.music.class_logits(*pad(sequences))
        return {t: torch.softmax(z, dim=1).numpy().astype(np.float64) for t, z in logits.items()}

    @torch.inference_mode()
    def embed_va(self, sequences: list[np.ndarray]) -> Gaussians:
        """Emotion embeddings of (T, 2) valence/arousal sequences."""
        return self.model.emotion(*pad(sequences)).numpy()

    def embed_points(self, va: np.ndarray) -> Gaussians:
        """Emotion embeddings of (N, 2) VA points, each a constant sequence."""
        return self.embed_va([np.repeat(point[None, :], POINT_FRAMES, axis=0) for point in np.asarray(va)])

    def embed_curve(self, curve: np.ndarray) -> Gaussians:
        """Emotion embedding of one validated (T, 3) curve [t, valence, arousal] (``models.curves.validate_curve``:
        callers check curves where they come in)."""
        return self.embed_curves([curve])

    def embed_curves(self, curves: Sequence[np.ndarray]) -> Gaussians:
        """``embed_curve`` of several curves in one pass of the encoder (packed: each as it would be alone)."""
        for curve in curves:
            assert curve.ndim == 2 and curve.shape[1] == 3 and (np.diff(curve[:, 0]) >= 0).all(), "validate curves"
        return self.embed_va([curve_sequence(c, frame_seconds=self.config.frontend.frame_seconds) for c in curves])

    def query_lam(self, asked: float | None) -> float:
        """The score's lam for a query: the one it asked for, else the model's (``config.score_lam``)."""
        return self.config.score_lam if asked is None else asked

    @property
    def has_text(self) -> bool:
        return self.model.text is not None

    @torch.inference_mode()
    def text_va(self, texts: list[str]) -> np.ndarray:
        """Calibrated (valence, arousal) of each text through the VA bridge: (N, 2)."""
        assert self.model.text is not None, "the bundle has no text heads"
        vectors = torch.from_numpy(sentence_encoder().encode(texts))
        return self.model.text.valence_arousal(vectors).numpy().astype(np.float64)

    @torch.inference_mode()
    def embed_text(self, texts: list[str]) -> Gaussians:
        """Embeddings of texts through the metric-learning bridge."""
        assert self.model.text is not None, "the bundle has no text heads"
        return self.model.text.embed(torch.from_numpy(sentence_encoder().encode(texts))).numpy()

    def story_curve(self, va: np.ndarray) -> np.ndarray:
        """A (S, 2) sentence VA sequence as a (S, 3) curve, one sentence every ``seconds_per_sentence``."""
        step = (self.config.text or TextConfig()).seconds_per_sentence
        return np.hstack([np.arange(va.shape[0])[:, None] * step, va])

    @property
    def span_grid(self) -> SpanGrid:
        return SpanGrid.of(self.config.frontend.frame_seconds)

    def embed_spans(self, features: np.ndarray) -> TrackSpans:
        """The music embedding of each span of a (T, F) feature sequence (``SpanGrid``)."""
        grid, n = self.span_grid, features.shape[0]
        first = grid.starts(n)
        last = np.minimum(first + grid.width, n)
        gaussians = self.embed_features([features[a:b] for a, b in zip(first, last, strict=True)])
        return TrackSpans(first * grid.frame_seconds, last * grid.frame_seconds, gaussians)

    def span_curve_query(self, curve: np.ndarray) -> Gaussians:
        """One emotion embedding per piece of a validated (T, 3) curve cut on the span grid over its whole length:
        (pieces, d) each."""
        grid, start = self.span_grid, float(curve[0, 0])
        offsets = (np.arange(grid.width) + 0.5) * grid.frame_seconds
        pieces = grid.pieces(float(curve[-1, 0]) - start)
        times = [np.clip(start + j * grid.hop_s + offsets, start, curve[-1, 0]) for j in range(pieces)]
        return self.embed_va([resample_curve(curve, t) for t in times])

    def span_steady_query(self, query: Gaussians, seconds: float) -> Gaussians:
        """A steady (1, d) query (a point, a named emotion, a text) held for ``seconds``: one copy per piece."""
        return Gaussians(*(np.repeat(part, self.span_grid.pieces(seconds), axis=0) for part in query))

    def window_frames(self, features: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        """One window per frame, centred on it and about WINDOW_SECONDS wide, cut at the clip's ends; and the
        frame centres in seconds. The curve so has a point for every frame: it covers the whole clip."""
        half = max(1, round(WINDOW_SECONDS / self.config.frontend.frame_seconds)) // 2
        n = features.shape[0]
        windows = [features[max(0, c - half) : min(n, c + half + 1)] for c in range(n)]
        return windows, frame_times(n, self.config.frontend)

    def read_track(self, features: np.ndarray) -> TrackReading:
        """The track's reading from its (T, F) features (see ``TrackReading``)."""
        frames, times = self.window_frames(features)
        read = self.read_representations(self.represent_tracks(frames))  # the windows through the trunk once
        reading = read.va
        std = np.sqrt((reading.std**2).mean(axis=0) + reading.mean.var(axis=0))
        classes = {t: p.mean(axis=0) for t, p in read.classes.items()}
        return TrackReading(read.gaussians, times, reading.mean, reading.mean.mean(axis=0), std, classes)

    def read_features(self, sequences: list[np.ndarray]) -> Reading:
        """Valence/arousal of whole (T, F) feature sequences: the class head's the config names, else the
        dimensional head's where the model has one, otherwise by retrieval over the VA grid
        (``read_representations``)."""
        return self.read_representations(self.represent_tracks(sequences)).va

    def read_classes(self, sequences: list[np.ndarray], taxonomy: str) -> Reading:
        """The expected VA placement of ``taxonomy``'s class probabilities, and the spread of that mixture."""
        return placement_reading(self.class_probabilities(sequences)[taxonomy], taxonomy)

    @torch.inference_mode()
    def read_representations(self, h: np.ndarray) -> RepresentationReading:
        """What every head reads from (N, H) shared music representations (a whole clip's, or one a song model
        put in its place: ``models.song_model``): the music embedding, the class probabilities and the VA
        reading: the class head's the config names, else the dimensional head's where the model has one,
        otherwise by retrieval over the VA grid."""
        rows = torch.from_numpy(np.asarray(h, dtype=np.float32))
        music = self.model.music
        gaussians = music.embed(rows).numpy()
        classes = {t: torch.softmax(head(rows), dim=1).numpy().astype(np.float64)
                   for t, head in music.categorical.items()}
        if self.config.class_reading is not None:
            reading = placement_reading(classes[self.config.class_reading], self.config.class_reading)
            if any(self.config.grid_share):
                reading = mixed_reading(reading, self.read_va(gaussians), self.config.grid_share)
        elif music.dimensional is not None:
            mean, logvar = music.dimensional(rows)
            reading = Reading(mean.numpy().astype(np.float64), np.exp(logvar.numpy().astype(np.float64) / 2))
        else:
            reading = self.read_va(gaussians)
        return RepresentationReading(gaussians, classes, reading)

    def read_va(self, music: Gaussians, *, lam: float | None = None, temperature: float | None = None) -> Reading:
        """Valence/arousal of music embeddings by composite-score retrieval over the VA grid."""
        lam = self.query_lam(lam)
        scores = composite_scores(music, self.grid, lam=lam).score  # (N, G)
        temperature = float(self.model.readout_temperature) if temperature is None else temperature
        weights = np.exp((scores - scores.max(axis=1, keepdims=True)) / temperature)
        weights /= weights.sum(axis=1, keepdims=True)
        mean = weights @ self.grid_va
        std = np.sqrt(np.maximum(weights @ self.grid_va**2 - mean**2, 0.0))
        return Reading(mean, std)
