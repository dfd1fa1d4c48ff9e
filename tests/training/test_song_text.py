"""The lyrics reading's parts: ridges to valence/arousal or to quadrant placements, joined into one linear map."""

import numpy as np

from training.datasets.lyrics import TextRow, TextSet
from training.song_text import fit_ridge, joined

QUADRANT_SIGNS = {"Q1": (1, 1), "Q2": (-1, 1), "Q3": (-1, -1), "Q4": (1, -1)}


def _vectors(rng: np.random.Generator, signs: np.ndarray) -> np.ndarray:
    x = rng.normal(0.0, 1.0, (len(signs), 384))
    x[:, :2] += 3.0 * signs
    return x


def test_a_quadrant_set_reads_as_its_classes_placements():
    rng = np.random.default_rng(0)
    quadrants = rng.choice(list(QUADRANT_SIGNS), 400)
    signs = np.array([QUADRANT_SIGNS[q] for q in quadrants], dtype=float)
    data = TextSet(rows=[TextRow("a", "t", "", "train", quadrant=str(q)) for q in quadrants])
    reading = fit_ridge(data, _vectors(rng, signs))
    fresh = np.array([(1, 1), (-1, -1), (1, -1), (-1, 1)], dtype=float)
    va = reading.predict(_vectors(rng, fresh.repeat(50, axis=0)))
    means = va.reshape(4, 50, 2).mean(axis=1)
    assert np.all(np.sign(means - means.mean(axis=0)) == fresh)  # the ridge shrinks to the train mean


def test_the_joined_reading_is_the_mean_of_its_parts_standardised_outputs():
    rng = np.random.default_rng(1)
    parts = []
    for seed in (2, 3):
        local = np.random.default_rng(seed)
        va = local.uniform(-1, 1, (300, 2))
        data = TextSet(rows=[TextRow("a", "t", "", "train", va=(float(v), float(a))) for v, a in va])
        parts.append(fit_ridge(data, _vectors(local, np.sign(va)) * local.uniform(0.5, 2.0) + local.normal()))
    x_train, x_new = rng.normal(0.0, 2.0, (500, 384)), rng.normal(0.0, 2.0, (40, 384))
    both = joined(parts, x_train)
    mean_z = np.mean([p.standardised(x_new) for p in parts], axis=0)
    assert np.allclose(both.predict(x_new), mean_z, atol=1e-8)
    z_train = both.standardised(x_train)
    assert np.allclose(z_train.mean(axis=0), 0.0, atol=1e-8) and np.allclose(z_train.std(axis=0), 1.0, atol=1e-6)
