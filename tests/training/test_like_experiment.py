"""The like-experiment's agreement scores: the clip itself never counts, precision and average precision as
defined, and the VA distance of the top results."""

import numpy as np
import pytest

from training.like_experiment import agreement


def test_agreement_leaves_the_clip_out_and_scores_precision_and_average_precision():
    labels = np.array(["a", "a", "b", "b"])
    va = np.array([[0.0, 0.0], [0.0, 0.1], [1.0, 0.0], [1.0, 0.3]])
    scores = np.array([[9.0, 1.0, 2.0, 0.0],   # clip 0: b, a, b -> its one relevant clip at rank 2
                       [5.0, 9.0, 0.0, 1.0],   # clip 1: a first
                       [0.0, 1.0, 9.0, 2.0],   # clip 2: b first
                       [2.0, 1.0, 0.0, 9.0]])  # clip 3: a, a, b -> rank 3
    got = agreement(scores, labels, va, top=1)
    assert got["precision_at_10"] == pytest.approx(0.5)  # top 1 right for clips 1 and 2
    assert got["map"] == pytest.approx((1 / 2 + 1 + 1 + 1 / 3) / 4)
    distances = [np.hypot(1.0, 0.0), 0.1, 0.3, np.hypot(1.0, 0.3)]
    assert got["va_distance"] == pytest.approx(np.mean(distances))


def test_a_perfect_ranking_scores_one_and_a_reversed_one_scores_less():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.array(["q1", "q2", "q3"]), 12)
    same = (labels[:, None] == labels[None]).astype(float) + rng.random((36, 36)) * 0.1
    perfect = agreement(same, labels, rng.random((36, 2)))
    assert perfect["precision_at_10"] == 1.0 and perfect["map"] == pytest.approx(1.0)
    assert agreement(-same, labels, rng.random((36, 2)))["map"] < 0.4
