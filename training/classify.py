"""Categorical evaluation and the linear probe baseline.

Metrics follow the issue's definitions on Russell quadrants: valence AUC separates Q1 + Q4 from Q2 + Q3 (score:
the predicted probability of Q1 + Q4), arousal AUC separates Q1 + Q2 from Q3 + Q4; quadrant accuracy and
macro-F1 over the four classes. Other taxonomies (MIREX clusters) split their classes by the sign of each class's
VA placement (``models.taxonomy.CLASS_VA``: clusters 1, 2, 4 positive valence against 3, 5; all but 3 high
arousal), so the AUCs mean the same thing on every set.

The probe is the baseline every model here must beat: multinomial logistic regression on the mean and standard
deviation over time of a frozen front end's frame features (for ``musicnn-msd-tags``: the 200-d penultimate
layer and the 50 MSD tag activations), fitted on the train split with its L2 penalty chosen by accuracy over
artist folds of that split (``FoldsLogistic``): a few hundred clips and 500 dimensions overfit a fixed light
penalty (``Logistic``), which made the baseline weaker than it is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold

from models.taxonomy import CLASS_VA, HIGH_AROUSAL, POSITIVE_VALENCE, TAXONOMIES


def auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U, ties counted half); NaN without both classes."""
    positive = positive.astype(bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="stable")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # average ranks for ties
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    for start, count in zip(first, counts, strict=True):
        ranks[order[start : start + count]] = start + (count + 1) / 2
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def macro_f1(reference: np.ndarray, estimated: np.ndarray, n_classes: int) -> float:
    scores = []
    for c in range(n_classes):
        tp = np.sum((estimated == c) & (reference == c))
        fp, fn = np.sum((estimated == c) & (reference != c)), np.sum((estimated != c) & (reference == c))
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


@dataclass(frozen=True)
class CategoricalMetrics:
    taxonomy: str
    n: int
    accuracy: float
    macro_f1: float
    valence_auc: float | None = None  # NaN where the split holds one side only
    arousal_auc: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def categorical_metrics(taxonomy: str, reference: np.ndarray, probabilities: np.ndarray) -> CategoricalMetrics:
    """``reference``: (N,) class indices into ``TAXONOMIES[taxonomy]``; ``probabilities``: (N, C)."""
    classes = TAXONOMIES[taxonomy]
    estimated = probabilities.argmax(axis=1)
    accuracy = float(np.mean(estimated == reference))
    f1 = macro_f1(reference, estimated, len(classes))
    valence, arousal = (positive_classes(taxonomy, axis) for axis in (0, 1))
    return CategoricalMetrics(taxonomy, len(reference), accuracy, f1,
                              auc(probabilities[:, valence].sum(axis=1), np.isin(reference, valence)),
                              auc(probabilities[:, arousal].sum(axis=1), np.isin(reference, arousal)))


def positive_classes(taxonomy: str, axis: int) -> list[int]:
    """Indices of the classes on the positive side of valence (``axis`` 0) or arousal (1): the quadrants by
    definition, other taxonomies by the sign of their classes' VA placement."""
    classes = TAXONOMIES[taxonomy]
    if taxonomy == "quadrant":
        return [classes.index(q) for q in (POSITIVE_VALENCE, HIGH_AROUSAL)[axis]]
    return [i for i, c in enumerate(classes) if CLASS_VA[taxonomy][c][axis] > 0]


def summary_features(features: np.ndarray) -> np.ndarray:
    """(T, F) frames -> (2F,) mean and standard deviation over time."""
    return np.concatenate([features.mean(axis=0), features.std(axis=0)])


@dataclass(frozen=True)
class Logistic:
    """Multinomial logistic regression on standardised features (full-batch Adam, L2 penalty)."""

    mean: np.ndarray
    std: np.ndarray
    layer: torch.nn.Linear

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, *, classes: int, epochs: int = 300, weight_decay: float = 1e-3,
            seed: int = 0) -> Logistic:
        torch.manual_seed(seed)
        mean, std = x.mean(axis=0), x.std(axis=0)
        std = np.where(std > 1e-6, std, 1.0)  # a constant training feature stays unscaled, not blown up
        layer = torch.nn.Linear(x.shape[1], classes)
        optimizer = torch.optim.Adam(layer.parameters(), lr=0.01, weight_decay=weight_decay)
        features, target = torch.from_numpy(((x - mean) / std).astype(np.float32)), torch.from_numpy(y)
        for _ in range(epochs):
            loss = torch.nn.functional.cross_entropy(layer(features), target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return cls(mean, std, layer)

    @torch.no_grad()
    def probabilities(self, x: np.ndarray) -> np.ndarray:
        z = torch.from_numpy(((x - self.mean) / self.std).astype(np.float32))
        return torch.softmax(self.layer(z), dim=1).numpy()


# inverse L2 strengths the artist folds try
C_GRID = (0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
FOLDS = 5
MAX_ITER = 5000

Folds = list[tuple[np.ndarray, np.ndarray]]
Make = Callable[[float], Any]  # C -> an unfitted classifier with fit / predict_proba


def artist_folds(artists: Sequence[str], *, folds: int = FOLDS) -> Folds:
    """Train/held-apart row indices of ``folds`` folds that keep each artist (lower-cased, stripped) in one fold."""
    groups = np.array([a.strip().lower() for a in artists])
    return list(GroupKFold(n_splits=folds).split(groups, groups=groups))


def _accuracy(model: Any, x: Any, y: np.ndarray) -> float:
    return float(np.mean(model.predict(x) == y))


def padded_probabilities(model: Any, x: Any, classes: int) -> np.ndarray:
    """(N, classes) from a fitted classifier: its ``predict_proba`` in the columns of the classes it saw, zero for
    those its training rows never had (a fold can miss a rare class)."""
    out = np.zeros((len(x), classes))
    out[:, model.classes_] = model.predict_proba(x)
    return out


def choose_c(make: Make, x: Any, y: np.ndarray, folds: Folds) -> tuple[float, float]:
    """The C of ``C_GRID`` with the best mean held-apart accuracy over ``folds``, and that accuracy."""
    scores = {c: float(np.mean([_accuracy(make(c).fit(x[a], y[a]), x[b], y[b]) for a, b in folds])) for c in C_GRID}
    best = max(scores, key=lambda c: scores[c])
    return best, scores[best]


def vector_probe(c: float) -> LogisticRegression:
    """Multinomial logistic regression with inverse L2 strength ``c``."""
    return LogisticRegression(C=c, max_iter=MAX_ITER)


@dataclass(frozen=True)
class FoldsLogistic:
    """Multinomial logistic regression on standardised features, its penalty chosen by artist folds of the
    training rows (``choose_c``)."""

    mean: np.ndarray
    std: np.ndarray
    model: LogisticRegression
    classes: int
    c: float
    folds_accuracy: float

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, artists: Sequence[str], *, classes: int) -> FoldsLogistic:
        """``artists``: one per row (a row without one can pass its own id); ``classes``: the taxonomy's count."""
        mean, std = x.mean(axis=0), x.std(axis=0)
        std = np.where(std > 1e-6, std, 1.0)
        z = (x - mean) / std
        c, accuracy = choose_c(vector_probe, z, y, artist_folds(artists))
        return cls(mean, std, vector_probe(c).fit(z, y), classes, c, accuracy)

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """(N, classes); zero for a class the training rows never had."""
        return padded_probabilities(self.model, (x - self.mean) / self.std, self.classes)
