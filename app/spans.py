"""Span search: the best-matching stretch of each track, exact.

Every track is cut into spans on the model's span grid (``models.inference.SpanGrid``: about 10 s each, one every
5 s), each with its own music embedding. A query for a stretch of ``n`` grid steps is ``n`` pieces (a curve cut on
the same grid; a steady point, emotion or text repeated), and a run of ``n`` consecutive spans of one track scores
the mean over ``j`` of piece ``j`` against span ``j`` of the run: a rising query finds a rising stretch. A track's
answer is its best run; tracks rank by it.

Exact without scoring every span: each piece scans the span index (FAISS ``IndexFlatIP`` over augmented vectors,
one call for all pieces) for its ``h`` best spans; every run of the tracks those spans belong to is scored exactly
in float64. A track with no span in any piece's head has every span of piece ``j`` at or below that head's last
score, so none of its runs beats the mean of those last scores (plus float32 slack). When the ``k``-th best run
found beats that bound, no other track can enter the top ``k``; otherwise ``h`` grows fourfold (at worst every span
is read).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from models.scoring import Gaussians, augment_items, augment_query, composite_scores

FIRST_HEAD = 256  # spans each piece reads first, and at least ...
HEAD_PER_TRACK = 8  # ... this many per track asked for
HEAD_GROWTH = 4
FLOAT32_SLACK = 2.0**-17  # per |stored value|: float32 rounding of the stored vectors and of the scan's sums
SPAN_ARRAYS = ("track_ids", "starts", "ends", "E", "mu", "logvar", "centre", "abs_max")


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
class SpanIndex:
    """The spans of one snapshot's tracks (grouped by track, in time order within one) and their exact index."""

    index: faiss.Index  # IndexFlatIP over augment_items of the spans
    track_ids: np.ndarray  # (S,) int64, non-decreasing
    starts: np.ndarray  # (S,) seconds
    ends: np.ndarray  # (S,)
    gaussians: Gaussians  # (S, d) float32 each
    centre: np.ndarray  # (d,) float64
    abs_max: np.ndarray  # (D,) largest |stored value| per augmented dimension (the float32 slack)

    @property
    def size(self) -> int:
        return int(self.track_ids.size)

    def rows_of(self, track_ids: np.ndarray) -> np.ndarray:
        """Rows of every span of the given tracks."""
        return np.flatnonzero(np.isin(self.track_ids, track_ids))

    def longest_s(self, allowed: np.ndarray | None = None) -> float:
        """The longest run of spans of one track, in seconds (among ``allowed`` rows)."""
        rows = np.arange(self.size) if allowed is None else allowed
        if rows.size == 0:
            return 0.0
        owners = self.track_ids[rows]
        first = np.r_[0, np.flatnonzero(np.diff(owners)) + 1]
        last = np.r_[first[1:], rows.size] - 1
        return float(np.max(self.ends[rows[last]] - self.starts[rows[first]]))

    def search(self, pieces: Gaussians, *, lam: float, k: int, allowed: np.ndarray | None = None,
               exclude: Collection[int] = ()) -> list[SpanHit]:
        """The exact top ``k`` tracks by their best run for ``pieces`` ((n, d) arrays: the run is ``n`` spans
        long), skipping ``exclude``; with ``allowed`` (``rows_of``), among those tracks only. Tracks with fewer
        than ``n`` spans have no run."""
        size = self.size if allowed is None else int(allowed.size)
        if size == 0 or k <= 0:
            return []
        q, offsets = augment_query(pieces, lam=lam, centre=self.centre)
        slack = np.abs(q) @ (FLOAT32_SLACK * self.abs_max) + 1e-9
        params = None if allowed is None else _selection(allowed)
        head = min(size, max(FIRST_HEAD, HEAD_PER_TRACK * (k + len(exclude))))
        while True:
            found, rows = self.index.search(np.ascontiguousarray(q, dtype=np.float32), head, params=params)
            candidates = np.setdiff1d(np.unique(self.track_ids[rows[rows >= 0]]), np.fromiter(exclude, np.int64))
            best = self._best_runs(pieces, candidates, lam=lam)
            if head >= size:
                return best[:k]
            bound = float(np.mean(found[:, head - 1] + offsets + slack))
            if len(best) >= k and best[k - 1].score >= bound:
                return best[:k]
            head = min(size, head * HEAD_GROWTH)

    def _best_runs(self, pieces: Gaussians, tracks: np.ndarray, *, lam: float) -> list[SpanHit]:
        """Each track's best run, scored exactly, best first (ties: lower track id first)."""
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


_FAISS: Any = faiss  # its type stubs lack SearchParameters' fields


def _selection(rows: np.ndarray) -> Any:
    selector = faiss.IDSelectorBatch(np.ascontiguousarray(rows, dtype=np.int64))
    params = _FAISS.SearchParameters()
    params.sel = selector
    params._selector = selector  # FAISS keeps a raw pointer: the selector must live as long as the parameters
    return params


def build_spans(track_ids: np.ndarray, starts: np.ndarray, ends: np.ndarray, gaussians: Gaussians) -> SpanIndex:
    """A span index of spans given grouped by track and in time order within each (``catalog.spans_for_version``)."""
    gaussians = Gaussians(*(np.asarray(part, dtype=np.float32) for part in gaussians))
    d = gaussians.E.shape[1] if gaussians.E.ndim == 2 and gaussians.E.size else 0
    centre = gaussians.mu.astype(np.float64).mean(axis=0) if track_ids.size else np.zeros(d)
    xb = augment_items(gaussians, centre=centre) if track_ids.size else np.zeros((0, 3 * d + 1))
    index = faiss.IndexFlatIP(xb.shape[1])
    if xb.size:
        index.add(np.ascontiguousarray(xb, dtype=np.float32))
    abs_max = np.abs(xb).max(axis=0) if xb.size else np.zeros(xb.shape[1])
    return SpanIndex(index, np.asarray(track_ids, dtype=np.int64), np.asarray(starts, dtype=np.float64),
                     np.asarray(ends, dtype=np.float64), gaussians, centre, abs_max)


def save_spans(spans: SpanIndex, folder: Path) -> None:
    """Write a span index into ``folder`` (a snapshot's ``spans/``, inside its atomic write)."""
    folder.mkdir()
    faiss.write_index(spans.index, str(folder / "index.faiss"))
    arrays = {"track_ids": spans.track_ids, "starts": spans.starts, "ends": spans.ends,
              **spans.gaussians._asdict(), "centre": spans.centre, "abs_max": spans.abs_max}
    for name, array in arrays.items():
        np.save(folder / f"{name}.npy", np.ascontiguousarray(array))
    (folder / "manifest.json").write_text(json.dumps({"size": spans.size}))


def load_spans(folder: Path) -> SpanIndex | None:
    """The span index a snapshot saved, memory-mapped; None for a snapshot saved without one."""
    if not (folder / "manifest.json").is_file():
        return None
    items = {name: np.load(folder / f"{name}.npy", mmap_mode="r") for name in SPAN_ARRAYS}
    return SpanIndex(faiss.read_index(str(folder / "index.faiss"), faiss.IO_FLAG_MMAP_IFC), items["track_ids"],
                     items["starts"], items["ends"], Gaussians(items["E"], items["mu"], items["logvar"]),
                     np.asarray(items["centre"]), np.asarray(items["abs_max"]))
