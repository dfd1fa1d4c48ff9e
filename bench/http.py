"""HTTP load: requests per second, p50 and p99 for emotion-to-music and text-to-music queries with 1, 8 and 32
concurrent clients on loopback, against `moodspace serve` (1 and 2 server processes by default) over a catalogue
of N synthetic entries; each server's start-up time (process start to /readyz 200) and memory per worker.

    python bench/http.py [--bundle default|PATH] [--n 100000] [--seconds 20] [--workers 1,2] [--driver raw|httpx]
                         [--query-batch 32] [--kinds e2m,text,text-new] [--quick] [--json OUT]

The driver runs in a separate process from the server, one keep-alive connection per client; each client sends its
next request when the previous answer arrives. ``raw`` (the default) writes HTTP/1.1 requests and reads the answers
on asyncio streams, as load generators such as wrk do (0.3 ms of CPU per request, measured at 32 clients);
``httpx`` is httpx's async client (1.9 ms per request: on 2 cores it takes that time from the server). A server
process over its share of connections closes one after an answer (``app.balance``); the driver reopens it, and
``reopened`` counts how often. ``text`` sends four stories in turn (the service's sentence cache then answers most
of the encoding); ``text-new`` a story never sent before each time (every sentence encoded). ``--query-batch 1,32``
runs each worker count once per value of ``MOODSPACE_QUERY_BATCH`` (1: every query answered alone), the baseline
in the same run.
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
import tempfile
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np

from bench.common import catalogue_server, embedder, machine, real_embeddings, worker_memory

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


async def httpx_load(url: str, make, *, clients: int, seconds: float
                     ) -> tuple[list[float], list[int], float, int | None]:
    latencies: list[float] = []
    failures: list[int] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        await client.post(*make(0)[:1], json=make(0)[1])  # warm-up
        start = time.perf_counter()
        deadline = start + seconds
        await asyncio.gather(*(client_loop(client, make, c, deadline, latencies, failures) for c in range(clients)))
        elapsed = time.perf_counter() - start
    return latencies, failures, elapsed, None  # httpx reopens closed connections without saying


class Connection:
    """One keep-alive HTTP/1.1 connection that posts JSON and reads each answer whole (status and body); an answer
    with ``Connection: close`` (a server process over its share of connections) closes it, and the next request
    opens a new one, as HTTP clients do."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.address, self.host = (parts.hostname, parts.port), parts.netloc
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self.reconnects = 0

    async def post(self, path: str, body: dict) -> tuple[int, bytes]:
        if self.streams is None:
            self.streams = await asyncio.open_connection(*self.address)
            self.reconnects += 1
        reader, writer = self.streams
        payload = json.dumps(body).encode()
        writer.write(f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(payload)}\r\n\r\n".encode() + payload)
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip().lower() for k, v in (line.split(":", 1) for line in lines[1:] if
                                                                      ":" in line)}
        if "content-length" not in headers:
            raise RuntimeError(f"an answer without Content-Length: {lines[0]}")
        answer = await reader.readexactly(int(headers["content-length"]))
        if headers.get("connection") == "close":
            self.close()
        return int(lines[0].split()[1]), answer

    def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None


async def raw_loop(connection: Connection, make, start_index: int, deadline: float, latencies: list[float],
                   failures: list[int]) -> None:
    i = start_index
    while time.perf_counter() < deadline:
        path, body = make(i)
        started = time.perf_counter()
        status, _ = await connection.post(path, body)
        latencies.append(time.perf_counter() - started)
        if status != 200:
            failures.append(status)
        i += 1000


async def raw_load(url: str, make, *, clients: int, seconds: float) -> tuple[list[float], list[int], float, int]:
    latencies: list[float] = []
    failures: list[int] = []
    connections = [Connection(url) for _ in range(clients)]
    try:
        await connections[0].post(*make(0))  # warm-up
        start = time.perf_counter()
        deadline = start + seconds
        await asyncio.gather(*(raw_loop(connection, make, c, deadline, latencies, failures)
                               for c, connection in enumerate(connections)))
        elapsed = time.perf_counter() - start
    finally:
        for connection in connections:
            connection.close()
    return latencies, failures, elapsed, sum(c.reconnects for c in connections) - clients


