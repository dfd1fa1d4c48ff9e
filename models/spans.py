"""The score of a run of spans: a query for a stretch of ``n`` span-grid steps is ``n`` pieces (a curve cut on the
grid; a steady point, emotion or text repeated), and a run of ``n`` consecutive spans of one track scores the mean
over ``j`` of piece ``j`` against span ``j`` of the run, so a rising query finds a rising stretch. A track's answer
is its best run. ``app.spans`` finds the best tracks with an index; ``best_runs`` scores given tracks exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.scoring import Gaussians, composite_scores


@dataclass(frozen=True)
class SpanHit:
    """One track's best run of spans for a query: where it lies and its mean score parts."""

    track_id: int
    start_s: float
    end_s: float
    score: float
    corr: float
    neg_kl: float


@dataclass(frozen=True)
class SpanTable:
    """Spans of several tracks: grouped by track (ids non-decreasing), in time order within one."""

    track_ids: np.ndarray  # (S,) int64
    starts: np.ndarray  # (S,) seconds
    ends: np.ndarray  # (S,)
    gaussians: Gaussians  # (S, d) each

    def rows_of(self, track_ids: np.ndarray) -> np.ndarray:
        """Rows of every span of the given tracks."""
        return np.flatnonzero(np.isin(self.track_ids, track_ids))

    def best_runs(self, pieces: Gaussians, tracks: np.ndarray, *, lam: float) -> list[SpanHit]:
        """Each of ``tracks``' best run for ``pieces`` ((n, d) arrays), scored in float64, best first (ties: lower
        track id first). Tracks with fewer than ``n`` spans have no run."""
        n = pieces.E.shape[0]
        first = np.searchsorted(self.track_ids, tracks, side="left")
        last = np.searchsorted(self.track_ids, tracks, side="right")
        keep = last - first >= n
        tracks, first, last = tracks[keep], first[keep], last[keep]
        if tracks.size == 0:
            return []
        rows = np.concatenate([np.arange(a, b) for a, b in zip(first, last, strict=True)])
        items = Gaussians(*(np.asarray(part[rows], dtype=np.float64) for part in self.gaussians))
        scores = composite_scores(Gaussians(*(np.asarray(p, dtype=np.float64) for p in pieces)), items, lam=lam)
        width = rows.size - n + 1  # run c covers columns c .. c + n - 1 (valid where one track holds them all)
        run = [sum(part[j, j : j + width] for j in range(n)) / n for part in scores]
        block_start = np.r_[0, np.cumsum(last - first)[:-1]]
        hits = []
        for track, start, count in zip(tracks, block_start, last - first, strict=True):
            c = start + int(np.argmax(run[0][start : start + count - n + 1]))
            row_first, row_last = rows[c], rows[c + n - 1]
            hits.append(SpanHit(int(track), float(self.starts[row_first]), float(self.ends[row_last]),
                                float(run[0][c]), float(run[1][c]), float(run[2][c])))
        hits.sort(key=lambda h: (-h.score, h.track_id))
        return hits

    def longest_s(self, allowed: np.ndarray | None = None) -> float:
        """The longest stretch of spans of one track, in seconds (among ``allowed`` rows)."""
        rows = np.arange(self.track_ids.size) if allowed is None else allowed
        if rows.size == 0:
            return 0.0
        owners = self.track_ids[rows]
        first = np.r_[0, np.flatnonzero(np.diff(owners)) + 1]
        last = np.r_[first[1:], rows.size] - 1
        return float(np.max(self.ends[rows[last]] - self.starts[rows[first]]))
