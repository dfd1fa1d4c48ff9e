"""Smooth valence/arousal trajectories, sampled at 2 Hz like DEAM's dynamic annotations.

A clip's mood holds for a while, then may turn: 1-3 anchor moods joined by smooth (smoothstep) transitions of
2-6 s, plus a slow Ornstein-Uhlenbeck drift. Anchors cover the whole plane, so corpora span every quadrant.
"""

from __future__ import annotations

import numpy as np

FRAME_RATE = 2.0  # Hz
LIMIT = 0.95


def frame_times(seconds: float, *, frame_rate: float = FRAME_RATE) -> np.ndarray:
    return np.arange(round(seconds * frame_rate)) / frame_rate


def _anchors(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 2) anchor moods: the first uniform on the plane, each next one a real turn away."""
    points = [rng.uniform(-0.85, 0.85, size=2)]
    for _ in range(n - 1):
        angle, length = rng.uniform(0, 2 * np.pi), rng.uniform(0.5, 1.2)
        points.append(np.clip(points[-1] + length * np.array([np.cos(angle), np.sin(angle)]), -0.85, 0.85))
    return np.array(points)


def _drift(rng: np.random.Generator, size: int, *, sigma: float = 0.05, theta: float = 0.15) -> np.ndarray:
    """(size, 2) mean-reverting random drift."""
    x = np.zeros((size, 2))
    for i in range(1, size):
        x[i] = x[i - 1] * (1 - theta) + sigma * rng.standard_normal(2)
    return x


def sample_trajectory(*, rng: np.random.Generator, seconds: float, frame_rate: float = FRAME_RATE) -> np.ndarray:
    """Return a (T, 2) valence/arousal trajectory at ``frame_rate`` Hz, values on [-LIMIT, LIMIT]."""
    t = frame_times(seconds, frame_rate=frame_rate)
    n = int(rng.choice([1, 2, 3], p=[0.4, 0.4, 0.2]))
    anchors = _anchors(rng, n)
    va = np.repeat(anchors[:1], t.size, axis=0)
    change_times = np.sort(rng.uniform(0.2, 0.8, size=n - 1)) * seconds
    for k, centre in enumerate(change_times, start=1):
        width = rng.uniform(2.0, 6.0)
        x = np.clip((t - centre) / width + 0.5, 0.0, 1.0)
        ramp = x * x * (3 - 2 * x)
        va = va + ramp[:, None] * (anchors[k] - anchors[k - 1])
    return np.clip(va + _drift(rng, t.size), -LIMIT, LIMIT)