DRIVERS = {"raw": raw_load, "httpx": httpx_load}


async def load(url: str, make, *, clients: int, seconds: float, driver: str = "raw") -> dict[str, Any]:
    latencies, failures, elapsed, reopened = await DRIVERS[driver](url, make, clients=clients, seconds=seconds)
    ms = np.array(latencies) * 1000
    return {"clients": clients, "requests": len(latencies), "failures": len(failures),
            "rps": len(latencies) / elapsed, "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99)), "reopened": reopened}


def run_server(args: argparse.Namespace, *, n: int, base, folder: Path, version: str, workers: int, batch: int,
               kinds: dict, seconds: float) -> dict[str, Any]:
    """Start a server, load it with each kind of query at 1, 8 and 32 clients, read its memory, stop it."""
    started = time.perf_counter()
    process, url = catalogue_server(bundle=args.bundle, n=n, base=base, folder=folder, version=version,
                                    workers=workers, env={"MOODSPACE_QUERY_BATCH": str(batch)})
    run: dict[str, Any] = {"workers": workers, "query_batch": batch, "startup_s": time.perf_counter() - started,
                           "results": {}}
    try:
        for kind, make in kinds.items():
            run["results"][kind] = [asyncio.run(load(url, make, clients=c, seconds=seconds, driver=args.driver))
                                    for c in (1, 8, 32)]
        run["memory"] = worker_memory(process)
    finally:
        process.terminate()
        process.wait(60)
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", default="default")
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--workers", default="1,2", help="server processes to compare, comma-separated")
    parser.add_argument("--driver", choices=sorted(DRIVERS), default="raw",
                        help="the load generator (module docstring)")
    parser.add_argument("--query-batch", default="32",
                        help="MOODSPACE_QUERY_BATCH values to compare, comma-separated (module docstring)")
    parser.add_argument("--kinds", default="e2m,text,text-new", help="query kinds to run, comma-separated")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    model = embedder(args.bundle)
    n, seconds = (10_000, 4.0) if args.quick else (args.n, args.seconds)
    base = real_embeddings(model, corpus=None, n=20 if args.quick else 100)
    kinds = {"e2m": e2m_request} | ({"text": text_request, "text-new": new_text_request} if model.has_text else {})
    kinds = {k: v for k, v in kinds.items() if k in args.kinds.split(",")}
    runs: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (int(w) for w in args.workers.split(",")):
            for batch in (int(b) for b in args.query_batch.split(",")):
                runs.append(run_server(args, n=n, base=base, folder=Path(tmp), version=model.version,
                                       workers=workers, batch=batch, kinds=kinds, seconds=seconds))
    print(f"catalogue {n} entries; {seconds:.0f} s per cell; {machine()}; {args.driver} driver on the "
          "same machine")
    for run in runs:
        memory = ", ".join(f"{m['rss_mib']:.0f} MiB RSS / {m['pss_mib']:.0f} MiB PSS" for m in run["memory"])
        print(f"\n{run['workers']} server process(es), query batch {run['query_batch']}: ready in "
              f"{run['startup_s']:.1f} s (the first run also builds the index); per worker: {memory}")
        print(f"{'query':<9}{'clients':>8}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'failed':>8}{'reopened':>10}")
        for kind, rows in run["results"].items():
            for r in rows:
                reopened = "-" if r["reopened"] is None else str(r["reopened"])
                print(f"{kind:<9}{r['clients']:>8}{r['rps']:>9.1f}{r['p50_ms']:>9.1f}{r['p99_ms']:>9.1f}"
                      f"{r['failures']:>8}{reopened:>10}")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "n": n, "seconds": seconds, "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
