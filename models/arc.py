"""A story's emotional arc: sentence-level valence/arousal -> smoothed curve -> segments split at change points.

Segmentation is binary segmentation on the smoothed (S, 2) sequence: the split that most reduces the summed
squared deviation from segment means is kept while the reduction exceeds ``penalty`` and both parts keep at least
``min_sentences``; then each part is split again. Last, no segment keeps two sentences of opposite valence: a
segment is cut wherever the valence of its sentences (unsmoothed) changes sign beyond ``VALENCE_MARGIN``, a
neutral sentence staying with the one before it, even if that leaves a part shorter than ``min_sentences`` (a cue
that joins "the best day of her life" with "the floorboards creaked" would read as neither). A story too short for
the change-point search (fewer than ``2 * min_sentences`` sentences) is cut instead between neighbouring sentences
at least ``SWING`` apart on the VA plane: "she lay in the meadow, half asleep" then "the crowd roared and she leapt
up" is two cues, two sentences of one mood that the text reader places a little apart are one.
"""

from __future__ import annotations

import itertools

import numpy as np

VALENCE_MARGIN = 0.1  # valence within this of 0 is neutral: it neither starts a new segment nor has a side
SWING = 1.0  # VA distance between neighbouring sentences of a short story that cuts it: half the plane's width


def smooth(va: np.ndarray, *, window: int = 3) -> np.ndarray:
    """Centred moving average over sentences (edges use the available neighbours). (S, 2) -> (S, 2)."""
    if va.shape[0] < 3 or window <= 1:
        return va.copy()
    half = window // 2
    return np.stack([va[max(0, i - half) : i + half + 1].mean(axis=0) for i in range(va.shape[0])])


def _cost(x: np.ndarray) -> float:
    return float(np.sum((x - x.mean(axis=0)) ** 2)) if x.shape[0] else 0.0


def _best_split(x: np.ndarray, min_sentences: int) -> tuple[int, float]:
    total, best, gain = _cost(x), -1, 0.0
    for k in range(min_sentences, x.shape[0] - min_sentences + 1):
        reduction = total - _cost(x[:k]) - _cost(x[k:])
        if reduction > gain:
            best, gain = k, reduction
    return best, gain


def segment(va: np.ndarray, *, min_sentences: int = 2, penalty: float = 0.08) -> list[tuple[int, int]]:
    """Segments [start, end) of a (S, 2) sentence VA sequence, in order, covering every sentence."""
    va = np.asarray(va, dtype=np.float64)
    if va.shape[0] < 2 * min_sentences:
        done = swings(va)
    else:
        done = change_points(smooth(va), min_sentences=min_sentences, penalty=penalty)
    return [part for start, end in sorted(done) for part in split_opposites(va[:, 0], start, end)]


def change_points(x: np.ndarray, *, min_sentences: int, penalty: float) -> list[tuple[int, int]]:
    """Binary segmentation of a smoothed (S, 2) sequence: [start, end) parts, unordered."""
    pending, done = [(0, x.shape[0])], []
    while pending:
        start, end = pending.pop()
        k, gain = _best_split(x[start:end], min_sentences)
        if k > 0 and gain > penalty:
            pending += [(start, start + k), (start + k, end)]
        else:
            done.append((start, end))
    return done


def swings(va: np.ndarray, *, swing: float = SWING) -> list[tuple[int, int]]:
    """[start, end) parts of a (S, 2) sequence cut between neighbours at least ``swing`` apart."""
    jumps = np.linalg.norm(np.diff(va, axis=0), axis=1)
    cuts = [0, *(int(i) + 1 for i in np.flatnonzero(jumps >= swing)), va.shape[0]]
    return list(itertools.pairwise(cuts))


def split_opposites(valence: np.ndarray, start: int, end: int, *, margin: float = VALENCE_MARGIN
                    ) -> list[tuple[int, int]]:
    """[start, end) cut before each sentence whose valence is beyond ``margin`` on the other side from the last
    sentence beyond it."""
    parts, side, first = [], 0, start
    for i in range(start, end):
        here = 1 if valence[i] > margin else -1 if valence[i] < -margin else 0
        if here and side and here != side:
            parts.append((first, i))
            first = i
        side = here or side
    return [*parts, (first, end)]
