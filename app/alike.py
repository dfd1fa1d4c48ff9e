"""Tracks that feel alike: catalogue tracks ranked by how closely their class probabilities match a track's.

A track's likeness vector (``models.taxonomy.likeness_vector``) is each categorical head's probabilities (4Q
quadrants, MIREX clusters) scaled to unit length and set side by side; two tracks' likeness is the cosine of their
vectors, in [0, 1]. On held-apart real recordings it finds tracks of the query's own class more often than the
track's embedding does, and it needs no taxonomy to be named (docs/experiments.md, "Tracks that feel alike, by
both heads' class probabilities"). The vectors are read from the catalogue once per model version and index
generation and kept (``TABLES``); where any embedding of the version was stored before class probabilities were
kept, the table is incomplete and the caller (``app.search.search_alike``) ranks by the embedding until the next
reindex gives them.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy.orm import Session

from app import catalog
from models.taxonomy import likeness_vector


@dataclass(frozen=True)
class ClassTable:
    """The likeness vectors of every track embedded by one model version (rows in track-id order)."""

    track_ids: np.ndarray  # (N,) int64
    vectors: np.ndarray  # (N, C) float64, unit rows
    complete: bool  # every embedding of the version has class probabilities


def build_table(track_ids: np.ndarray, classes: Sequence[Mapping[str, Sequence[float]] | None]) -> ClassTable:
    """The table of ``catalog.classes_for_version``'s rows; rows without probabilities (or of another shape than
    the first) make it incomplete."""
    vectors = [likeness_vector(c) for c in classes if c]
    width = vectors[0].size if vectors else 0
    if len(vectors) < len(classes) or any(v.size != width for v in vectors):
        return ClassTable(np.zeros(0, dtype=np.int64), np.zeros((0, width)), False)
    return ClassTable(np.asarray(track_ids, dtype=np.int64),
                      np.stack(vectors) if vectors else np.zeros((0, width)), True)


class ClassTables:
    """The class table of the serving generation, read from the catalogue on first use and kept until the
    generation or the model version changes (one per process; concurrent first uses read it once)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[str, str] | None = None
        self._table: ClassTable | None = None

    def get(self, session: Session, model_version: str, generation: str) -> ClassTable:
        with self._lock:
            if self._key != (model_version, generation) or self._table is None:
                self._table = build_table(*catalog.classes_for_version(session, model_version))
                self._key = (model_version, generation)
            return self._table


def most_alike(table: ClassTable, vector: np.ndarray, *, k: int, exclude: Collection[int] = (),
               allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
    """The ``k`` tracks whose likeness to ``vector`` is highest, best first (ties: lower track id first), as
    (track id, likeness); skipping ``exclude``; with ``allowed`` (track ids), among those only."""
    keep = ~np.isin(table.track_ids, np.fromiter(exclude, dtype=np.int64, count=len(exclude)))
    if allowed is not None:
        keep &= np.isin(table.track_ids, allowed)
    rows = np.flatnonzero(keep)
    likeness = table.vectors[rows] @ vector
    order = np.argsort(-likeness, kind="stable")[:k]
    return [(int(table.track_ids[rows[i]]), float(likeness[i])) for i in order]


TABLES = ClassTables()  # the process's; keyed by model version and index generation
