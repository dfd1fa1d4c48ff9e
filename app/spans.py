"""Span search: the best-matching stretch of each track, exact.

Every track is cut into spans on the model's span grid (``models.inference.SpanGrid``: about 10 s each, one every
5 s), each with its own music embedding; a query of ``n`` pieces scores a run of ``n`` consecutive spans as
``models.spans`` says, and a track's answer is its best run; tracks rank by it.

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

from models.scoring import Gaussians, augment_items, augment_query
from models.spans import SpanHit, SpanTable

FIRST_HEAD = 256  # spans each piece reads first, and at least ...
HEAD_PER_TRACK = 8  # ... this many per track asked for
HEAD_GROWTH = 4
FLOAT32_SLACK = 2.0**-17  # per |stored value|: float32 rounding of the stored vectors and of the scan's sums
SPAN_ARRAYS = ("track_ids", "starts", "ends", "E", "mu", "logvar", "centre", "abs_max")


@dataclass(frozen=True)
class SpanIndex(SpanTable):
    """The spans of one snapshot's tracks (``SpanTable``: float32 embeddings) and their exact index."""

    index: faiss.Index  # IndexFlatIP over augment_items of the spans
    centre: np.ndarray  # (d,) float64
    abs_max: np.ndarray  # (D,) largest |stored value| per augmented dimension (the float32 slack)

    @property
    def size(self) -> int:
        return int(self.track_ids.size)

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
            best = self.best_runs(pieces, candidates, lam=lam)
            if head >= size:
                return best[:k]
            bound = float(np.mean(found[:, head - 1] + offsets + slack))
            if len(best) >= k and best[k - 1].score >= bound:
                return best[:k]
            head = min(size, head * HEAD_GROWTH)


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
    return SpanIndex(np.asarray(track_ids, dtype=np.int64), np.asarray(starts, dtype=np.float64),
                     np.asarray(ends, dtype=np.float64), gaussians, index, centre, abs_max)


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
    return SpanIndex(items["track_ids"], items["starts"], items["ends"],
                     Gaussians(items["E"], items["mu"], items["logvar"]),
                     faiss.read_index(str(folder / "index.faiss"), faiss.IO_FLAG_MMAP_IFC), np.asarray(items["centre"]),
                     np.asarray(items["abs_max"]))
