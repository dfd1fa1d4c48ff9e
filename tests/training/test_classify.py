import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from training.classify import C_GRID, FoldsLogistic, artist_folds, auc, categorical_metrics, macro_f1


def test_auc_on_known_cases():
    positive = np.array([1, 1, 0, 0])
    assert auc(np.array([0.9, 0.8, 0.2, 0.1]), positive) == 1.0
    assert auc(np.array([0.1, 0.2, 0.8, 0.9]), positive) == 0.0
    assert auc(np.full(4, 0.5), positive) == 0.5  # ties count half
    assert auc(np.array([0.9, 0.4, 0.5, 0.2]), positive) == pytest.approx(0.75)  # 3 of 4 pairs in order
    assert np.isnan(auc(np.array([0.1, 0.2]), np.array([1, 1])))


def test_macro_f1_averages_over_classes():
    reference, estimated = np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 1, 0])
    # class 0: tp 1 fp 1 fn 1 -> 0.5; class 1: tp 2 fp 1 fn 0 -> 0.8; class 2: 0
    assert macro_f1(reference, estimated, 3) == pytest.approx((0.5 + 0.8 + 0.0) / 3)


def test_quadrant_metrics_read_valence_and_arousal_from_quadrant_probabilities():
    reference = np.array([0, 1, 2, 3])  # Q1..Q4
    probabilities = np.eye(4) * 0.7 + 0.075
    metrics = categorical_metrics("quadrant", reference, probabilities)
    assert metrics.accuracy == 1.0 and metrics.valence_auc == 1.0 and metrics.arousal_auc == 1.0
    clusters = categorical_metrics("mirex_cluster", np.array([0, 4]), np.eye(5)[[0, 3]])
    assert clusters.accuracy == 0.5 and clusters.valence_auc == 0.5  # 1 and 4 both read positive: a tie
    # MIREX sides from the clusters' VA placements: 1 (excited) positive and high, 3 (sad) negative and low
    clusters = categorical_metrics("mirex_cluster", np.array([0, 2]), np.eye(5)[[0, 2]])
    assert clusters.valence_auc == 1.0 and clusters.arousal_auc == 1.0


def test_the_probe_takes_the_penalty_its_artist_folds_read_best():
    """Every C of the grid scored on the same artist folds by hand: the probe keeps the best, and reads new clips
    through the training rows' standardisation."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 160)
    x = rng.normal(0.0, 1.0, (160, 50)) * rng.uniform(0.1, 10.0, 50)
    x[:, 0] += np.where(y % 2 == 0, 1.0, -1.0)
    x[:, 1] += np.where(y < 2, 5.0, -5.0)
    artists = [f"artist {k // 4}" for k in range(160)]
    probe = FoldsLogistic.fit(x, y, artists, classes=5)
    z = (x - x.mean(axis=0)) / x.std(axis=0)
    by_hand = {c: np.mean([np.mean(LogisticRegression(C=c, max_iter=5000).fit(z[a], y[a]).predict(z[b]) == y[b])
                           for a, b in artist_folds(artists)]) for c in C_GRID}
    assert probe.c == max(by_hand, key=lambda c: by_hand[c])
    assert probe.folds_accuracy == pytest.approx(max(by_hand.values()))
    x_new = rng.normal(0.0, 1.0, (20, 50))
    expected = LogisticRegression(C=probe.c, max_iter=5000).fit(z, y).predict_proba((x_new - x.mean(axis=0)) /
                                                                                   x.std(axis=0))
    assert np.allclose(probe.probabilities(x_new)[:, :4], expected, atol=1e-6)
    assert np.all(probe.probabilities(x_new)[:, 4] == 0.0)  # a class train never had
