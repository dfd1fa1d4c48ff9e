"""Query speed: exact composite search through the index against the alternatives, at catalogue sizes N.

    python bench/query.py [--bundle default|PATH] [--corpus MANIFEST] [--sizes 10000,100000,1000000]
                          [--quick] [--json OUT]

Per query (one at a time, one thread for the scans), top-10 by score = lam * corr - (1 - lam) * KL / d:
  exact      FAISS IndexFlatIP over augmented vectors, exact by a certificate (k + 8 rescored in float64, more
             where float32 cannot tell near-ties apart)
  numpy      the composite formula evaluated directly over all N items (float64)
  rerank     the literal design "FAISS top-100 by point embedding, then composite rerank in Python"
  hnsw       HNSW on MIPS->L2-transformed augmented vectors (M=32, efSearch=128), top 256 rescored
  batch      exact and sq8, 8 queries in one search_many call (a story's cue list: one FAISS call, one scan
             of the codes) against the same 8 one by one, per query
  filtered   exact and sq8, restricted to a random 10% and 1% of the catalogue (a filter's pass), against numpy
             on that subset
  fp16       the service's default: half-precision codes scanned first (2k + 8 candidates), grown until the
             certificate proves the top 10 exact (app/index.py); its recall is also given at other lams, with the
             mean number of items rescored
  sq8        one byte per dimension scanned first, every item its certificate cannot rule out rescored
             (app/codes.py); recall and rescoring count at other lams as for fp16
Recall@10 is measured against numpy's exact ranking, at the model's query lam; the shortcut's recall is also given
at other lams (it drops as the KL part weighs more). The bandwidth bound is the bytes a flat scan must read
(N x (3d + 1) x 4) divided by the memory bandwidth measured here (numpy summing a 1 GiB array).
"""

from __future__ import annotations

import sys
from pathlib import Path

# As a script (python bench/x.py) the bench folder would come first on the path and bench/http.py would shadow the
# standard library's http package: put the project root there instead.
sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import json
import time

import faiss
import numpy as np

from app.index import build_snapshot
from bench.common import embedder, machine, real_embeddings, synthetic_catalogue
from models.scoring import Gaussians, augment_query, centred, composite_scores, split_scores

K, HEAD, RERANK = 10, 256, 100
OTHER_LAMS = (0.5, 0.9, 0.98)  # the shortcut's recall depends on how much the KL part weighs
FILTER_SHARES = (0.1, 0.01)  # shares of the catalogue a filter lets through
BATCH = 8  # queries in one search_many call (a story's cue list)


def bandwidth() -> float:
    """Bytes per second of a streaming read (best of 5)."""
    x = np.ones(2**28, dtype=np.float32)  # 1 GiB
    best = min(_seconds(lambda: x.sum(dtype=np.float32)) for _ in range(5))
    return x.nbytes / best


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def numpy_top(query: Gaussians, items: Gaussians, lam: float) -> np.ndarray:
    scores = composite_scores(query, items, lam=lam).score[0]
    top = np.argpartition(-scores, K)[:K]
    return top[np.argsort(-scores[top])]


class Rerank:
    """FAISS top-100 by Pearson of point embeddings, then the composite score on those in numpy."""

    def __init__(self, items: Gaussians) -> None:
        self.items = items
        self.index = faiss.IndexFlatIP(items.E.shape[1])
        self.index.add(centred(items.E).astype(np.float32))

    def top(self, query: Gaussians, lam: float) -> np.ndarray:
        _, I = self.index.search(centred(query.E).astype(np.float32), RERANK)
        rows = I[0]
        candidates = Gaussians(*(part[rows].astype(np.float64) for part in self.items))
        repeated = Gaussians(*(np.repeat(part, rows.size, axis=0) for part in query))
        scores = split_scores(repeated, candidates, lam=lam, centre=np.zeros(query.E.shape[1])).score
        return rows[np.argsort(-scores)[:K]]


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return len(set(found.tolist()) & set(truth.tolist())) / K


