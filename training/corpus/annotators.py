"""Simulated annotators: several noisy, biased raters follow the true trajectory; we keep their mean and std.

Each rater, like a listener moving a slider in a continuous-annotation study (E. Schubert, Music Perception 2004;
A. Aljanaki et al., "Developing a benchmark for emotional analysis of music", PLOS ONE 2017), starts at the
neutral centre and converges with a time constant of a few seconds, lags the music by 0.5-2.5 s, compresses
the scale (gain < 1), carries a personal bias, and adds slowly varying (AR(1)) noise.
"""

from __future__ import annotations

import numpy as np

from training.corpus.trajectory import FRAME_RATE


def _rater(rng: np.random.Generator, truth: np.ndarray, *, frame_rate: float) -> np.ndarray:
    """(T, 2) ratings of one simulated listener."""
    size = truth.shape[0]
    lag = int(rng.uniform(0.5, 2.5) * frame_rate)
    lagged = np.concatenate([np.repeat(truth[:1], lag, axis=0), truth])[:size]
    target = rng.uniform(0.7, 1.05) * lagged + rng.normal(0.0, 0.12, size=2)
    noise = np.zeros((size, 2))
    for i in range(1, size):
        noise[i] = 0.85 * noise[i - 1] + rng.normal(0.0, 0.05, size=2)
    settle = 1.0 - np.exp(-np.arange(size) / (rng.uniform(2.0, 5.0) * frame_rate))
    return np.clip(settle[:, None] * target + noise, -1.0, 1.0)


def simulate_ratings(
    *, rng: np.random.Generator, truth: np.ndarray, n_raters: int = 8, frame_rate: float = FRAME_RATE
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation, each (T, 2), over ``n_raters`` simulated listeners of ``truth`` (T, 2)."""
    ratings = np.stack([_rater(rng, truth, frame_rate=frame_rate) for _ in range(n_raters)])
    return ratings.mean(axis=0), ratings.std(axis=0)
