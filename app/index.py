"""The FAISS index over augmented item vectors: a rebuildable cache of the database, versioned and swapped
atomically.

A snapshot is one model version's catalogue at one moment: the FAISS index over ``augment_items`` vectors (exact
``IndexFlatIP``; ``fp16``: half-precision codes scanned first, exact by a certificate; or HNSW on MIPS -> L2
transformed vectors), the track ids, and the float32 embeddings used to rescore the head of every result list in
float64.

``fp16`` reads half the bytes of a flat scan. Each dimension's largest decoding error over the catalogue is kept,
so for a query ``q`` no item's code score is off its exact score by more than ``slack(q) = sum_j |q_j| (err_j +
float32 rounding)``. The top ``m`` by code score are rescored exactly; if the k-th exact score beats the m-th code
score plus the slack, no item outside them can enter the top k, and the answer is exact by construction;
otherwise ``m`` grows fourfold and the scan repeats (at worst: every item rescored). A flat index is certified
the same way, its "decoding error" the float32 rounding of the vectors: its codes are so close to the exact
scores that a few candidates past the k-th settle it (``FLAT_MARGIN``), where a fixed head of ``rescore_head``
rescored hundreds and was exact only by luck. HNSW keeps the fixed head (its scan is approximate anyway).
``sq8`` keeps no FAISS index: one byte per dimension (``app.codes``), scanned by a compiled integer kernel and
exact by its own certificate in one scan.

Snapshots are saved as ``<root>/<version>/<generation>/`` with a ``manifest.json`` and made current by replacing
``<root>/current.json`` (``os.replace`` is atomic). A build that fails leaves both the files and the serving
snapshot as they were.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, TypeVar

import faiss
import numpy as np

from app.spans import SpanIndex, SpanSearch, build_spans, load_spans, save_spans
from models.atomic import atomic_directory, atomic_file
from models.scoring import Gaussians, Scores, augment_items, augment_query, split_scores
from models.spans import SpanTable

if TYPE_CHECKING:
    from app.catalog import FilterFields, TrackFilters
    from app.codes import ScalarCodes  # imported where an sq8 snapshot is built or loaded: numba takes 0.4 s

log = logging.getLogger(__name__)


class Hit(NamedTuple):
    track_id: int
    score: float
    corr: float
    neg_kl: float


class SearchIndex(Protocol):
    """What the service searches: a FAISS ``Snapshot`` here, or a Milvus collection (``app.milvus``)."""

    @property
    def model_version(self) -> str: ...
    @property
    def generation(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def spans(self) -> SpanSearch | None:
        """The span index (``app.spans``), where this snapshot has one."""
        ...
    def select(self, filters: TrackFilters, passing: Callable[[], np.ndarray]) -> Any:
        """What ``search(allowed=...)`` takes to keep the tracks that pass ``filters``; ``passing`` gives their
        ids from the database (FAISS: index rows; Milvus: its own filter expression where it stores the fields)."""
        ...
    def holds(self, track_id: int) -> bool: ...
    def search(self, query: Gaussians, *, lam: float, k: int, rescore_head: int, ef_search: int = 128,
               allowed: Any = None) -> list[Hit]: ...
    def search_many(self, queries: Gaussians, *, lams: Sequence[float], ks: Sequence[int], rescore_head: int,
                    ef_search: int = 128) -> list[list[Hit]]: ...


S = TypeVar("S", bound=SearchIndex)


class SnapshotStore(Protocol[S]):
    """Where generations of the index live and which one serves: files (``IndexStore``) or Milvus
    (``app.milvus.MilvusStore``)."""

    problem: str  # why the newest published generation is not the one serving, if it is not

    wants_fields: bool  # whether ``build`` stores each track's filter fields (and evaluates filters itself)

    @property
    def current(self) -> S | None: ...
    def build(self, *, model_version: str, track_ids: np.ndarray, gaussians: Gaussians,
              fields: Sequence[FilterFields] | None = None, spans: SpanTable | None = None) -> S: ...
    def publish(self, snapshot: S) -> None: ...
    def load_current(self, model_version: str) -> S | None: ...
    def refresh(self, model_version: str) -> None: ...
    def close(self) -> None: ...


def exact_scores(query: Gaussians, items: Gaussians, *, lam: float, centre: np.ndarray) -> Scores:
    """Float64 score parts of one (1, d) query against ``items`` (the head an index found)."""
    items = Gaussians(*(np.asarray(part, dtype=np.float64) for part in items))
    repeated = Gaussians(*(np.repeat(part, items.E.shape[0], axis=0) for part in query))
    return split_scores(repeated, items, lam=lam, centre=centre)


def ranked_hits(track_ids: np.ndarray, exact: Scores, k: int) -> list[Hit]:
    """The ``k`` best of the rescored head, best first."""
    order = np.argsort(-exact.score, kind="stable")[:k]
    return [Hit(int(track_ids[i]), float(exact.score[i]), float(exact.corr[i]), float(exact.neg_kl[i]))
            for i in order]


@dataclass(frozen=True)
class Snapshot:
    model_version: str
    generation: str
    kind: str
    index: faiss.Index | None  # None for sq8: its codes are ``codes``
    track_ids: np.ndarray  # (N,) int64
    gaussians: Gaussians  # (N, d) float32 each, for float64 rescoring
    centre: np.ndarray  # (d,) float64: the catalogue mean of mu
    norm_bound: float  # HNSW only: M in the MIPS -> L2 transform
    max_error: np.ndarray | None = None  # flat and fp16, (D,): largest |exact - stored| per augmented dimension
    abs_max: np.ndarray | None = None  # flat and fp16, (D,): largest |stored| per dimension (float32 rounding)
    spans: SpanIndex | None = None  # the tracks' spans (app.spans); None in snapshots saved before spans
    codes: ScalarCodes | None = None  # sq8: the 8-bit codes scanned instead of a FAISS index (app.codes)

    @property
    def size(self) -> int:
        return int(self.track_ids.size)

    @property
    def faiss_index(self) -> faiss.Index:
        assert self.index is not None, "an sq8 snapshot scans its codes, not a FAISS index"
        return self.index

    def rows_of(self, track_ids: np.ndarray) -> np.ndarray:
        """Index rows of the given track ids (those in this snapshot)."""
        return np.flatnonzero(np.isin(self.track_ids, track_ids))

    def select(self, filters: TrackFilters, passing: Callable[[], np.ndarray]) -> np.ndarray:
        del filters  # the database evaluated them
        return self.rows_of(passing())

    def holds(self, track_id: int) -> bool:
        return bool((self.track_ids == track_id).any())

    def search(self, query: Gaussians, *, lam: float, k: int, rescore_head: int, ef_search: int = 128,
               allowed: np.ndarray | None = None) -> list[Hit]:
        """Top ``k`` items for one query ((1, d) arrays) by the exact composite score; with ``allowed`` (index
        rows, ``rows_of``), the exact top ``k`` among those rows (FAISS skips the others during the scan)."""
        size = self.size if allowed is None else int(allowed.size)
        if size == 0:
            return []
        q, offset = augment_query(query, lam=lam, centre=self.centre)
        if self.codes is not None:
            rows, scores = self.codes.certified(q[0], k, self.codes.scorer(self.gaussians, self.centre, q[0]), allowed)
            return self._certified_hits(query, lam, k, rows, scores)
        head = min(size, self.first_head(k, rescore_head))
        params = None if allowed is None else _selection(self.kind, allowed)
        if self.max_error is not None:
            rows, exact = self.certified(query, q, float(offset[0]), lam=lam, k=k, head=head, params=params,
                                         size=size)
        else:
            rows = self._scan(q, head, ef_search=ef_search, params=params)[0]
            exact = self._exact(query, rows, lam)
        return self._hits(rows, exact, k)

    def search_many(self, queries: Gaussians, *, lams: Sequence[float], ks: Sequence[int], rescore_head: int,
                    ef_search: int = 128) -> list[list[Hit]]:
        """``search`` of several unfiltered queries ((n, d) arrays, a lam and a k each) in one FAISS call (flat,
        HNSW) or one scan of the 8-bit codes (sq8): the catalogue is read once for all of them (fp16 searches
        each on its own). Each query's answer is the one ``search`` gives it alone."""
        n = queries.E.shape[0]
        one = [Gaussians(*(part[i : i + 1] for part in queries)) for i in range(n)]
        if self.codes is not None and n > 1 and self.size:
            return self._search_codes_many(one, lams, ks)
        if self.kind == "fp16" or n == 1 or self.size == 0:
            return [self.search(q, lam=lam, k=k, rescore_head=rescore_head, ef_search=ef_search)
                    for q, lam, k in zip(one, lams, ks, strict=True)]
        augmented = [augment_query(query, lam=lam, centre=self.centre) for query, lam in zip(one, lams, strict=True)]
        heads = [min(self.size, self.first_head(k, rescore_head)) for k in ks]
        scores, rows = self._scan_scores(np.vstack([q for q, _ in augmented]), max(heads), ef_search=ef_search)
        answers = []
        for i, (query, lam, k, head) in enumerate(zip(one, lams, ks, heads, strict=True)):
            exact = self._exact(query, rows[i][:head], lam)
            if self.max_error is not None and not self._settled(augmented[i], scores[i][:head], exact, k):
                answers.append(self.search(query, lam=lam, k=k, rescore_head=rescore_head))  # grows its head
            else:
                answers.append(self._hits(rows[i][:head], exact, k))
        return answers

    def _search_codes_many(self, queries: list[Gaussians], lams: Sequence[float], ks: Sequence[int]) -> list[list[Hit]]:
        """``search_many`` on 8-bit codes: one scan of the codes for every query, each certified on its own."""
        assert self.codes is not None
        qs = np.vstack([augment_query(query, lam=lam, centre=self.centre)[0] for query, lam in zip(queries, lams,
                                                                                                 strict=True)])
        exacts = [self.codes.scorer(self.gaussians, self.centre, q) for q in qs]
        return [self._certified_hits(query, lam, k, rows, scores) for query, lam, k, (rows, scores)
                in zip(queries, lams, ks, self.codes.certified_many(qs, list(ks), exacts), strict=True)]

    def _certified_hits(self, query: Gaussians, lam: float, k: int, rows: np.ndarray, scores: np.ndarray) -> list[Hit]:
        """The top ``k`` hits among the rows the codes' certificate kept (their augmented scores ``scores``): the
        rows within NEAR_TIE of the k-th are ranked by their exact score parts."""
        rows = rows[scores >= np.partition(scores, -k)[-k] - NEAR_TIE] if rows.size > k else rows
        return self._hits(rows, self._exact(query, rows, lam), k)

    def first_head(self, k: int, rescore_head: int) -> int:
        """How many candidates a search rescores first: on a certified index a few past ``k`` (flat) or twice as
        many (fp16 codes are coarser: a 100k catalogue's point queries settle at 2k + 8 without growing, in 0.95 ms
        against 1.23 ms for a fixed 256); else ``rescore_head`` (HNSW rescores that many, no more)."""
        if self.max_error is None:
            return max(k, rescore_head)
        return k + FLAT_MARGIN if self.kind == "flat" else 2 * k + FLAT_MARGIN

    def _scan(self, q: np.ndarray, head: int, *, ef_search: int, params: Any = None) -> list[np.ndarray]:
        """Index rows of the ``head`` best items by the flat or HNSW index for each row of ``q`` (augmented
        queries), best first."""
        return self._scan_scores(q, head, ef_search=ef_search, params=params)[1]

    def _scan_scores(self, q: np.ndarray, head: int, *, ef_search: int, params: Any = None
                     ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """``_scan`` with the index's own (float32) scores of the rows it returns."""
        if self.kind == "hnsw":
            if params is None:
                faiss.ParameterSpace().set_index_parameter(self.faiss_index, "efSearch", max(ef_search, head))
            else:
                params.efSearch = max(ef_search, head)
            q = np.hstack([q, np.zeros((q.shape[0], 1))])
        D, I = self.faiss_index.search(np.ascontiguousarray(q, dtype=np.float32), head, params=params)
        return [d[found >= 0] for d, found in zip(D, I, strict=True)], [found[found >= 0] for found in I]

    def _hits(self, rows: np.ndarray, exact: Scores, k: int) -> list[Hit]:
        return ranked_hits(self.track_ids[rows], exact, k)

    def _exact(self, query: Gaussians, rows: np.ndarray, lam: float) -> Scores:
        return exact_scores(query, Gaussians(*(part[rows] for part in self.gaussians)), lam=lam, centre=self.centre)

    def certified(self, query: Gaussians, q: np.ndarray, offset: float, *, lam: float, k: int, head: int,
                  params: Any = None, size: int | None = None) -> tuple[np.ndarray, Scores]:
        """Rows and exact scores of candidates that provably hold the exact top ``k`` (module docstring)."""
        padded = _pad(q, self.faiss_index.d)[0]
        size = self.size if size is None else size
        want = head
        while True:
            codes, I = self.faiss_index.search(np.ascontiguousarray(padded[None, :], dtype=np.float32), want,
                                               params=params)
            rows = I[0][I[0] >= 0]
            exact = self._exact(query, rows, lam)
            if rows.size >= size or self._settled((q, np.array([offset])), codes[0][: rows.size], exact, k):
                return rows, exact
            want = min(size, want * FP16_GROWTH)

    def _settled(self, augmented: tuple[np.ndarray, np.ndarray], codes: np.ndarray, exact: Scores, k: int) -> bool:
        """Whether no item past the scanned candidates (their index scores ``codes``, best first) can beat the
        k-th exact score: the last candidate's code score plus the query's slack is below it."""
        assert self.max_error is not None and self.abs_max is not None
        if codes.size < k:
            return True  # every item the scan could reach is a candidate
        q, offset = augmented
        padded = _pad(q, self.faiss_index.d)[0]
        slack = float(np.abs(padded) @ (self.max_error + FLOAT32_SLACK * self.abs_max)) + 1e-9
        kth = np.partition(exact.score, -k)[-k] - float(offset[0])
        return float(codes[-1]) + slack < kth


_FAISS: Any = faiss  # its type stubs lack SearchParametersHNSW and the parameters' fields


def _selection(kind: str, rows: np.ndarray) -> Any:
    """Search parameters that make FAISS consider only ``rows``."""
    selector = faiss.IDSelectorBatch(np.ascontiguousarray(rows, dtype=np.int64))
    params = _FAISS.SearchParametersHNSW() if kind == "hnsw" else _FAISS.SearchParameters()
    params.sel = selector
    params._selector = selector  # FAISS keeps a raw pointer: the selector must live as long as the parameters
    return params


FP16_GROWTH = 4  # candidates grow by this factor until the certificate holds
FLAT_MARGIN = 8  # candidates past the k-th that a certified flat search rescores first
FLOAT32_ROUNDING = 2.0**-23  # per |stored value|: a float64 vector component rounded to float32 (with room)
FLOAT32_SLACK = 2.0**-17  # per |decoded value|: float32 rounding of a ~100-term dot product and of the query
NEAR_TIE = 1e-9  # sq8: candidates this close to the k-th by the augmented product are ranked by their score parts


def _pad(x: np.ndarray, width: int) -> np.ndarray:
    """Zero columns up to ``width`` (FAISS scans half-precision codes fastest in multiples of 8 dimensions)."""
    return np.hstack([x, np.zeros((x.shape[0], width - x.shape[1]))]) if width > x.shape[1] else x


def _fp16_index(xb: np.ndarray) -> tuple[faiss.Index, np.ndarray, np.ndarray]:
    """Half-precision codes of ``xb`` (padded to a multiple of 8), each dimension's largest decoding error and
    largest decoded magnitude."""
    width = -(-xb.shape[1] // 8) * 8
    index = faiss.IndexScalarQuantizer(width, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)
    max_error, abs_max = np.zeros(width), np.zeros(width)
    for start in range(0, xb.shape[0], FP16_CHUNK):
        exact = _pad(xb[start : start + FP16_CHUNK], width)
        chunk = np.ascontiguousarray(exact, dtype=np.float32)
        decoded = index.sa_decode(index.sa_encode(chunk)).astype(np.float64)
        max_error = np.maximum(max_error, np.abs(exact - decoded).max(axis=0))
        abs_max = np.maximum(abs_max, np.abs(decoded).max(axis=0))
        index.add(chunk)
    return index, max_error, abs_max


FP16_CHUNK = 100_000  # rows encoded at a time while building


def _mips_to_l2(x: np.ndarray, bound: float) -> np.ndarray:
    """Append sqrt(M^2 - |x|^2) so that L2 order equals inner-product order (Bachrach et al., 2014)."""
    extra = np.sqrt(np.maximum(bound**2 - np.sum(x**2, axis=1, keepdims=True), 0.0))
    return np.hstack([x, extra])


def build_snapshot(*, model_version: str, track_ids: np.ndarray, gaussians: Gaussians, kind: str = "flat",
                   hnsw_m: int = 32) -> Snapshot:
    """A new snapshot from embeddings; no side effects."""
    generation = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
    gaussians = Gaussians(*(np.asarray(part, dtype=np.float32) for part in gaussians))
    d = gaussians.E.shape[1] if gaussians.E.ndim == 2 and gaussians.E.size else 0
    centre = gaussians.mu.astype(np.float64).mean(axis=0) if track_ids.size else np.zeros(d)
    xb = augment_items(gaussians, centre=centre) if track_ids.size else np.zeros((0, 3 * d + 1))
    bound, max_error, abs_max, codes = 0.0, None, None, None
    index: faiss.Index | None = None
    if kind == "sq8":
        from app.codes import encode  # here, not at the top: numba's import costs every process 0.4 s

        codes = encode(xb)
    elif kind == "fp16":
        index, max_error, abs_max = _fp16_index(xb)
    elif kind == "hnsw":
        bound = float(np.sqrt(np.max(np.sum(xb**2, axis=1)))) if xb.size else 0.0
        xb = _mips_to_l2(xb, bound)
        index = faiss.IndexHNSWFlat(xb.shape[1], hnsw_m)
    elif kind == "flat":
        index = faiss.IndexFlatIP(xb.shape[1])
        abs_max = np.abs(xb.astype(np.float32)).max(axis=0).astype(np.float64) if xb.size else np.zeros(xb.shape[1])
        max_error = abs_max * FLOAT32_ROUNDING
    else:
        raise ValueError(f"unknown index kind {kind!r}")
    if xb.size and index is not None and kind != "fp16":
        index.add(np.ascontiguousarray(xb, dtype=np.float32))
    return Snapshot(model_version, generation, kind, index, np.asarray(track_ids, dtype=np.int64), gaussians,
                    centre, bound, max_error, abs_max, codes=codes)


ITEM_ARRAYS = ("track_ids", "E", "mu", "logvar", "centre")


def _load_items(folder: Path) -> dict[str, np.ndarray]:
    if not (folder / "track_ids.npy").is_file() and (folder / "items.npz").is_file():
        with np.load(folder / "items.npz") as items:
            return {name: items[name] for name in ITEM_ARRAYS}
    return {name: np.load(folder / f"{name}.npy", mmap_mode="r") for name in ITEM_ARRAYS}


def _read_index(path: Path, kind: str) -> faiss.Index:
    """The FAISS index, its codes memory-mapped where FAISS can (flat and fp16 codes; HNSW is read whole)."""
    flags = faiss.IO_FLAG_MMAP_IFC if kind in ("flat", "fp16") else 0
    return faiss.read_index(str(path), flags)


POINTER_CHECK_S = 0.5  # how often a serving process looks for a newer snapshot another process published
# What reading a damaged snapshot raises: files (OSError), numpy arrays and JSON (ValueError), a manifest without
# a field (KeyError), a FAISS index (RuntimeError), a truncated .npz (zipfile.BadZipFile, an Exception only).
UNREADABLE = (OSError, ValueError, KeyError, RuntimeError, zipfile.BadZipFile)


class IndexStore:
    """Snapshots on disk under ``root`` and the one that serves. Swaps are atomic; readers never block.

    ``current.json`` names the newest complete snapshot. A process that serves calls ``refresh`` per request: at
    most every ``POINTER_CHECK_S`` it compares the pointer file with the one it last read and, when another process
    (``moodspace ingest`` or ``reindex``) published a new generation, loads it and swaps to it. A snapshot that
    fails to load leaves the serving one in place (and is tried again at the next change)."""

    def __init__(self, root: Path, *, kind: str = "flat", hnsw_m: int = 32) -> None:
        self.root, self.kind, self.hnsw_m = root, kind, hnsw_m
        self._current: Snapshot | None = None
        self._lock = threading.Lock()
        self._pointer_seen: tuple[int, int] | None = None
        self._checked_at = 0.0
        self.problem = ""  # why the newest published snapshot is not the one serving, if it is not

    @property
    def pointer(self) -> Path:
        return self.root / "current.json"

    @property
    def current(self) -> Snapshot | None:
        return self._current

    wants_fields = False  # filters are evaluated by the database

    def build(self, *, model_version: str, track_ids: np.ndarray, gaussians: Gaussians,
              fields: Sequence[FilterFields] | None = None, spans: SpanTable | None = None) -> Snapshot:
        """A snapshot of this store's kind (``build_snapshot``), with its span index where ``spans`` are given;
        nothing is written until ``publish``."""
        snapshot = build_snapshot(model_version=model_version, track_ids=track_ids, gaussians=gaussians,
                                  kind=self.kind, hnsw_m=self.hnsw_m)
        if spans is None:
            return snapshot
        return replace(snapshot, spans=build_spans(spans))

    def close(self) -> None:
        """Nothing to release: snapshots are files."""

    def save(self, snapshot: Snapshot) -> Path:
        """Write a snapshot's files completely, then make it the current one on disk."""
        folder = self.root / snapshot.model_version / snapshot.generation
        with atomic_directory(folder) as tmp:
            if snapshot.codes is not None:
                snapshot.codes.save(tmp)
            else:
                faiss.write_index(snapshot.faiss_index, str(tmp / "index.faiss"))
            arrays = {"track_ids": snapshot.track_ids, **snapshot.gaussians._asdict(), "centre": snapshot.centre}
            for name, array in arrays.items():
                np.save(tmp / f"{name}.npy", np.ascontiguousarray(array))
            manifest = {"model_version": snapshot.model_version, "generation": snapshot.generation,
                        "kind": snapshot.kind, "size": snapshot.size, "norm_bound": snapshot.norm_bound,
                        **{name: getattr(snapshot, name).tolist() for name in ("max_error", "abs_max")
                           if getattr(snapshot, name) is not None}}
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
            if snapshot.spans is not None:
                save_spans(snapshot.spans, tmp / "spans")
        pointer = {"model_version": snapshot.model_version, "generation": snapshot.generation}
        self._write_pointer(pointer)
        return folder

    def _write_pointer(self, pointer: dict[str, str]) -> None:
        with atomic_file(self.pointer, mode="w", fsync=True) as out:
            json.dump(pointer, out)
        self._pointer_seen = self._pointer_stamp()

    def _pointer_stamp(self) -> tuple[int, int] | None:
        try:
            stat = self.pointer.stat()
        except FileNotFoundError:
            return None
        return stat.st_mtime_ns, stat.st_ino

    def refresh(self, model_version: str) -> None:
        """Swap to a snapshot another process published since the last look (see the class docstring)."""
        now = time.monotonic()
        if now - self._checked_at < POINTER_CHECK_S:
            return
        self._checked_at = now
        stamp = self._pointer_stamp()
        if stamp is None or stamp == self._pointer_seen:
            return
        with self._lock:
            if stamp == self._pointer_seen:
                return
            self._pointer_seen = stamp
        try:
            pointer = json.loads(self.pointer.read_text())
            serving = self._current
            if serving is not None and (pointer.get("model_version"), pointer.get("generation")) == (
                    serving.model_version, serving.generation):
                return
            if pointer.get("model_version") == model_version:
                self.swap(self.load(self.root / pointer["model_version"] / pointer["generation"]))
                log.info("serving index generation %s, published by another process", pointer["generation"])
            self.problem = ""
        except UNREADABLE as error:  # half-pruned, unreadable: keep serving
            self.problem = f"the newest index on disk could not be loaded ({error}); the last good one serves"
            log.warning("%s", self.problem)

    def swap(self, snapshot: Snapshot) -> None:
        with self._lock:
            self._current = snapshot
            self.problem = ""

    def publish(self, snapshot: Snapshot) -> None:
        """Save, then serve the saved files, memory-mapped: the process that built the snapshot then shares its
        pages with every other process serving the folder instead of keeping a copy of its own (about 57 MiB of
        fp16 vectors and Gaussians at 100k tracks). If saving fails, nothing changes."""
        folder = self.save(snapshot)
        try:
            saved = self.load(folder)
        except UNREADABLE as error:  # written but not readable back (a full disk, say): serve the built one
            log.warning("the index just saved could not be read back (%s); serving it from memory", error)
            saved = snapshot
        self.swap(saved)
        self.prune(keep=snapshot)

    def load_current(self, model_version: str) -> Snapshot | None:
        """Serve the snapshot ``current.json`` names, if it belongs to ``model_version``. None where there is none,
        or where it cannot be read (half-written, damaged): the caller builds a fresh one from the database, which
        holds every embedding, so nothing is lost."""
        self._pointer_seen = self._pointer_stamp()
        if self._pointer_seen is None:
            return None
        try:
            pointer = json.loads(self.pointer.read_text())
            if pointer.get("model_version") != model_version:
                return None
            snapshot = self.load(self.root / pointer["model_version"] / pointer["generation"])
        except UNREADABLE as error:
            log.warning("the index on disk could not be loaded (%s); building a new one from the database", error)
            return None
        self.swap(snapshot)
        return snapshot

    @staticmethod
    def load(folder: Path) -> Snapshot:
        """A saved snapshot, memory-mapped: every process serving the same data folder shares one copy of its
        vectors and embeddings in the page cache (snapshots written before that, as ``items.npz``, are read)."""
        manifest = json.loads((folder / "manifest.json").read_text())
        items = _load_items(folder)
        gaussians = Gaussians(items["E"], items["mu"], items["logvar"])
        kind = manifest["kind"]
        codes = None
        if kind == "sq8":
            from app.codes import ScalarCodes  # numba's import only where sq8 is used

            codes = ScalarCodes.load(folder)
        index = None if codes is not None else _read_index(folder / "index.faiss", kind)
        return Snapshot(manifest["model_version"], manifest["generation"], kind, index, items["track_ids"], gaussians,
                        np.asarray(items["centre"]), float(manifest["norm_bound"]),
                        **{name: np.array(manifest[name]) for name in ("max_error", "abs_max") if name in manifest},
                        spans=load_spans(folder / "spans"), codes=codes)

    def prune(self, *, keep: Snapshot) -> None:
        """Remove older generations of the kept snapshot's version (and unfinished builds)."""
        for folder in (self.root / keep.model_version).iterdir():
            if folder.name != keep.generation:
                shutil.rmtree(folder, ignore_errors=True)
