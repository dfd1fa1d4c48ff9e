"""Retrieval evaluation as in CMER-CL section 4.2: every test item's own partner is ranked among all test items
by the composite score, both ways (music -> emotion, M2E; emotion -> music, E2M). We report the mean reciprocal
rank (MRR), the average rank (AR; 1 is best) and, as in section 5, the average cosine similarity between the
query's valence/arousal and that of the top 5 % of retrieved items. Tied scores share the mean of their ranks.
Each MRR comes with a bootstrap interval over the queries: a held-apart set of 30 pieces moves it by hundredths.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import torch

from models.encoders import CrossModalModel, pad
from models.inference import Embedder
from models.scoring import Gaussians, composite_scores
from training.classify import CategoricalMetrics, categorical_metrics
from training.features import Item

INTERVAL_LEVEL, RESAMPLES = 0.95, 2000  # the MRR's bootstrap interval


@torch.no_grad()
def embed(model: CrossModalModel, items: Sequence[Item], *, batch_size: int = 64) -> tuple[Gaussians, Gaussians]:
    """Music and emotion embeddings of whole items (no cropping), in eval mode."""
    was_training = model.training
    model.eval()
    music, emotion = [], []
    for start in range(0, len(items), batch_size):
        batch = items[start : start + batch_size]
        music.append(model.music(*pad([i.features for i in batch])).numpy())
        emotion.append(model.emotion(*pad([i.va for i in batch])).numpy())
    model.train(was_training)
    return tuple(Gaussians(*(np.concatenate(parts) for parts in zip(*side, strict=True)))  # type: ignore[return-value]
                 for side in (music, emotion))


def partner_ranks(scores: np.ndarray) -> np.ndarray:
    """(N,) rank of each row's diagonal entry among the row (1 = best; ties share their mean rank)."""
    own = np.diag(scores)[:, None]
    greater = (scores > own).sum(axis=1)
    ties = (scores == own).sum(axis=1) - 1
    return 1.0 + greater + ties / 2.0


def top_cosine(scores: np.ndarray, va: np.ndarray, *, fraction: float = 0.05) -> float:
    """Mean cosine similarity between each query's VA and the VA of its top ``fraction`` retrieved items."""
    k = max(1, math.ceil(fraction * scores.shape[1]))
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    unit = va / np.maximum(np.linalg.norm(va, axis=1, keepdims=True), 1e-9)
    return float(np.mean(np.sum(unit[:, None, :] * unit[top], axis=2)))


