"""The Milvus index backend: the catalogue's augmented item vectors in a Milvus collection, searched under the
inner-product metric, for catalogues past one machine.

The same code talks to milvus-lite (a file path: Milvus embedded in this one process, for tests and a single
machine) and to a Milvus standalone or cluster deployment (an ``http://host:19530`` URI), where every server
process of every machine shares one collection.

A generation is one collection named ``<alias>_<generation>``; the alias (``Settings.milvus_alias``) names the one
that serves. A reindex builds, flushes, counts and loads a new collection, then moves the alias to it in one call
(an alias switch is atomic: a search through the alias reads the old collection or the new one, never a mix); the
old collection serves until then and is dropped after. A serving process looks at the alias at most every
``POINTER_CHECK_S`` and swaps to the collection it names, as ``IndexStore`` does with its pointer file.

A row is a track: its id (primary key), its augmented vector (``augment_items``, float32, FLAT index: an exact
scan) and its Gaussian ``[E, mu, logvar]`` (float32), with which the head of every result list is rescored in
float64 as the FAISS snapshots do. The collection's properties hold the model version, the generation and the
catalogue's centre of mu, which the query's augmentation needs.

Span search (``MilvusSpans``, below): the spans of a generation in a collection of their own, searched exactly.

The collection ``<generation's collection>_spans`` holds one row per span: its row number (the primary key; rows
are grouped by track, in time order within one, as ``catalog.spans_for_version`` gives them), its track, its place
in the track and the track's span count, start and end, its augmented vector (``augment_items`` with the spans'
own centre, float32, FLAT index under the inner-product metric) and its Gaussian ``[E, mu, logvar]`` (float32).

A query of ``n`` pieces (``models.spans``) asks Milvus for each piece's ``limit`` best spans (``first_limit``). A
span Milvus did not return for piece ``j`` scores at most the lowest one it did return (``floor_j``), so a run
starting at a track's span ``c`` scores at most the mean over ``j`` of what Milvus returned for span ``c + j`` and
piece ``j`` (or ``floor_j``), plus the float32 slack (``app.spans``); a track's bound is its best run start's.
Tracks are read back by primary key (a track's spans are consecutive rows) and rescored exactly in the order of
that bound (``SpanTable.best_runs``, float64, the scores the FAISS backend gives); once the ``k``-th exact score
reaches the bound of every track not yet rescored (and of the tracks Milvus returned nothing for), the answer is the
exact top ``k``. Otherwise Milvus is asked for more spans (or a few more tracks are read first); past its largest
limit every passing span is read.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pymilvus import DataType, MilvusClient, MilvusException

from app.catalog import MISSING_TRACK, FilterFields, TrackFilters
from app.errors import NotReadyError
from app.index import POINTER_CHECK_S, Hit, exact_scores, ranked_hits
from app.spans import FIRST_TRACKS, FLOAT32_SLACK, TRACK_GROWTH, build_spans
from models.scoring import Gaussians, augment_items, augment_query
from models.spans import SpanHit, SpanTable

log = logging.getLogger(__name__)

META = "moodspace.meta"  # the collection property holding model version, generation and centre
INSERT_BATCH = 10_000  # rows per insert call (well under Milvus's message size)
MAX_TOP_K = 16_384  # Milvus's largest limit per search


class MilvusDownError(NotReadyError):
    """Milvus cannot be reached or refused a call: the service answers 503 and keeps its last good collection."""


@dataclass(frozen=True)
class MilvusSnapshot:
    """One generation of the catalogue in a Milvus collection; searched like ``app.index.Snapshot``."""

    model_version: str
    generation: str
    collection: str
    size: int
    centre: np.ndarray  # (d,) float64
    client: Any  # MilvusClient
    timeout_s: float = 10.0  # longest wait for one search
    filterable: bool = False  # the collection stores each track's filter fields
    kind: str = "milvus"
    spans: MilvusSpans | None = None  # the generation's spans (None: built before span search, or no spans given)

    def rows_of(self, track_ids: np.ndarray) -> np.ndarray:
        """The rows of a Milvus collection are named by track id: a filter keeps the given ids."""
        return np.unique(np.asarray(track_ids, dtype=np.int64))

    def select(self, filters: TrackFilters, passing: Callable[[], np.ndarray]) -> str | np.ndarray:
        """Milvus's own filter expression over the stored fields (evaluated during the scan, no id list); the
        database's ids where the collection has no fields."""
        return filter_expression(filters) if self.filterable else self.rows_of(passing())

    def holds(self, track_id: int) -> bool:
        return bool(_call(self.client.get, self.collection, ids=[int(track_id)], output_fields=["track_id"]))

    def search(self, query: Gaussians, *, lam: float, k: int, rescore_head: int, ef_search: int = 128,
               allowed: str | np.ndarray | None = None) -> list[Hit]:
        """Top ``k`` tracks for one query by the exact composite score (the head rescored in float64); with
        ``allowed`` (``select``: an expression, or track ids), among those tracks only (Milvus filters during the
        scan)."""
        del ef_search  # FLAT scans every row
        if isinstance(allowed, np.ndarray) and allowed.size == 0:
            return []
        return self.search_many(query, lams=[lam], ks=[k], rescore_head=rescore_head, allowed=allowed)[0]

    def search_many(self, queries: Gaussians, *, lams: Sequence[float], ks: Sequence[int], rescore_head: int,
                    ef_search: int = 128, allowed: str | np.ndarray | None = None) -> list[list[Hit]]:
        """Several queries ((n, d) arrays, a lam and a k each) in one Milvus call."""
        del ef_search
        if self.size == 0:
            return [[] for _ in ks]
        n = queries.E.shape[0]
        one = [Gaussians(*(part[i : i + 1] for part in queries)) for i in range(n)]
        q = np.vstack([augment_query(query, lam=lam, centre=self.centre)[0] for query, lam in zip(one, lams,
                                                                                                  strict=True)])
        head = min(self.size, MAX_TOP_K, max(max(ks), rescore_head))
        found = _call(self.client.search, self.collection, data=q.astype(np.float32).tolist(), anns_field="vector",
                      limit=head, search_params={"metric_type": "IP"}, output_fields=["gaussian"],
                      filter=_where(allowed),
                      consistency_level="Eventually", timeout=self.timeout_s)  # a published collection never changes
        return [self._hits(hits, query, lam, k) for hits, query, lam, k in zip(found, one, lams, ks, strict=True)]

    def _hits(self, hits: Any, query: Gaussians, lam: float, k: int) -> list[Hit]:
        if not len(hits):
            return []
        ids = np.array([hit["track_id"] for hit in hits], dtype=np.int64)
        parts = np.array([hit["entity"]["gaussian"] for hit in hits], dtype=np.float64)
        d = query.E.shape[1]
        items = Gaussians(parts[:, :d], parts[:, d : 2 * d], parts[:, 2 * d :])
        return ranked_hits(ids, exact_scores(query, items, lam=lam, centre=self.centre), k)


