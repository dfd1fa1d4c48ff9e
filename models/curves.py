"""Valence/arousal curves: validation and resampling.

A curve is an array of shape (T, 3) holding rows ``(t_seconds, valence, arousal)`` with non-decreasing times
and VA on [-1, 1]. Every curve that enters the product (manifests, API requests) passes ``validate_curve``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from models.errors import CurveError

VA_MIN = -1.0
VA_MAX = 1.0


def validate_curve(curve: Sequence[Sequence[float]] | np.ndarray, *, name: str = "curve") -> np.ndarray:
    """Return ``curve`` as a float64 array of shape (T, 3), or raise ``CurveError`` naming the problem.

    Parameters
    ----------
    curve : rows ``(t_seconds, valence, arousal)``
    name : how the curve is called in error messages (an item id, a request field)
    """
    try:
        array = np.asarray(curve, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise CurveError(f"{name}: rows must be [t, valence, arousal] numbers") from error
    if array.size == 0:
        raise CurveError(f"{name}: the curve is empty")
    if array.ndim != 2 or array.shape[1] != 3:
        raise CurveError(f"{name}: expected rows [t, valence, arousal], got shape {array.shape}")
    if not np.isfinite(array).all():
        raise CurveError(f"{name}: the curve holds NaN or infinite values")
    if (array[:, 0] < 0).any() or (np.diff(array[:, 0]) < 0).any():
        raise CurveError(f"{name}: times must be >= 0 and non-decreasing")
    va = array[:, 1:]
    if (va < VA_MIN).any() or (va > VA_MAX).any():
        raise CurveError(f"{name}: valence and arousal must lie on [{VA_MIN:g}, {VA_MAX:g}]")
    return array


def resample_curve(curve: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Linearly interpolate a validated (T, 3) curve at ``times`` (seconds); hold the ends.

    Returns
    -------
    (len(times), 2) array of valence, arousal.
    """
    t, va = curve[:, 0], curve[:, 1:]
    return np.stack([np.interp(times, t, va[:, 0]), np.interp(times, t, va[:, 1])], axis=1)


def curve_mean(curve: np.ndarray) -> np.ndarray:
    """Time-weighted mean (valence, arousal) of a validated curve; a single point is its own mean."""
    if curve.shape[0] == 1 or curve[-1, 0] == curve[0, 0]:
        return curve[:, 1:].mean(axis=0)
    t = curve[:, 0]
    return np.array([np.trapezoid(curve[:, k], t) / (t[-1] - t[0]) for k in (1, 2)])