def bench_size(items: Gaussians, queries: Gaussians, lam: float, *, n_numpy: int, with_hnsw: bool = True) -> dict:
    n, d = items.E.shape
    ids = np.arange(n)
    build = {}
    start = time.perf_counter()
    exact = build_snapshot(model_version="bench", track_ids=ids, gaussians=items)
    build["exact"] = time.perf_counter() - start
    if with_hnsw:
        start = time.perf_counter()
        hnsw = build_snapshot(model_version="bench", track_ids=ids, gaussians=items, kind="hnsw")
        build["hnsw"] = time.perf_counter() - start
    start = time.perf_counter()
    fp16 = build_snapshot(model_version="bench", track_ids=ids, gaussians=items, kind="fp16")
    build["fp16"] = time.perf_counter() - start
    start = time.perf_counter()
    sq8 = build_snapshot(model_version="bench", track_ids=ids, gaussians=items, kind="sq8")
    build["sq8"] = time.perf_counter() - start
    assert sq8.codes is not None
    sq8.codes.warm()
    rerank = Rerank(items)
    methods = {
        "exact": lambda q: np.array([h.track_id for h in exact.search(q, lam=lam, k=K, rescore_head=HEAD)]),
        "numpy": lambda q: numpy_top(q, items, lam),
        "rerank": lambda q: rerank.top(q, lam),
        **({"hnsw": lambda q: np.array([h.track_id for h in hnsw.search(q, lam=lam, k=K, rescore_head=HEAD)])}
           if with_hnsw else {}),
        "fp16": lambda q: np.array([h.track_id for h in fp16.search(q, lam=lam, k=K, rescore_head=HEAD)]),
        "sq8": lambda q: np.array([h.track_id for h in sq8.search(q, lam=lam, k=K, rescore_head=HEAD)]),
    }
    truth = [numpy_top(_row(queries, i), items, lam) for i in range(queries.E.shape[0])]
    out = {"n": n, "d": d, "bytes_per_query": n * (3 * d + 1) * 4, "fp16_bytes_per_query": n * fp16.faiss_index.d * 2,
           "sq8_bytes_per_query": sq8.codes.codes.nbytes, "build_s": build}
    for name, fn in methods.items():
        count = n_numpy if name == "numpy" else queries.E.shape[0]
        times, recalls = [], []
        for i in range(count):
            start = time.perf_counter()
            found = fn(_row(queries, i))
            times.append(time.perf_counter() - start)
            recalls.append(recall(found, truth[i]))
        out[name] = {"ms_p50": 1000 * float(np.median(times)), "ms_mean": 1000 * float(np.mean(times)),
                     "recall@10": float(np.mean(recalls)), "queries": count}
    out["batch"] = {name: _batch(snapshot, queries, lam) for name, snapshot in (("exact", exact), ("sq8", sq8))}
    out["filtered"] = _filtered(exact, items, queries, lam, n_numpy)
    out["sq8_filtered"] = _filtered(sq8, items, queries, lam, n_numpy)
    out["fp16_by_lam"] = {str(other): _coded_check(fp16, items, queries, other, n_numpy) for other in OTHER_LAMS}
    out["sq8_by_lam"] = {str(other): _coded_check(sq8, items, queries, other, n_numpy) for other in OTHER_LAMS}
    out["rerank_recall_by_lam"] = {
        str(other): float(np.mean([recall(rerank.top(_row(queries, i), other),
                                          numpy_top(_row(queries, i), items, other)) for i in range(n_numpy)]))
        for other in OTHER_LAMS
    }
    return out


def _filtered(snapshot, items: Gaussians, queries: Gaussians, lam: float, count: int) -> dict:
    """Exact search restricted to a random share of the rows: time and recall against numpy on the subset."""
    out = {}
    for share in FILTER_SHARES:
        rows = np.sort(np.random.default_rng(2).choice(snapshot.size, int(snapshot.size * share), replace=False))
        subset = Gaussians(*(part[rows] for part in items))
        times, recalls = [], []
        for i in range(count):
            query = _row(queries, i)
            start = time.perf_counter()
            hits = snapshot.search(query, lam=lam, k=K, rescore_head=HEAD, allowed=rows)
            times.append(time.perf_counter() - start)
            recalls.append(recall(np.array([h.track_id for h in hits]), rows[numpy_top(query, subset, lam)]))
        out[str(share)] = {"ms_p50": 1000 * float(np.median(times)), "recall@10": float(np.mean(recalls))}
    return out