def mrr_interval(ranks: np.ndarray, *, level: float = INTERVAL_LEVEL, resamples: int = RESAMPLES,
                 seed: int = 0) -> tuple[float, float]:
    """A percentile bootstrap interval of the MRR over the queries (the candidates held fixed): how far the
    figure could move on another draw of as many queries. On 30-odd VGMIDI pieces it spans about 0.15."""
    reciprocal = 1.0 / np.asarray(ranks, dtype=np.float64)
    draws = np.random.default_rng(seed).integers(0, len(reciprocal), size=(resamples, len(reciprocal)))
    low, high = np.quantile(reciprocal[draws].mean(axis=1), [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


@dataclass(frozen=True)
class DirectionMetrics:
    """Retrieval in one direction: mean reciprocal rank (with its bootstrap interval over the queries), average
    rank (1 is best), top-5 % VA cosine."""

    mrr: float
    ar: float
    top5_cosine: float
    mrr_interval: tuple[float, float] | None = None


@dataclass(frozen=True)
class VAAgreement:
    """Emotion -> music lands where it was asked: mean distance on the VA plane between each query's VA and the
    model's reading of its top ``k`` tracks, and the same for the ``k`` tracks whose readings are nearest to the
    query (the best any ranking of these readings can do)."""

    k: int
    top_k_distance: float
    nearest_distance: float


@dataclass(frozen=True)
class RetrievalMetrics:
    n_test: int
    m2e: DirectionMetrics
    e2m: DirectionMetrics
    va_agreement: VAAgreement | None = None

    @property
    def mean_mrr(self) -> float:
        return (self.m2e.mrr + self.e2m.mrr) / 2

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def direction_metrics(scores: np.ndarray, va: np.ndarray) -> DirectionMetrics:
    ranks = partner_ranks(scores)
    return DirectionMetrics(float(np.mean(1.0 / ranks)), float(np.mean(ranks)), top_cosine(scores, va),
                            mrr_interval(ranks))


def retrieval_metrics(m2e: np.ndarray, e2m: np.ndarray, va: np.ndarray) -> RetrievalMetrics:
    """``m2e[i, j]``: score of emotion j for music query i; ``e2m[i, j]``: of music j for emotion query i."""
    return RetrievalMetrics(int(va.shape[0]), direction_metrics(m2e, va), direction_metrics(e2m, va))


def evaluate_embeddings(music: Gaussians, emotion: Gaussians, va: np.ndarray, *, lam: float) -> RetrievalMetrics:
    m2e = composite_scores(music, emotion, lam=lam).score
    e2m = composite_scores(emotion, music, lam=lam).score
    return retrieval_metrics(m2e, e2m, va)


def va_agreement(scores: np.ndarray, query_va: np.ndarray, reading: np.ndarray, *, k: int = 10) -> VAAgreement:
    """``scores`` (Nq, Ni) of items for each query; ``query_va`` (Nq, 2); ``reading`` (Ni, 2) the items' VA."""
    k = min(k, scores.shape[1])
    distance = np.linalg.norm(query_va[:, None, :] - reading[None, :, :], axis=2)  # (Nq, Ni)
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    nearest = np.sort(distance, axis=1)[:, :k]
    return VAAgreement(k, float(np.take_along_axis(distance, top, axis=1).mean()), float(nearest.mean()))


def evaluate_model(model: CrossModalModel, items: Sequence[Item], *, lam: float) -> RetrievalMetrics:
    """Composite-score retrieval metrics of ``model`` on ``items``, with the VA agreement of E2M's top 10 (the
    items' readings as the service reads them: the mean of each item's curve)."""
    music, emotion = embed(model, items)
    va = np.stack([i.va_mean for i in items]).astype(np.float64)
    metrics = evaluate_embeddings(music, emotion, va, lam=lam)
    embedder = Embedder(model)
    reading = np.stack([embedder.read_track(i.features).mean for i in items])
    agreement = va_agreement(composite_scores(emotion, music, lam=lam).score, va, reading)
    return replace(metrics, va_agreement=agreement)


def best_lam(model: CrossModalModel, items: Sequence[Item], lams: Sequence[float]) -> tuple[float, RetrievalMetrics]:
    """The query lam among ``lams`` with the best mean MRR on ``items``, and its metrics."""
    music, emotion = embed(model, items)
    va = np.stack([i.va_mean for i in items]).astype(np.float64)
    results = [(lam, evaluate_embeddings(music, emotion, va, lam=lam)) for lam in lams]
    return max(results, key=lambda result: result[1].mean_mrr)


@torch.no_grad()
def class_probabilities(model: CrossModalModel, items: Sequence[Item], taxonomy: str, *,
                        batch_size: int = 64) -> np.ndarray:
    """(N, C) softmax of the ``taxonomy`` head on whole items, in eval mode."""
    was_training = model.training
    model.eval()
    head = model.music.categorical[taxonomy]
    parts = [torch.softmax(head(model.music.represent(*pad([i.features for i in items[k : k + batch_size]]))), 1)
             for k in range(0, len(items), batch_size)]
    model.train(was_training)
    return torch.cat(parts).numpy().astype(np.float64)


def categorical_evaluation(model: CrossModalModel, items: Sequence[Item]) -> dict[str, CategoricalMetrics]:
    """Metrics of each categorical head on the items labelled in its taxonomy."""
    out = {}
    for taxonomy in model.config.taxonomies:
        labelled = [i for i in items if taxonomy in i.labels]
        if labelled:
            reference = np.array([i.labels[taxonomy] for i in labelled])
            out[taxonomy] = categorical_metrics(taxonomy, reference, class_probabilities(model, labelled, taxonomy))
    return out
