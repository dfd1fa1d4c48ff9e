"""The ranking score and its one-inner-product form (see DESIGN.md, "Scoring is one inner product").

    score(q, i) = lam * pearson(E_q, E_i) - (1 - lam) * KL(N_q || N_i) / d

``composite_scores`` evaluates it directly (float64). ``augment_items`` / ``augment_query`` build vectors with

    score(q, i) = <Q, X_i> + (1 - lam) / d * const(q)

so an inner-product index over X returns the exact composite ranking, with lam on the query side only.
Means are centred on a common ``centre`` (the catalogue mean): KL is unchanged by a shift applied to both sides,
and the augmented numbers stay small.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np


class Gaussians(NamedTuple):
    """Numpy view of embeddings: E, mu, logvar, each (N, d)."""

    E: np.ndarray
    mu: np.ndarray
    logvar: np.ndarray


def stack(parts: Sequence[Gaussians]) -> Gaussians:
    """Embeddings stacked into one set: (1, d) queries into an (n, d) batch."""
    return Gaussians(*(np.vstack(columns) for columns in zip(*parts, strict=True)))


def unstack(gaussians: Gaussians) -> list[Gaussians]:
    """Each row of an (n, d) set as a (1, d) one."""
    return [Gaussians(*(part[i : i + 1] for part in gaussians)) for i in range(gaussians.E.shape[0])]


def centred(x: np.ndarray) -> np.ndarray:
    """Rows minus their mean, scaled to unit norm: ``pearson(a, b) = <c(a), c(b)>``."""
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(Na, Nb) Pearson correlations between the rows of a and b."""
    return centred(a) @ centred(b).T


def kl_pairs(mu_q: np.ndarray, logvar_q: np.ndarray, mu_i: np.ndarray, logvar_i: np.ndarray) -> np.ndarray:
    """KL(N_q || N_i) between diagonal Gaussians by the textbook formula, float64, summed over the last axis;
    the arguments broadcast (rows against rows: (N, d) each gives (N,))."""
    mu_q, logvar_q, mu_i, logvar_i = (np.asarray(x, dtype=np.float64) for x in (mu_q, logvar_q, mu_i, logvar_i))
    var_q, var_i = np.exp(logvar_q), np.exp(logvar_i)
    return 0.5 * np.sum(logvar_i - logvar_q + (var_q + (mu_q - mu_i) ** 2) / var_i - 1.0, axis=-1)


def kl_diag(mu_q: np.ndarray, logvar_q: np.ndarray, mu_i: np.ndarray, logvar_i: np.ndarray) -> np.ndarray:
    """(Nq, Ni) KL(N_q || N_i) between every query and every item."""
    return kl_pairs(np.asarray(mu_q)[:, None, :], np.asarray(logvar_q)[:, None, :], np.asarray(mu_i)[None, :, :],
                    np.asarray(logvar_i)[None, :, :])


class Scores(NamedTuple):
    score: np.ndarray
    corr: np.ndarray
    neg_kl: np.ndarray


def composite_scores(query: Gaussians, items: Gaussians, *, lam: float) -> Scores:
    """(Nq, Ni) composite scores and their parts, evaluated directly in float64."""
    d = query.E.shape[1]
    corr = pearson(query.E, items.E)
    neg_kl = -kl_diag(query.mu, query.logvar, items.mu, items.logvar)
    return Scores(lam * corr + (1 - lam) * neg_kl / d, corr, neg_kl)


def augment_items(items: Gaussians, *, centre: np.ndarray) -> np.ndarray:
    """(N, 3d + 1) item vectors ``[c(E), 1/v, mu/v, sum(mu^2/v + log v)]``; the scalar column in float64."""
    mu = np.asarray(items.mu, dtype=np.float64) - centre
    logvar = np.asarray(items.logvar, dtype=np.float64)
    inv_var = np.exp(-logvar)
    scalar = np.sum(mu**2 * inv_var + logvar, axis=1, keepdims=True)
    return np.hstack([centred(items.E), inv_var, mu * inv_var, scalar])


def augment_query(query: Gaussians, *, lam: float, centre: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(Nq, 3d + 1) query vectors and (Nq,) offsets so that ``score = Q @ X.T + offset``.

    ``Q = [lam * c(E), w * (-(v + mu^2) / 2), w * mu, -w / 2]`` with ``w = (1 - lam) / d``, and
    ``offset = w * 0.5 * sum(1 + log v)``.
    """
    d = query.E.shape[1]
    w = (1.0 - lam) / d
    mu = np.asarray(query.mu, dtype=np.float64) - centre
    logvar = np.asarray(query.logvar, dtype=np.float64)
    var = np.exp(logvar)
    ones = np.ones((mu.shape[0], 1))
    q = np.hstack([lam * centred(query.E), w * (-(var + mu**2) / 2), w * mu, -w / 2 * ones])
    return q, w * 0.5 * np.sum(1.0 + logvar, axis=1)


def split_scores(query: Gaussians, items: Gaussians, *, lam: float, centre: np.ndarray) -> Scores:
    """Score parts (float64) for given query/item pairs, row by row: used to rescore an index's head."""
    d = query.E.shape[1]
    corr = np.sum(centred(query.E) * centred(items.E), axis=1)
    neg_kl = -kl_pairs(query.mu - centre, query.logvar, items.mu - centre, items.logvar)
    return Scores(lam * corr + (1 - lam) * neg_kl / d, corr, neg_kl)
