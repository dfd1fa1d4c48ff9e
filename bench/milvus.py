"""The Milvus backend beside FAISS on the same vectors: build time, query latency, recall, memory.

    python bench/milvus.py [--bundle default|PATH] [--sizes 100000,1000000] [--queries 50] [--json OUT]

Per catalogue size N, in one run: the service's FAISS exact index (IndexFlatIP over augmented vectors, one thread)
and a Milvus collection through ``app.milvus.MilvusStore`` (milvus-lite, embedded: a FLAT index under the IP metric;
the same code serves a Milvus standalone or cluster). Both rescore their top 256 in float64. Reported: build (FAISS:
index; Milvus: create, insert with the filter fields, flush, index, load, count), one query at a time (p50, p99), a
batch of 8 queries in one call, a 10% filter (a list of ids; on Milvus also as an expression over the stored
fields), recall@10 of Milvus against FAISS exact at lam 0.5, 0.9 and 0.98, how much the resident memory grew with
the Milvus collection loaded (milvus-lite runs in this process), and its size on disk.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])  # as in bench/query.py: bench/http.py must not shadow http

import argparse
import json
import os
import shutil
import tempfile
import time

import faiss
import numpy as np

from app.catalog import FilterFields, TrackFilters
from app.index import build_snapshot
from app.milvus import MilvusStore
from bench.common import embedder, machine, real_embeddings, synthetic_catalogue
from models.scoring import Gaussians

K, HEAD, BATCH = 10, 256, 8
LAMS = (0.5, 0.9, 0.98)


def _row(g: Gaussians, i: int) -> Gaussians:
    return Gaussians(*(p[i : i + 1] for p in g))


def _latency(search, queries: Gaussians, n: int) -> dict[str, float]:
    times = []
    for i in range(n):
        start = time.perf_counter()
        search(_row(queries, i))
        times.append(1000 * (time.perf_counter() - start))
    return {"ms_p50": float(np.percentile(times, 50)), "ms_p99": float(np.percentile(times, 99)),
            "ms_mean": float(np.mean(times))}


def _rss_mib() -> float:
    """Resident memory of this process (milvus-lite runs inside it)."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def bench_size(items: Gaussians, queries: Gaussians, *, lam: float, folder: Path) -> dict:
    n = items.E.shape[0]
    ids = np.arange(n, dtype=np.int64)
    count = queries.E.shape[0]
    start = time.perf_counter()
    flat = build_snapshot(model_version="bench", track_ids=ids, gaussians=items)
    faiss_build = time.perf_counter() - start
    before = _rss_mib()
    store = MilvusStore(str(folder / "milvus.db"), alias="bench", timeout_s=600)
    fields = [FilterFields(120.0, 180.0, "C", "major", f"genre {i % 10}", 2000, f"artist {i}", []) for i in ids]
    start = time.perf_counter()
    milvus = store.build(model_version="bench", track_ids=ids, gaussians=items, fields=fields)
    store.publish(milvus)
    milvus_build = time.perf_counter() - start
    result: dict = {"n": n, "build_s": {"faiss": faiss_build, "milvus": milvus_build}}
    for name, snapshot in (("faiss", flat), ("milvus", milvus)):
        snapshot.search(_row(queries, 0), lam=lam, k=K, rescore_head=HEAD)  # warm
        result[name] = _latency(lambda q, s=snapshot: s.search(q, lam=lam, k=K, rescore_head=HEAD), queries, count)
        batch = Gaussians(*(p[:BATCH] for p in queries))
        start = time.perf_counter()
        snapshot.search_many(batch, lams=[lam] * BATCH, ks=[K] * BATCH, rescore_head=HEAD)
        result[name]["batch_of_8_ms"] = 1000 * (time.perf_counter() - start)
        allowed_ids = np.random.default_rng(2).choice(ids, size=n // 10, replace=False)
        rows = snapshot.rows_of(allowed_ids)
        result[name]["filter_10pct"] = _latency(
            lambda q, s=snapshot, r=rows: s.search(q, lam=lam, k=K, rescore_head=HEAD, allowed=r), queries,
            min(count, 10))
    genre = TrackFilters(genre="genre 3")  # one track in ten, as a Milvus expression over the stored fields
    expression = milvus.select(genre, lambda: ids[ids % 10 == 3])
    result["milvus"]["filter_10pct_expression"] = _latency(
        lambda q: milvus.search(q, lam=lam, k=K, rescore_head=HEAD, allowed=expression), queries, min(count, 10))
    result["recall@10"] = {}
    for other in LAMS:
        hits = []
        for i in range(count):
            truth = {h.track_id for h in flat.search(_row(queries, i), lam=other, k=K, rescore_head=HEAD)}
            found = {h.track_id for h in milvus.search(_row(queries, i), lam=other, k=K, rescore_head=HEAD)}
            hits.append(len(truth & found) / K)
        result["recall@10"][str(other)] = float(np.mean(hits))
    result["milvus_rss_mib"] = _rss_mib() - before
    result["milvus_disk_mib"] = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20
    result["faiss_bytes_per_scan_mib"] = n * flat.faiss_index.d * 4 / 2**20
    store.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", default="default")
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.queries < BATCH:
        parser.error(f"--queries must be at least {BATCH}: one batched call holds {BATCH} queries")
    faiss.omp_set_num_threads(1)
    model = embedder(args.bundle)
    base = real_embeddings(model, corpus=None, n=40)
    queries = model.embed_points(np.random.default_rng(1).uniform(-1, 1, size=(args.queries, 2)))
    lam = model.config.score_lam
    sizes: dict[str, dict] = {}
    results = {"machine": machine(), "lam": lam, "bundle": model.version, "sizes": sizes}
    print(machine())
    for n in (int(s) for s in args.sizes.split(",")):
        folder = Path(tempfile.mkdtemp(prefix="bench-milvus-"))
        try:
            r = bench_size(synthetic_catalogue(base, n), queries, lam=lam, folder=folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        sizes[str(n)] = r
        print(f"N {n:,}: build FAISS {r['build_s']['faiss']:.2f} s, Milvus {r['build_s']['milvus']:.1f} s; "
              f"Milvus +{r['milvus_rss_mib']:.0f} MiB resident, {r['milvus_disk_mib']:.0f} MiB on disk; "
              f"recall@10 of Milvus vs FAISS exact: "
              + ", ".join(f"lam {k}: {v:.3f}" for k, v in r["recall@10"].items()))
        for name in ("faiss", "milvus"):
            m = r[name]
            print(f"  {name:<7} one query p50 {m['ms_p50']:8.2f} ms, p99 {m['ms_p99']:8.2f} ms; batch of 8 "
                  f"{m['batch_of_8_ms']:8.2f} ms; 10% filter p50 {m['filter_10pct']['ms_p50']:8.2f} ms")
        print(f"  milvus  10% filter as an expression p50 {r['milvus']['filter_10pct_expression']['ms_p50']:8.2f} ms")
        print(f"  Milvus / FAISS one query p50: {r['milvus']['ms_p50'] / r['faiss']['ms_p50']:.1f}x")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
