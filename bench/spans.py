"""Span search beside track-only search on the same catalogue: index size, build time and query time.

    python bench/spans.py [--bundle default|PATH] [--sizes 10000,100000] [--spans-per-track 36] [--queries 30]
                          [--milvus-sizes 1000,10000] [--json OUT]

Per catalogue of N tracks with S spans each (36: a 3-minute track at the default grid of 10 s spans every 5 s), in
one run: the service's track index (``build_snapshot``, exact flat) and its span index (``app.spans``: one pass
over the span vectors, exact by its certificate), both built from embeddings drawn around the default model's real
track and span embeddings. Reported: build seconds, index and embedding bytes, one query at a time (p50, p99) for
whole tracks (a point), spans for a point (one span, about 10 s), spans for a 20 s curve (three pieces) and spans
under a 10% filter, each span time also as a ratio to the track-only time. One FAISS thread, as one service worker.
``--milvus-sizes``: the same span queries on the Milvus backend (milvus-lite, embedded: ``MilvusSpans``) beside the
FAISS span index on the same spans, and the build (insert, flush, load) time; empty to leave it out.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])  # as in bench/query.py: bench/http.py must not shadow http

import argparse
import json
import tempfile
import time

import faiss
import numpy as np

from app.index import build_snapshot
from app.spans import SpanIndex, build_spans
from bench.common import embedder, machine, synthetic_catalogue
from models.inference import Embedder
from models.scoring import Gaussians
from models.spans import SpanTable
from training.corpus.generate import synth_clip

K, HEAD = 10, 256


def _row(g: Gaussians, i: int) -> Gaussians:
    return Gaussians(*(p[i : i + 1] for p in g))


def _latency(search, queries: list, n: int) -> dict[str, float]:
    search(queries[0])  # warm
    times = []
    for query in queries[:n]:
        start = time.perf_counter()
        search(query)
        times.append(1000 * (time.perf_counter() - start))
    return {"ms_p50": float(np.percentile(times, 50)), "ms_p99": float(np.percentile(times, 99))}


def base_embeddings(model: Embedder, n: int = 40) -> tuple[Gaussians, Gaussians]:
    """Track and span embeddings of ``n`` generated 30 s clips (the statistics the catalogue is drawn around)."""
    features = [model.frontend(synth_clip(i, seed=321, seconds=30)[1]) for i in range(n)]
    spans = [model.embed_spans(f).gaussians for f in features]
    return model.embed_features(features), Gaussians(*(np.vstack(p) for p in zip(*spans, strict=True)))


def _mib(*arrays: np.ndarray) -> float:
    return sum(a.nbytes for a in arrays) / 2**20


def bench_size(model: Embedder, tracks: Gaussians, spans: Gaussians, per_track: int, *, queries: int) -> dict:
    n = tracks.E.shape[0]
    ids = np.arange(n, dtype=np.int64)
    lam = model.config.score_lam
    start = time.perf_counter()
    snapshot = build_snapshot(model_version="bench", track_ids=ids, gaussians=tracks)
    track_build = time.perf_counter() - start
    owners = np.repeat(ids, per_track)
    starts = np.tile(np.arange(per_track) * model.span_grid.hop_s, n)
    start = time.perf_counter()
    index: SpanIndex = build_spans(SpanTable(owners, starts, starts + model.span_grid.width_s, spans))
    span_build = time.perf_counter() - start
    rng = np.random.default_rng(1)
    points = model.embed_points(rng.uniform(-1, 1, size=(queries, 2)))
    seconds = model.span_grid.width_s + 2 * model.span_grid.hop_s
    curves = [model.span_curve_query(np.array([[0.0, *rng.uniform(-1, 1, 2)], [seconds, *rng.uniform(-1, 1, 2)]]))
              for _ in range(queries)]
    allowed = index.rows_of(rng.choice(ids, size=n // 10, replace=False))
    one = [_row(points, i) for i in range(queries)]
    result = {
        "tracks": n, "spans": index.size,
        "build_s": {"tracks": track_build, "spans": span_build},
        "index_mib": {"tracks": n * snapshot.faiss_index.d * 4 / 2**20, "spans": index.vectors.nbytes / 2**20},
        "embeddings_mib": {"tracks": _mib(*snapshot.gaussians), "spans": _mib(*index.gaussians, index.track_ids,
                                                                              index.starts, index.ends)},
        "tracks_point": _latency(lambda q: snapshot.search(q, lam=lam, k=K, rescore_head=HEAD), one, queries),
        "spans_point": _latency(lambda q: index.search(q, lam=lam, k=K), one, queries),
        "spans_curve_20s": _latency(lambda q: index.search(q, lam=lam, k=K), curves, queries),
        "spans_point_filter_10pct": _latency(lambda q: index.search(q, lam=lam, k=K, allowed=allowed), one,
                                             min(queries, 10)),
    }
    return result


def bench_milvus(model: Embedder, tracks: Gaussians, spans: Gaussians, per_track: int, *, queries: int,
                 folder: Path) -> dict:
    """Span queries on milvus-lite's span collection against the FAISS span index of the same spans."""
    from app.milvus import MilvusStore  # pymilvus is imported only by this backend

    n = tracks.E.shape[0]
    ids = np.arange(n, dtype=np.int64)
    owners = np.repeat(ids, per_track)
    starts = np.tile(np.arange(per_track) * model.span_grid.hop_s, n)
    table = SpanTable(owners, starts, starts + model.span_grid.width_s, spans)
    index = build_spans(table)
    store = MilvusStore(str(folder / f"bench-{n}.db"), alias="bench")
    try:
        start = time.perf_counter()
        snapshot = store.build(model_version="bench", track_ids=ids, gaussians=tracks, spans=table)
        build = time.perf_counter() - start
        assert snapshot.spans is not None
        lam, rng = model.config.score_lam, np.random.default_rng(1)
        points = model.embed_points(rng.uniform(-1, 1, size=(queries, 2)))
        one = [_row(points, i) for i in range(queries)]
        seconds = model.span_grid.width_s + 2 * model.span_grid.hop_s
        curves = [model.span_curve_query(np.array([[0.0, *rng.uniform(-1, 1, 2)],
                                                    [seconds, *rng.uniform(-1, 1, 2)]])) for _ in range(queries)]
        same = all(snapshot.spans.search(q, lam=lam, k=K) == index.search(q, lam=lam, k=K)
                   for q in one[:5] + curves[:5])
        return {"tracks": n, "spans": index.size, "build_s": build, "same_answers": same,
                "faiss_point": _latency(lambda q: index.search(q, lam=lam, k=K), one, queries),
                "milvus_point": _latency(lambda q: snapshot.spans.search(q, lam=lam, k=K), one, queries),
                "faiss_curve_20s": _latency(lambda q: index.search(q, lam=lam, k=K), curves, queries),
                "milvus_curve_20s": _latency(lambda q: snapshot.spans.search(q, lam=lam, k=K), curves, queries)}
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", default="default")
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--spans-per-track", type=int, default=36)
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--milvus-sizes", default="1000,10000",
                        help="catalogues for the Milvus comparison; empty: none")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    faiss.omp_set_num_threads(1)
    model = embedder(args.bundle)
    base_tracks, base_spans = base_embeddings(model)
    print(machine())
    sizes: dict[str, dict] = {}
    for n in (int(s) for s in args.sizes.split(",")):
        r = bench_size(model, synthetic_catalogue(base_tracks, n),
                       synthetic_catalogue(base_spans, n * args.spans_per_track, seed=1), args.spans_per_track,
                       queries=args.queries)
        sizes[str(n)] = r
        base = r["tracks_point"]["ms_p50"]
        print(f"{n:,} tracks, {r['spans']:,} spans: build {r['build_s']['tracks']:.2f} s / "
              f"{r['build_s']['spans']:.2f} s; index {r['index_mib']['tracks']:.0f} / {r['index_mib']['spans']:.0f} "
              f"MiB, embeddings {r['embeddings_mib']['tracks']:.0f} / {r['embeddings_mib']['spans']:.0f} MiB")
        for name in ("tracks_point", "spans_point", "spans_curve_20s", "spans_point_filter_10pct"):
            m = r[name]
            print(f"  {name:<26} p50 {m['ms_p50']:9.2f} ms  p99 {m['ms_p99']:9.2f} ms  "
                  f"({m['ms_p50'] / base:.1f}x the track search)")
    milvus: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(s) for s in args.milvus_sizes.split(",") if s):
            r = bench_milvus(model, synthetic_catalogue(base_tracks, n),
                             synthetic_catalogue(base_spans, n * args.spans_per_track, seed=1), args.spans_per_track,
                             queries=args.queries, folder=Path(tmp))
            milvus[str(n)] = r
            print(f"Milvus (milvus-lite), {n:,} tracks, {r['spans']:,} spans: build {r['build_s']:.1f} s; answers "
                  f"{'the same as' if r['same_answers'] else 'DIFFERENT from'} FAISS's")
            for kind in ("point", "curve_20s"):
                f, m = r[f"faiss_{kind}"], r[f"milvus_{kind}"]
                print(f"  spans_{kind:<20} FAISS p50 {f['ms_p50']:8.2f} ms  Milvus p50 {m['ms_p50']:8.2f} ms  "
                      f"p99 {m['ms_p99']:8.2f} ms  ({m['ms_p50'] / f['ms_p50']:.1f}x)")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "bundle": model.version, "lam": model.config.score_lam,
                                         "spans_per_track": args.spans_per_track, "sizes": sizes,
                                         "milvus": milvus}, indent=2))


if __name__ == "__main__":
    main()