def _batch(snapshot, queries: Gaussians, lam: float, size: int = BATCH) -> dict:
    """``size`` queries in one ``search_many`` call (an arc's cues) against the same queries one by one, per query,
    the median of up to 5 batches; the answers must agree."""
    together, alone = [], []
    for r in range(max(1, min(5, queries.E.shape[0] // size))):
        batch = Gaussians(*(part[r * size : (r + 1) * size] for part in queries))
        start = time.perf_counter()
        many = snapshot.search_many(batch, lams=[lam] * size, ks=[K] * size, rescore_head=HEAD)
        together.append((time.perf_counter() - start) / size)
        start = time.perf_counter()
        one = [snapshot.search(_row(batch, i), lam=lam, k=K, rescore_head=HEAD) for i in range(size)]
        alone.append((time.perf_counter() - start) / size)
        assert [[h.track_id for h in hits] for hits in many] == [[h.track_id for h in hits] for hits in one]
    return {"ms_per_query_batched": 1000 * float(np.median(together)),
            "ms_per_query_alone": 1000 * float(np.median(alone)), "size": size}


def _coded_check(snapshot, items: Gaussians, queries: Gaussians, lam: float, count: int) -> dict:
    """Recall@10 of a certified fp16 or sq8 search against numpy at ``lam``, and how many items it rescored."""
    recalls, rescored = [], []
    for i in range(count):
        query = _row(queries, i)
        q, offset = augment_query(query, lam=lam, centre=snapshot.centre)
        if snapshot.codes is not None:
            scorer = snapshot.codes.scorer(snapshot.gaussians, snapshot.centre, q[0])
            rows, _ = snapshot.codes.certified(q[0], K, scorer)
        else:
            rows, _ = snapshot.certified(query, q, float(offset[0]), lam=lam, k=K,
                                         head=min(snapshot.size, snapshot.first_head(K, HEAD)))
        found = np.array([h.track_id for h in snapshot.search(query, lam=lam, k=K, rescore_head=HEAD)])
        recalls.append(recall(found, numpy_top(query, items, lam)))
        rescored.append(rows.size)
    return {"recall@10": float(np.mean(recalls)), "rescored_mean": float(np.mean(rescored))}


def _row(g: Gaussians, i: int) -> Gaussians:
    return Gaussians(*(part[i : i + 1].astype(np.float64) for part in g))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", default="default")
    parser.add_argument("--corpus", type=Path, help="Manifest of clips to take embedding statistics from.")
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--no-hnsw", action="store_true", help="Leave HNSW out (its build takes minutes at 1M).")
    args = parser.parse_args()
    if args.queries < BATCH:
        parser.error(f"--queries must be at least {BATCH}: one batched call holds {BATCH} queries")
    faiss.omp_set_num_threads(1)
    model = embedder(args.bundle)
    base = real_embeddings(model, corpus=args.corpus, n=40 if args.quick else 200)
    queries = model.embed_points(np.random.default_rng(1).uniform(-1, 1, size=(args.queries, 2)))
    lam = model.config.score_lam
    sizes = [10_000] if args.quick else [int(s) for s in args.sizes.split(",")]
    per_second = bandwidth()
    per_size: dict[str, dict] = {}
    for n in sizes:
        r = bench_size(synthetic_catalogue(base, n), queries, lam, n_numpy=min(args.queries, 20),
                       with_hnsw=not args.no_hnsw)
        r["bound_ms"] = 1000 * r["bytes_per_query"] / per_second
        r["exact_vs_bound"] = r["exact"]["ms_p50"] / r["bound_ms"]
        per_size[str(n)] = r
    results = {"machine": machine(), "bandwidth_gb_s": per_second / 1e9, "lam": lam, "bundle": model.version,
               "sizes": per_size}
    print(f"{machine()}; memory bandwidth {results['bandwidth_gb_s']:.1f} GB/s; lam {lam:.2f}; one thread; top-{K}")
    print(f"{'N':>9} {'method':<8}{'p50 ms':>9}{'mean ms':>9}{'recall@10':>11}{'x exact':>9}")
    for size, r in per_size.items():
        for name in ("exact", "numpy", "rerank", "hnsw", "fp16", "sq8"):
            if name not in r:
                continue
            m = r[name]
            print(f"{size:>9} {name:<8}{m['ms_p50']:>9.3f}{m['ms_mean']:>9.3f}{m['recall@10']:>11.3f}"
                  f"{m['ms_p50'] / r['exact']['ms_p50']:>9.2f}")
        by_lam = ", ".join(f"lam {lam}: {value:.3f}" for lam, value in r["rerank_recall_by_lam"].items())
        print(f"{size:>9} rerank recall@10 by query lam: {by_lam}")
        coded = {kind: ", ".join(f"lam {lam}: {v['recall@10']:.3f} ({v['rescored_mean']:.0f} rescored)"
                                 for lam, v in r[f"{kind}_by_lam"].items()) for kind in ("fp16", "sq8")}
        batches = ", ".join(f"{name} {v['ms_per_query_batched']:.3f} ms per query (alone {v['ms_per_query_alone']:.3f})"
                            for name, v in r["batch"].items())
        print(f"{size:>9} {r['batch']['sq8']['size']} queries in one call: {batches}")
        for name, key in (("exact", "filtered"), ("sq8", "sq8_filtered")):
            shares = ", ".join(f"{float(share):.0%} pass: {v['ms_p50']:.3f} ms, recall {v['recall@10']:.3f}"
                               for share, v in r[key].items())
            print(f"{size:>9} filtered {name}: {shares}")
        for kind in ("fp16", "sq8"):
            print(f"{size:>9} {kind} recall@10 by query lam: {coded[kind]}; "
                  f"{r[f'{kind}_bytes_per_query'] / 2**20:.1f} MiB per scan")
        print(f"{size:>9} bound: {r['bytes_per_query'] / 2**20:.1f} MiB per scan -> {r['bound_ms']:.3f} ms; exact is "
              f"{r['exact_vs_bound']:.2f}x the bound; build flat {r['build_s']['exact']:.2f} s, "
              f"hnsw {r['build_s'].get('hnsw', float('nan')):.1f} s, fp16 {r['build_s']['fp16']:.2f} s, "
              f"sq8 {r['build_s']['sq8']:.2f} s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