def _where(allowed: str | np.ndarray | None) -> str:
    if allowed is None:
        return ""
    return allowed if isinstance(allowed, str) else f"track_id in {allowed.tolist()}"


def _text(value: str | Sequence[str]) -> str:
    """A string or list literal of a Milvus expression (JSON's quoting and escapes are Milvus's)."""
    return json.dumps(value, ensure_ascii=False)


def filter_expression(filters: TrackFilters) -> str:
    """``filters`` as a Milvus boolean expression over the stored fields, with the database's meaning: ranges are
    inclusive, text compares case-insensitively (stored lower-cased), a track without a tempo, key, mode or year
    (stored as -1 or "") passes no condition on it, and tags must all be there. Always true without conditions."""
    f, terms = filters, []
    for name, low, high in (("tempo_bpm", f.tempo_min, f.tempo_max), ("duration_s", f.duration_min,
                            f.duration_max), ("year", f.year_min, f.year_max)):
        if low is not None or high is not None:
            terms.append(f"{name} >= 0")
        if low is not None:
            terms.append(f"{name} >= {low!r}")
        if high is not None:
            terms.append(f"{name} <= {high!r}")
    for name, value in (("key", f.key), ("mode", f.mode)):
        if value is not None:
            terms.append(f"{name} == {_text(value)}")
    if f.genre:
        terms.append(f"genre == {_text(f.genre.lower())}")
    if f.artists:
        terms.append(f"artist in {_text([a.lower() for a in f.artists])}")
    if f.exclude_artists:
        terms.append(f"artist not in {_text([a.lower() for a in f.exclude_artists])}")
    if f.tags:
        terms.append(f"array_contains_all(tags, {_text(sorted({t.lower() for t in f.tags}))})")
    return " and ".join(terms) or "track_id >= 0"


