"""HTTP load: requests per second, p50 and p99 for emotion-to-music and text-to-music queries with 1, 8 and 32
concurrent clients on loopback, against `moodspace serve` (1 and 2 server processes by default) over a catalogue
of N synthetic entries; each server's start-up time (process start to /readyz 200) and memory per worker.

    python bench/http.py [--bundle default|PATH] [--n 100000] [--seconds 20] [--workers 1,2] [--quick] [--json OUT]

The driver is httpx's async client (one connection per client, keep-alive), in a separate process from the
server; each client sends its next request when the previous answer arrives. ``text`` sends four stories in
turn (the service's sentence cache then answers most of the encoding); ``text-new`` a story never sent before
each time (every sentence encoded).
"""

from __future__ import annotations

import sys
from pathlib import Path

# As a script (python bench/x.py) the bench folder would come first on the path and bench/http.py would shadow the
# standard library's http package: put the project root there instead.
sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import asyncio
import json
import os
import tempfile
import time
from typing import Any

import httpx
import numpy as np

from bench.common import catalogue_server, embedder, real_embeddings, worker_memory

STORIES = [
    "The morning was bright and the children ran laughing to the sea. By noon a storm rolled in.",
    "She opened the letter with shaking hands. It was the news she had waited years to hear, and she wept for joy.",
    "The house was quiet. Dust covered the piano nobody played any more.",
    "Sirens wailed through the night as the city burned. Nobody knew who had started it.",
]


def e2m_request(i: int) -> tuple[str, dict]:
    rng = np.random.default_rng(i)
    v, a = rng.uniform(-1, 1, size=2)
    return "/v1/emotion-to-music", {"point": {"valence": float(v), "arousal": float(a)}, "k": 10}


def text_request(i: int) -> tuple[str, dict]:
    return "/v1/text-to-music", {"text": STORIES[i % len(STORIES)], "k": 5, "mode": "whole"}


def new_text_request(i: int) -> tuple[str, dict]:
    """A story no request sent before: the stories' sentences in another order, with the request's number."""
    sentences = [s for story in STORIES for s in story.split(". ")]
    order = np.random.default_rng(i).permutation(len(sentences))[:3]
    return "/v1/text-to-music", {"text": f"Day {i}. " + ". ".join(sentences[j] for j in order), "k": 5,
                                 "mode": "whole"}


async def client_loop(client: httpx.AsyncClient, make, start_index: int, deadline: float,
                      latencies: list[float], failures: list[int]) -> None:
    i = start_index
    while time.perf_counter() < deadline:
        path, body = make(i)
        started = time.perf_counter()
        response = await client.post(path, json=body)
        latencies.append(time.perf_counter() - started)
        if response.status_code != 200:
            failures.append(response.status_code)
        i += 1000


async def load(url: str, make, *, clients: int, seconds: float) -> dict[str, float]:
    latencies: list[float] = []
    failures: list[int] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        await client.post(*make(0)[:1], json=make(0)[1])  # warm-up
        start = time.perf_counter()
        deadline = start + seconds
        await asyncio.gather(*(client_loop(client, make, c, deadline, latencies, failures) for c in range(clients)))
        elapsed = time.perf_counter() - start
    ms = np.array(latencies) * 1000
    return {"clients": clients, "requests": len(latencies), "failures": len(failures),
            "rps": len(latencies) / elapsed, "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", default="default")
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--workers", default="1,2", help="server processes to compare, comma-separated")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    model = embedder(args.bundle)
    n, seconds = (10_000, 4.0) if args.quick else (args.n, args.seconds)
    base = real_embeddings(model, corpus=None, n=20 if args.quick else 100)
    kinds = {"e2m": e2m_request} | ({"text": text_request, "text-new": new_text_request} if model.has_text else {})
    runs: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (int(w) for w in args.workers.split(",")):
            started = time.perf_counter()
            process, url = catalogue_server(bundle=args.bundle, n=n, base=base, folder=Path(tmp),
                                            version=model.version, workers=workers)
            run: dict[str, Any] = {"workers": workers, "startup_s": time.perf_counter() - started, "results": {}}
            try:
                for kind, make in kinds.items():
                    run["results"][kind] = [asyncio.run(load(url, make, clients=c, seconds=seconds))
                                            for c in (1, 8, 32)]
                run["memory"] = worker_memory(process)
            finally:
                process.terminate()
                process.wait(60)
            runs.append(run)
    print(f"catalogue {n} entries; {seconds:.0f} s per cell; {os.cpu_count()} cores; client on the same machine")
    for run in runs:
        memory = ", ".join(f"{m['rss_mib']:.0f} MiB RSS / {m['pss_mib']:.0f} MiB PSS" for m in run["memory"])
        print(f"\n{run['workers']} server process(es): ready in {run['startup_s']:.1f} s (the first run also "
              f"builds the index); per worker: {memory}")
        print(f"{'query':<9}{'clients':>8}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'failed':>8}")
        for kind, rows in run["results"].items():
            for r in rows:
                print(f"{kind:<9}{r['clients']:>8}{r['rps']:>9.1f}{r['p50_ms']:>9.1f}{r['p99_ms']:>9.1f}"
                      f"{r['failures']:>8}")
    if args.json:
        args.json.write_text(json.dumps({"n": n, "seconds": seconds, "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
