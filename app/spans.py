"""Span search: the best-matching stretch of each track, exact.

Every track is cut into spans on the model's span grid (``models.inference.SpanGrid``: about 10 s each, one every
5 s), each with its own music embedding; a query of ``n`` pieces scores a run of ``n`` consecutive spans as
``models.spans`` says, and a track's answer is its best run; tracks rank by it.

Exact with one pass over the spans: the augmented span vectors (``augment_items``, float32) times the ``n``
augmented piece queries give every span's score for every piece (one matrix product, memory-bound like a flat
FAISS scan); shifting and averaging them gives every run's score, and a maximum per track each track's best run,
all in float32. The ``m`` best tracks by that are rescored exactly in float64 (``SpanTable.best_runs``). A float32
score is off the exact one by at most ``slack`` (``sum_i |q_i| * FLOAT32_SLACK * max |x_i|``), so a track outside
the ``m`` cannot beat the ``(m+1)``-th float32 run score plus twice the slack; when the exact ``k``-th does, the
answer is the exact top ``k``; otherwise ``m`` grows fourfold.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from models.scoring import Gaussians, augment_items, augment_query
from models.spans import SpanHit, SpanTable

FIRST_TRACKS = 4  # tracks rescored exactly first, per track asked for (and excluded)
TRACK_GROWTH = 4
FLOAT32_SLACK = 2.0**-17  # per |stored value|: float32 rounding of the stored vectors and of the product's sums
SPAN_ARRAYS = ("track_ids", "starts", "ends", "E", "mu", "logvar", "vectors", "centre", "abs_max")


class SpanSearch(Protocol):
    """What a backend's span search offers: ``SpanIndex`` here, ``app.milvus.MilvusSpans`` on Milvus."""

    @property
    def size(self) -> int: ...
    def rows_of(self, track_ids: np.ndarray) -> np.ndarray:
        """What ``search(allowed=...)`` takes to keep the spans of the given tracks."""
        ...
    def longest_s(self, allowed: np.ndarray | None = None) -> float: ...
    def search(self, pieces: Gaussians, *, lam: float, k: int, allowed: np.ndarray | None = None,
               exclude: Collection[int] = ()) -> list[SpanHit]: ...


@dataclass(frozen=True)
class SpanIndex(SpanTable):
    """The spans of one snapshot's tracks (``SpanTable``: float32 embeddings) and their augmented vectors."""

    vectors: np.ndarray  # (S, 3d + 1) float32: augment_items of the spans
    centre: np.ndarray  # (d,) float64
    abs_max: np.ndarray  # (3d + 1,) largest |stored value| per dimension (the float32 slack)

    @property
    def size(self) -> int:
        return int(self.track_ids.size)

    @functools.cached_property
    def track_starts(self) -> np.ndarray:
        """The first row of each track."""
        return _starts(self.track_ids)

    def search(self, pieces: Gaussians, *, lam: float, k: int, allowed: np.ndarray | None = None,
               exclude: Collection[int] = ()) -> list[SpanHit]:
        """The exact top ``k`` tracks by their best run for ``pieces`` ((n, d) arrays: the run is ``n`` spans
        long), skipping ``exclude``; with ``allowed`` (``rows_of``: every span of the tracks that pass), among
        those tracks only. Tracks with fewer than ``n`` spans have no run."""
        rows = np.arange(self.size) if allowed is None else np.asarray(allowed)
        if rows.size == 0 or k <= 0:
            return []
        tracks, approx = self._approximate_best(pieces, rows, lam=lam, exclude=exclude)
        order = np.argsort(-approx, kind="stable")
        order = order[np.isfinite(approx[order])]
        slack = self._run_slack(pieces, lam=lam)
        m = FIRST_TRACKS * (k + len(exclude))
        while True:
            best = self.best_runs(pieces, np.sort(tracks[order[:m]]), lam=lam)
            if m >= order.size:
                return best[:k]
            if len(best) >= k and best[k - 1].score >= float(approx[order[m]]) + 2 * slack:
                return best[:k]
            m *= TRACK_GROWTH

    def _approximate_best(self, pieces: Gaussians, rows: np.ndarray, *, lam: float,
                          exclude: Collection[int]) -> tuple[np.ndarray, np.ndarray]:
        """The tracks of ``rows`` and each one's best float32 run score (-inf: no run, or excluded)."""
        n = pieces.E.shape[0]
        q, offsets = augment_query(pieces, lam=lam, centre=self.centre)
        whole = rows.size == self.size
        vectors = self.vectors if whole else self.vectors[rows]
        scores = (vectors @ q.astype(np.float32).T).T  # (n, S): one read of the span vectors
        scores += offsets.astype(np.float32)[:, None]
        owners = self.track_ids if whole else self.track_ids[rows]
        width = rows.size - n + 1
        run = np.full(rows.size, -np.inf, dtype=np.float32)
        if width > 0:
            total = scores[0, :width].copy()
            for j in range(1, n):
                total += scores[j, j : j + width]
            same = owners[:width] == owners[n - 1 : n - 1 + width]
            run[:width] = np.where(same, total / n, -np.inf)
        first = self.track_starts if whole else _starts(owners)
        tracks = owners[first]
        best = np.maximum.reduceat(run, first)
        if exclude:
            best[np.isin(tracks, np.fromiter(exclude, np.int64))] = -np.inf
        return tracks, best.astype(np.float64)

    def _run_slack(self, pieces: Gaussians, *, lam: float) -> float:
        """The largest error of a float32 run score (the mean of its pieces' slacks is below the largest)."""
        q, _ = augment_query(pieces, lam=lam, centre=self.centre)
        return float(np.max(np.abs(q) @ (FLOAT32_SLACK * self.abs_max))) + 1e-9