def _call(method: Any, *args: Any, **kwargs: Any) -> Any:
    """A Milvus call whose failure (down, slow, refused) is a 503 naming Milvus, not a 500."""
    try:
        return method(*args, **kwargs)
    except MilvusException as error:
        raise MilvusDownError(f"the Milvus index cannot answer: {error}") from error


MAX_TAGS, MAX_TAG_CHARS = 64, 128  # a track's tags past these are not stored (no filter can ask for them)


def _stored(fields: FilterFields) -> dict[str, Any]:
    """A track's filter fields as stored: text lower-cased (key and mode as they are), missing numbers -1."""
    return {"tempo_bpm": -1.0 if fields.tempo_bpm is None else float(fields.tempo_bpm),
            "duration_s": float(fields.duration_s or 0.0), "year": -1 if fields.year is None else int(fields.year),
            "key": fields.key or "", "mode": fields.mode or "", "genre": fields.genre.lower()[:512],
            "artist": fields.artist.lower()[:1024],
            "tags": [t.lower()[:MAX_TAG_CHARS] for t in fields.tags][:MAX_TAGS]}


class MilvusStore:
    """Generations of the catalogue as Milvus collections behind one alias; the interface of ``IndexStore``."""

    def __init__(self, uri: str, *, alias: str = "moodspace", token: str = "", timeout_s: float = 10.0,
                 replicas: int = 1) -> None:
        self.uri, self.alias, self.timeout_s, self.replicas = uri, alias, timeout_s, replicas
        try:
            self.client = MilvusClient(uri, token=token, timeout=timeout_s)
        except MilvusException as error:
            raise MilvusDownError(_cannot_open(uri, error)) from error
        self._current: MilvusSnapshot | None = None
        self._lock = threading.Lock()
        self._checked_at = 0.0
        self.problem = ""

    @property
    def current(self) -> MilvusSnapshot | None:
        return self._current

    wants_fields = True  # filters become Milvus expressions over the stored fields

    def build(self, *, model_version: str, track_ids: np.ndarray, gaussians: Gaussians,
              fields: Sequence[FilterFields] | None = None, spans: SpanTable | None = None) -> MilvusSnapshot:
        """A new, loaded collection of the given embeddings (and filter fields, one per track: then filters are
        Milvus expressions; and ``spans``: a span collection beside it); the alias still names the serving one."""
        generation = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
        name = f"{self.alias}_{generation.replace('-', '_')}"
        parts = [np.asarray(part, dtype=np.float64) for part in gaussians]
        d = parts[0].shape[1] if parts[0].ndim == 2 and parts[0].size else 0
        centre = parts[1].mean(axis=0) if track_ids.size else np.zeros(d)
        try:
            span_meta = None if spans is None else write_spans(self.client, name + SUFFIX, spans,
                                                               timeout_s=self.timeout_s)
            meta = {"model_version": model_version, "generation": generation, "size": int(track_ids.size),
                    "centre": centre.tolist(), "filterable": fields is not None, "spans": span_meta}
            self._create(name, d, meta)
            self._insert(name, np.asarray(track_ids, dtype=np.int64), Gaussians(*parts), centre, fields)
            _call(self.client.flush, name)
            self._load(name)
            counted = _count(self.client, name)
            if counted != track_ids.size:
                raise MilvusDownError(f"Milvus holds {counted} of the {track_ids.size} tracks written to {name}")
        except Exception:
            self._drop(name)
            self._drop(name + SUFFIX)
            raise
        return self._snapshot(name, meta)

    def _snapshot(self, name: str, meta: dict[str, Any]) -> MilvusSnapshot:
        spans = meta.get("spans")
        return MilvusSnapshot(meta["model_version"], meta["generation"], name, int(meta["size"]),
                              np.asarray(meta["centre"], dtype=np.float64), self.client, self.timeout_s,
                              bool(meta.get("filterable", False)),
                              spans=None if spans is None else open_spans(self.client, spans,
                                                                          timeout_s=self.timeout_s))

    def _create(self, name: str, d: int, meta: dict[str, Any]) -> None:
        d = max(d, 1)  # an empty catalogue's collection: Milvus needs a dimension; nothing is searched in it
        schema = MilvusClient.create_schema(auto_id=False)
        schema.add_field("track_id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=3 * d + 1)
        schema.add_field("gaussian", DataType.FLOAT_VECTOR, dim=3 * d)
        for name_, type_ in (("tempo_bpm", DataType.DOUBLE), ("duration_s", DataType.DOUBLE),
                             ("year", DataType.INT64)):
            schema.add_field(name_, type_)
        for name_, length in (("key", 8), ("mode", 8), ("genre", 512), ("artist", 1024)):
            schema.add_field(name_, DataType.VARCHAR, max_length=length)
        schema.add_field("tags", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=MAX_TAGS,
                         max_length=MAX_TAG_CHARS)
        indexes = self.client.prepare_index_params()
        indexes.add_index("vector", index_type="FLAT", metric_type="IP")
        indexes.add_index("gaussian", index_type="FLAT", metric_type="L2")  # Milvus loads only indexed vectors
        _call(self.client.create_collection, name, schema=schema, index_params=indexes, consistency_level="Strong",
              properties={META: json.dumps(meta)})

    def _insert(self, name: str, track_ids: np.ndarray, gaussians: Gaussians, centre: np.ndarray,
                fields: Sequence[FilterFields] | None) -> None:
        for start in range(0, track_ids.size, INSERT_BATCH):
            chunk = slice(start, start + INSERT_BATCH)
            part = Gaussians(*(p[chunk] for p in gaussians))
            vectors = augment_items(part, centre=centre).astype(np.float32)
            stacked = np.hstack(list(part)).astype(np.float32)
            shown = fields[chunk] if fields is not None else [MISSING_TRACK] * len(vectors)
            rows = [{"track_id": int(i), "vector": v, "gaussian": g, **_stored(f)}
                    for i, v, g, f in zip(track_ids[chunk], vectors, stacked, shown, strict=True)]
            _call(self.client.insert, name, rows)

    def _load(self, name: str) -> None:
        """Load a collection for search; on a cluster, ``replicas`` copies on different query nodes (more
        throughput, and a node that fails leaves the others answering)."""
        if self.replicas > 1:
            _call(self.client.load_collection, name, replica_number=self.replicas)
        else:
            _call(self.client.load_collection, name)

    def publish(self, snapshot: MilvusSnapshot) -> None:
        """Move the alias to the snapshot's collection (atomic), serve it, drop the collections it replaced."""
        aliased = self._aliased()
        if aliased is None:
            _call(self.client.create_alias, snapshot.collection, self.alias)
        else:
            _call(self.client.alter_alias, snapshot.collection, self.alias)
        self.swap(snapshot)
        self.prune(keep=snapshot)

    def swap(self, snapshot: MilvusSnapshot) -> None:
        with self._lock:
            self._current = snapshot
            self.problem = ""

    def prune(self, *, keep: MilvusSnapshot) -> None:
        """Drop this alias's other generations (replaced ones, and builds that never got published)."""
        for name in _call(self.client.list_collections):
            if name.startswith(f"{self.alias}_") and name not in (keep.collection, keep.collection + SUFFIX):
                self._drop(name)

    def _drop(self, name: str) -> None:
        try:
            if self.client.has_collection(name):
                self.client.drop_collection(name)
        except MilvusException as error:
            log.warning("could not drop Milvus collection %s: %s", name, error)

    def _aliased(self) -> str | None:
        """The collection the alias names, or None if there is no alias yet."""
        if self.alias not in _call(self.client.list_aliases).get("aliases", []):
            return None
        return _call(self.client.describe_alias, self.alias)["collection_name"]

    def open(self, name: str) -> MilvusSnapshot:
        """The published collection ``name`` (and its spans), loaded for search."""
        properties = _call(self.client.describe_collection, name).get("properties", {})
        meta = json.loads(properties[META])
        self._load(name)
        return self._snapshot(name, meta)

    def load_current(self, model_version: str) -> MilvusSnapshot | None:
        """Serve the collection the alias names, if it belongs to ``model_version``."""
        name = self._aliased()
        if name is None:
            return None
        snapshot = self.open(name)
        if snapshot.model_version != model_version:
            return None
        self.swap(snapshot)
        return snapshot

    def refresh(self, model_version: str) -> None:
        """Swap to the collection the alias names if another process moved it (at most every
        ``POINTER_CHECK_S``). While Milvus cannot answer, the last good collection stays and ``problem`` says why."""
        now = time.monotonic()
        if now - self._checked_at < POINTER_CHECK_S:
            return
        self._checked_at = now
        try:
            name = self._aliased()
            serving = self._current
            if name is None or (serving is not None and serving.collection == name):
                self.problem = ""
                return
            snapshot = self.open(name)
            if snapshot.model_version == model_version:
                self.swap(snapshot)
                log.info("serving Milvus collection %s, published by another process", name)
            self.problem = ""
        except (MilvusException, NotReadyError, KeyError, ValueError) as error:
            self.problem = f"the Milvus index could not be read ({error}); the last good collection serves"
            log.warning("%s", self.problem)

    def close(self) -> None:
        self.client.close()


def _cannot_open(uri: str, error: MilvusException) -> str:
    if uri.startswith(("http://", "https://", "tcp://", "unix:")):
        return f"cannot connect to Milvus at {uri}: {error}"
    return (f"cannot open the milvus-lite file {uri}: {error}. milvus-lite serves one process at a time: stop the "
            "service before a command-line ingest or reindex (or reindex through /v1/admin), and use a Milvus server "
            "(MOODSPACE_MILVUS_URI=http://host:19530) for several server processes")


def _count(client: Any, name: str) -> int:
    answer = _call(client.query, name, output_fields=["count(*)"], consistency_level="Strong")
    return int(answer[0]["count(*)"])


SUFFIX = "_spans"  # the span collection's name: the generation's collection's name and this
FIRST_SPANS = 64  # spans asked of Milvus per piece first, per track asked for (a run of one span)
SPAN_GROWTH = 4
MOST_TRACKS_READ = 16  # tracks read back per track asked for before Milvus is asked for more spans instead
FETCH_BATCH = 4_096  # rows per call when reading spans back


@dataclass(frozen=True)
class MilvusSpans:
    """One generation's spans in Milvus; searched like ``app.spans.SpanIndex`` (module docstring)."""

    collection: str
    size: int
    centre: np.ndarray  # (d,) float64: the spans' mean mu
    abs_max: np.ndarray  # (3d + 1,) largest |stored value| per dimension of the augmented vectors
    longest: float  # the longest stretch of one track's spans, in seconds
    most: int  # the most spans one track has
    client: Any  # MilvusClient
    timeout_s: float = 10.0

    def rows_of(self, track_ids: np.ndarray) -> np.ndarray:
        """A filter on spans names their tracks: the given ids."""
        return np.unique(np.asarray(track_ids, dtype=np.int64))

    def longest_s(self, allowed: np.ndarray | None = None) -> float:
        """The longest stretch of spans of one track, in seconds (among the ``allowed`` tracks)."""
        if allowed is None:
            return self.longest
        return self._table(allowed).longest_s() if allowed.size else 0.0

    def search(self, pieces: Gaussians, *, lam: float, k: int, allowed: np.ndarray | None = None,
               exclude: Collection[int] = ()) -> list[SpanHit]:
        """The exact top ``k`` tracks by their best run for ``pieces`` ((n, d) arrays), skipping ``exclude``; with
        ``allowed`` (``rows_of``: track ids), among those tracks only."""
        if k <= 0 or pieces.E.shape[0] > self.most or (allowed is not None and allowed.size == 0):
            return []  # (no track has a run that long)
        where = _span_where(allowed, exclude)
        limit = min(self.size, MAX_TOP_K, first_limit(k + len(exclude), pieces=pieces.E.shape[0]))
        fetched: dict[int, list[dict[str, Any]]] = {}  # the span rows of each track rescored so far
        while True:
            bounds, rest = self._bounds(pieces, lam=lam, limit=limit, where=where)
            last = limit >= min(self.size, MAX_TOP_K)
            found = self._rescore(pieces, lam=lam, k=k, bounds=bounds, rest=rest, fetched=fetched, last=last)
            if found is not None:
                return found
            if last:
                return self._every_run(pieces, lam=lam, k=k, where=where)
            limit = min(self.size, MAX_TOP_K, limit * SPAN_GROWTH)

    def _bounds(self, pieces: Gaussians, *, lam: float, limit: int, where: str
                ) -> tuple[dict[int, tuple[float, range]], float]:
        """Each track Milvus returned a span of: the most its runs can score, and its rows; the most a run of any
        other track can score. A run's piece ``j`` scores what Milvus returned for that span, or at most
        ``floor_j``."""
        q, offsets = augment_query(pieces, lam=lam, centre=self.centre)
        n = q.shape[0]
        slack = float(np.max(np.abs(q) @ (FLOAT32_SLACK * self.abs_max))) + 1e-9
        found = _call(self.client.search, self.collection, data=q.astype(np.float32).tolist(), anns_field="vector",
                      limit=limit, search_params={"metric_type": "IP"}, filter=where,
                      output_fields=["track_id", "pos", "count"], consistency_level="Eventually",
                      timeout=self.timeout_s)
        floors = np.array([hits[-1]["distance"] if len(hits) == limit else -np.inf for hits in found])
        returned: dict[int, dict[int, np.ndarray]] = {}  # track -> span position -> score per piece
        rows: dict[int, range] = {}
        for j, hits in enumerate(found):
            for hit in hits:
                entity = hit["entity"]
                track, pos, count = int(entity["track_id"]), int(entity["pos"]), int(entity["count"])
                returned.setdefault(track, {}).setdefault(pos, floors.copy())[j] = float(hit["distance"])
                rows[track] = range(int(hit["row"]) - pos, int(hit["row"]) - pos + count)
        shift = float(np.mean(offsets)) + slack
        bounds = {}
        for track, scores in returned.items():
            best = _best_run_bound(scores, floors, count=len(rows[track]), n=n)
            if best > -np.inf:
                bounds[track] = (best + shift, rows[track])
        return bounds, float(floors.mean()) + shift

    def _rescore(self, pieces: Gaussians, *, lam: float, k: int, bounds: dict[int, tuple[float, range]],
                 rest: float, fetched: dict[int, list[dict[str, Any]]], last: bool) -> list[SpanHit] | None:
        """The exact top ``k`` among the bounded tracks, rescoring them best bound first until no track left can
        beat the ``k``-th; None when the tracks Milvus returned nothing for might (ask for more spans). Unless this
        is the ``last`` limit, a ``k``-th score below their bound, or ``MOST_TRACKS_READ`` tracks per track asked
        for read back, asks for more spans instead: a wider search tightens every bound at once."""
        order = sorted(bounds, key=lambda t: -bounds[t][0])
        m = FIRST_TRACKS * k
        while True:
            self._read_tracks([t for t in order[:m] if t not in fetched], bounds, into=fetched)
            chosen = np.sort(np.array(order[:m], dtype=np.int64))
            table = _span_table([row for t in chosen for row in fetched[t]])
            best = table.best_runs(pieces, chosen, lam=lam)
            beyond = max([bounds[t][0] for t in order[m : m + 1]] + [rest])
            if len(best) >= k and best[k - 1].score >= beyond:
                return best[:k]
            if not last and ((len(best) >= k and best[k - 1].score < rest) or m >= MOST_TRACKS_READ * k):
                return None
            if m >= len(order):
                return best[:k] if rest == -np.inf else None
            m *= TRACK_GROWTH

    def _every_run(self, pieces: Gaussians, *, lam: float, k: int, where: str) -> list[SpanHit]:
        """Every passing span read back and every run scored (past Milvus's largest limit)."""
        table = self._fetch(where)
        return table.best_runs(pieces, np.unique(table.track_ids), lam=lam)[:k]

    def _table(self, track_ids: np.ndarray) -> SpanTable:
        """Every span of the given tracks."""
        return self._fetch(f"track_id in {np.asarray(track_ids, dtype=np.int64).tolist()}")

    def _read_tracks(self, tracks: list[int], bounds: dict[int, tuple[float, range]], *,
                     into: dict[int, list[dict[str, Any]]]) -> None:
        """Read the spans of ``tracks`` by primary key (a track's spans are a run of consecutive rows)."""
        ids = [r for t in tracks for r in bounds[t][1]]
        for row in _call(self.client.get, self.collection, ids=ids, output_fields=SPAN_FIELDS,
                         timeout=self.timeout_s) if ids else []:
            into.setdefault(int(row["track_id"]), []).append(row)

    def _fetch(self, where: str) -> SpanTable:
        """The spans ``where`` keeps: one query, or an iterator where they are more than one query returns."""
        fields = SPAN_FIELDS
        rows = list(_call(self.client.query, self.collection, filter=where, output_fields=fields, limit=MAX_TOP_K,
                          consistency_level="Eventually", timeout=self.timeout_s))
        if len(rows) == MAX_TOP_K:
            rows = []
            iterator = _call(self.client.query_iterator, self.collection, batch_size=FETCH_BATCH, filter=where,
                             output_fields=fields, timeout=self.timeout_s)
            try:
                while batch := _call(iterator.next):
                    rows.extend(batch)
            finally:
                iterator.close()
        return _span_table(rows)


SPAN_FIELDS = ["row", "track_id", "start_s", "end_s", "gaussian"]


def _span_table(rows: list[dict[str, Any]]) -> SpanTable:
    """Span rows read back, in row order (grouped by track, in time order), as a table."""
    rows.sort(key=lambda r: r["row"])
    parts = np.array([r["gaussian"] for r in rows], dtype=np.float32).reshape(len(rows), -1) if rows else \
        np.zeros((0, 3), dtype=np.float32)
    d = parts.shape[1] // 3
    return SpanTable(np.array([r["track_id"] for r in rows], dtype=np.int64),
                     np.array([r["start_s"] for r in rows], dtype=np.float64),
                     np.array([r["end_s"] for r in rows], dtype=np.float64),
                     Gaussians(parts[:, :d], parts[:, d : 2 * d], parts[:, 2 * d :]))


def _best_run_bound(scores: dict[int, np.ndarray], floors: np.ndarray, *, count: int, n: int) -> float:
    """The most a run of ``n`` of a track's ``count`` spans can score (before offsets): span ``p`` scores
    ``scores[p][j]`` for piece ``j`` where Milvus returned it, else at most ``floors[j]``; -inf: no run."""
    starts = {p - j for p in scores for j in range(n)} | {0}
    best = -np.inf
    for c in starts:
        if 0 <= c <= count - n:
            best = max(best, float(np.mean([scores.get(c + j, floors)[j] for j in range(n)])))
    return best


def first_limit(tracks: int, *, pieces: int) -> int:
    """The spans per piece asked of Milvus first: a run's bound is tight only where Milvus returned the spans of
    each of its pieces, so ``SPAN_GROWTH`` times more per piece past the first (a 10k-track catalogue's 3-piece
    curves settled at 10,240-16,384 spans per piece, its points at 640)."""
    return FIRST_SPANS * tracks * SPAN_GROWTH ** (pieces - 1)


def _span_where(allowed: np.ndarray | None, exclude: Collection[int]) -> str:
    terms = [] if allowed is None else [f"track_id in {np.asarray(allowed, dtype=np.int64).tolist()}"]
    if exclude:
        terms.append(f"track_id not in {sorted(int(t) for t in exclude)}")
    return " and ".join(terms)


def write_spans(client: Any, name: str, table: SpanTable, *, timeout_s: float) -> dict[str, Any]:
    """Create, fill and load ``name`` with a table's spans; what ``open_spans`` needs to search it."""
    index = build_spans(table)
    d = index.gaussians.E.shape[1] if index.gaussians.E.ndim == 2 and index.size else 1
    _create_span_collection(client, name, d)
    gaussians = np.hstack(list(index.gaussians)).astype(np.float32) if index.size else np.zeros((0, 3 * d))
    first = np.searchsorted(index.track_ids, index.track_ids, side="left")
    count = np.searchsorted(index.track_ids, index.track_ids, side="right") - first
    for start in range(0, index.size, INSERT_BATCH):
        rows = range(start, min(index.size, start + INSERT_BATCH))
        _call(client.insert, name, [{"row": r, "track_id": int(index.track_ids[r]), "pos": int(r - first[r]),
                                     "count": int(count[r]), "start_s": float(index.starts[r]),
                                     "end_s": float(index.ends[r]), "vector": index.vectors[r],
                                     "gaussian": gaussians[r]} for r in rows], timeout=timeout_s)
    _call(client.flush, name)
    _call(client.load_collection, name)
    if (counted := _count(client, name)) != index.size:
        raise MilvusDownError(f"Milvus holds {counted} of the {index.size} spans written to {name}")
    return {"collection": name, "size": index.size, "centre": index.centre.tolist(),
            "abs_max": index.abs_max.tolist(), "longest": index.longest_s(), "most": int(count.max(initial=0))}


def _create_span_collection(client: Any, name: str, d: int) -> None:
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("row", DataType.INT64, is_primary=True)
    schema.add_field("track_id", DataType.INT64)
    schema.add_field("pos", DataType.INT64)  # the span's place in its track (0: the first)
    schema.add_field("count", DataType.INT64)  # the track's spans
    schema.add_field("start_s", DataType.DOUBLE)
    schema.add_field("end_s", DataType.DOUBLE)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=3 * d + 1)
    schema.add_field("gaussian", DataType.FLOAT_VECTOR, dim=3 * d)
    indexes = client.prepare_index_params()
    indexes.add_index("vector", index_type="FLAT", metric_type="IP")
    indexes.add_index("gaussian", index_type="FLAT", metric_type="L2")  # Milvus loads only indexed vectors
    _call(client.create_collection, name, schema=schema, index_params=indexes, consistency_level="Strong")


def open_spans(client: Any, meta: dict[str, Any], *, timeout_s: float) -> MilvusSpans:
    """The span collection ``write_spans`` described in ``meta``, loaded for search."""
    _call(client.load_collection, meta["collection"])
    return MilvusSpans(meta["collection"], int(meta["size"]), np.asarray(meta["centre"], dtype=np.float64),
                       np.asarray(meta["abs_max"], dtype=np.float64), float(meta["longest"]), int(meta["most"]), client,
                       timeout_s)
