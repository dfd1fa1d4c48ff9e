"""Quadrant probes for lyrics: a logistic probe on the songs' sentence vectors, one on their word n-grams (TF-IDF),
and the stack of both.

Each probe's L2 strength is chosen by accuracy over artist folds of the train split (``training.classify.choose_c``;
no val row is seen); the stack is a logistic regression on the two probes' out-of-fold log-probabilities over the
same folds, so it learns how far to trust each from songs neither saw. A few hundred songs per class and 384
dimensions: the strength matters (``training.classify.Logistic``'s fixed light penalty read MoodyLyrics4Q val at
0.519, a chosen one 0.62).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from training.classify import (
    MAX_ITER,
    Folds,
    FoldsLogistic,
    Make,
    artist_folds,
    choose_c,
    padded_probabilities,
    vector_probe,
)


def ngram_probe(c: float) -> Any:
    """Logistic regression on TF-IDF of word unigrams and bigrams (seen in two songs at least, sublinear counts)."""
    return make_pipeline(TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
                         LogisticRegression(C=c, max_iter=MAX_ITER))


def out_of_fold(make: Make, c: float, x: Any, y: np.ndarray, folds: Folds, *, classes: int) -> np.ndarray:
    """(N, classes): each row's probabilities from the model fitted on the folds that did not hold it."""
    out = np.zeros((len(y), classes))
    for a, b in folds:
        out[b] = padded_probabilities(make(c).fit(x[a], y[a]), x[b], classes)
    return out


def _log(p: np.ndarray) -> np.ndarray:
    return np.log(np.clip(p, 1e-9, 1.0))


@dataclass
class StackedProbe:
    """Base probes fitted on all the train rows and the logistic regression that weighs their log-probabilities."""

    bases: list[Any]
    top: LogisticRegression
    chosen: list[dict[str, float]]  # per base: its C and its folds' accuracy
    folds_accuracy: float  # the stack's own accuracy over the folds (its top fitted on the other folds' rows)
    classes: int

    def base_probabilities(self, inputs: Sequence[Any]) -> list[np.ndarray]:
        return [padded_probabilities(base, x, self.classes) for base, x in zip(self.bases, inputs, strict=True)]

    def probabilities(self, inputs: Sequence[Any]) -> np.ndarray:
        """(N, classes) for N songs; ``inputs`` holds each base's input, in the order of ``fit_stack``'s."""
        z = np.hstack([_log(p) for p in self.base_probabilities(inputs)])
        return padded_probabilities(self.top, z, self.classes)


def fit_stack(makes: Sequence[Make], inputs: Sequence[Any], y: np.ndarray, artists: Sequence[str], *,
              classes: int) -> StackedProbe:
    """Each base's C by the artist folds, the stack on their out-of-fold log-probabilities, all on train rows."""
    folds = artist_folds(artists)
    chosen = [choose_c(make, x, y, folds) for make, x in zip(makes, inputs, strict=True)]
    z = np.hstack([_log(out_of_fold(make, c, x, y, folds, classes=classes))
                   for make, x, (c, _) in zip(makes, inputs, chosen, strict=True)])
    folds_accuracy = float(np.mean([np.mean(vector_probe(1.0).fit(z[a], y[a]).predict(z[b]) == y[b])
                                    for a, b in folds]))
    bases = [make(c).fit(x, y) for make, x, (c, _) in zip(makes, inputs, chosen, strict=True)]
    return StackedProbe(bases, vector_probe(1.0).fit(z, y), [{"C": c, "folds_accuracy": acc} for c, acc in chosen],
                        folds_accuracy, classes)


def stacking_readings(x_train: np.ndarray, y: np.ndarray, artists: Sequence[str], others: Sequence[np.ndarray], *,
                      classes: int) -> tuple[np.ndarray, list[np.ndarray], float]:
    """Log-probabilities of a logistic probe on vectors (standardised, C by the artist folds: ``FoldsLogistic``)
    as an input of a model stacked on it: for the train rows out of fold (each from the folds that did not hold
    its artist), for each of ``others`` from the probe fitted on every train row. Either way a row reads as one
    the probe never saw, so the stacked model learns how far to trust it from readings like those it will get.
    Also the probe's accuracy over the folds."""
    probe = FoldsLogistic.fit(x_train, y, artists, classes=classes)
    z = (x_train - probe.mean) / probe.std
    held = out_of_fold(vector_probe, probe.c, z, y, artist_folds(artists), classes=classes)
    return _log(held), [_log(probe.probabilities(x)) for x in others], probe.folds_accuracy


def stack_readings(makes: Sequence[Make], inputs: Sequence[Any], y: np.ndarray, artists: Sequence[str],
                   others: Sequence[Sequence[Any]], *, classes: int) -> tuple[np.ndarray, list[np.ndarray], float]:
    """``stacking_readings`` for the stack of ``makes`` (``fit_stack``): each train row read by the stack fitted on
    the other artist folds (which chooses its own penalties on folds of those), each of ``others`` (its inputs, in
    the order of ``inputs``) by the stack fitted on every train row; and that stack's folds accuracy."""
    held = np.zeros((len(y), classes))
    for a, b in artist_folds(artists):
        stack = fit_stack(makes, [x[a] for x in inputs], y[a], [artists[i] for i in a], classes=classes)
        held[b] = stack.probabilities([x[b] for x in inputs])
    stack = fit_stack(makes, inputs, y, artists, classes=classes)
    return _log(held), [_log(stack.probabilities(o)) for o in others], stack.folds_accuracy