def _starts(owners: np.ndarray) -> np.ndarray:
    return np.r_[0, np.flatnonzero(np.diff(owners)) + 1]


def build_spans(table: SpanTable) -> SpanIndex:
    """A span index of a table's spans (grouped by track, in time order within each: ``catalog.spans_for_version``)."""
    track_ids = table.track_ids
    gaussians = Gaussians(*(np.asarray(part, dtype=np.float32) for part in table.gaussians))
    d = gaussians.E.shape[1] if gaussians.E.ndim == 2 and gaussians.E.size else 0
    centre = gaussians.mu.astype(np.float64).mean(axis=0) if track_ids.size else np.zeros(d)
    vectors = np.zeros((track_ids.size, 3 * d + 1), dtype=np.float32)
    abs_max = np.zeros(3 * d + 1)
    for start in range(0, track_ids.size, BUILD_CHUNK):  # float64 a chunk at a time: millions of spans fit
        part = augment_items(Gaussians(*(p[start : start + BUILD_CHUNK] for p in gaussians)), centre=centre)
        vectors[start : start + BUILD_CHUNK] = part
        abs_max = np.maximum(abs_max, np.abs(part).max(axis=0))
    return SpanIndex(np.asarray(track_ids, dtype=np.int64), np.asarray(table.starts, dtype=np.float64),
                     np.asarray(table.ends, dtype=np.float64), gaussians, vectors, centre, abs_max)


BUILD_CHUNK = 100_000  # spans augmented at a time while building


def save_spans(spans: SpanIndex, folder: Path) -> None:
    """Write a span index into ``folder`` (a snapshot's ``spans/``, inside its atomic write)."""
    folder.mkdir()
    arrays = {"track_ids": spans.track_ids, "starts": spans.starts, "ends": spans.ends,
              **spans.gaussians._asdict(), "vectors": spans.vectors, "centre": spans.centre,
              "abs_max": spans.abs_max}
    for name, array in arrays.items():
        np.save(folder / f"{name}.npy", np.ascontiguousarray(array))
    (folder / "manifest.json").write_text(json.dumps({"size": spans.size}))


def load_spans(folder: Path) -> SpanIndex | None:
    """The span index a snapshot saved, memory-mapped (processes serving one data folder share its pages); None
    for a snapshot saved without one."""
    if not (folder / "manifest.json").is_file():
        return None
    items = {name: np.load(folder / f"{name}.npy", mmap_mode="r") for name in SPAN_ARRAYS}
    return SpanIndex(items["track_ids"], items["starts"], items["ends"],
                     Gaussians(items["E"], items["mu"], items["logvar"]), items["vectors"],
                     np.asarray(items["centre"]), np.asarray(items["abs_max"]))
