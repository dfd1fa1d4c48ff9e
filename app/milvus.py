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
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pymilvus import DataType, MilvusClient, MilvusException

from app.catalog import MISSING_TRACK, FilterFields, TrackFilters
from app.errors import NotReadyError
from app.index import POINTER_CHECK_S, Hit, exact_scores, ranked_hits
from models.scoring import Gaussians, augment_items, augment_query
from models.spans import SpanTable

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
    spans: None = None  # span search runs on the FAISS backend only

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
        Milvus expressions); the alias still names the serving one. ``spans`` are not kept (span search is the
        FAISS backend's)."""
        del spans
        generation = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
        name = f"{self.alias}_{generation.replace('-', '_')}"
        parts = [np.asarray(part, dtype=np.float64) for part in gaussians]
        d = parts[0].shape[1] if parts[0].ndim == 2 and parts[0].size else 0
        centre = parts[1].mean(axis=0) if track_ids.size else np.zeros(d)
        meta = {"model_version": model_version, "generation": generation, "size": int(track_ids.size),
                "centre": centre.tolist(), "filterable": fields is not None}
        self._create(name, d, meta)
        try:
            self._insert(name, np.asarray(track_ids, dtype=np.int64), Gaussians(*parts), centre, fields)
            _call(self.client.flush, name)
            self._load(name)
            counted = _count(self.client, name)
            if counted != track_ids.size:
                raise MilvusDownError(f"Milvus holds {counted} of the {track_ids.size} tracks written to {name}")
        except Exception:
            self._drop(name)
            raise
        return MilvusSnapshot(model_version, generation, name, int(track_ids.size), centre, self.client,
                              self.timeout_s, fields is not None)

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
            if name.startswith(f"{self.alias}_") and name != keep.collection:
                self._drop(name)

    def _drop(self, name: str) -> None:
        try:
            self.client.drop_collection(name)
        except MilvusException as error:
            log.warning("could not drop Milvus collection %s: %s", name, error)

    def _aliased(self) -> str | None:
        """The collection the alias names, or None if there is no alias yet."""
        if self.alias not in _call(self.client.list_aliases).get("aliases", []):
            return None
        return _call(self.client.describe_alias, self.alias)["collection_name"]

    def open(self, name: str) -> MilvusSnapshot:
        """The published collection ``name``, loaded for search."""
        properties = _call(self.client.describe_collection, name).get("properties", {})
        meta = json.loads(properties[META])
        self._load(name)
        return MilvusSnapshot(meta["model_version"], meta["generation"], name, int(meta["size"]),
                              np.asarray(meta["centre"], dtype=np.float64), self.client, self.timeout_s,
                              bool(meta.get("filterable", False)))

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
