"""Service speed: emotion-to-music latency at catalogue sizes N (server-side and over HTTP on loopback),
music-to-emotion latency for a 30 s clip, and ingest throughput.

    python bench/service.py --bundle BUNDLE --corpus MANIFEST [--sizes 10000,100000] [--quick] [--json OUT]

Catalogues of size N are synthetic: real clips from --corpus are embedded by the bundle, then N items are drawn
around them (jitter of a quarter of each dimension's spread), so the index sees a trained model's statistics.
Server-side time is the service's own ``Server-Timing`` header; HTTP time is the client's round trip on loopback
(one client, sequential requests). Ingest runs ``moodspace ingest`` on --ingest-clips clips of the corpus.
"""

from __future__ import annotations

import sys
from pathlib import Path

# As a script (python bench/x.py) the bench folder would come first on the path and bench/http.py would shadow the
# standard library's http package: put the project root there instead.
sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import httpx
import numpy as np

from bench.common import catalogue_server, machine
from models.bundle import load_bundle
from models.default import resolve_bundle
from models.frontend import load_audio
from models.inference import Embedder
from models.manifest import audio_path, read_manifest

STORY_200_WORDS = (
    "The morning began with sunlight pouring through the kitchen window, and Maya laughed as her little brother "
    "spilled cereal across the table. Their father whistled an old tune while the coffee brewed. It was the first "
    "day of summer, and the whole family planned a picnic by the lake. They packed sandwiches, lemonade and a "
    "battered football. At the lake the water sparkled, children splashed in the shallows and dogs chased each "
    "other along the shore. Then the wind changed. Dark clouds rolled over the hills, and the first cold drops "
    "hit the blanket. Thunder cracked so close that the dogs howled. Everyone ran for the car, but Maya could not "
    "find her brother. She shouted his name into the rain again and again. Her heart pounded; the lake looked "
    "black and endless now. Minutes felt like hours. At last she heard a small voice from under the old pier. He "
    "was soaked, shivering and frightened, clutching the football. She held him tightly and cried with relief. "
    "Back home, wrapped in blankets by the fire, they drank hot chocolate and listened to the storm fade. The "
    "house was quiet and warm, and slowly everyone drifted into a calm, grateful sleep."
)


def timed(client: httpx.Client, send, n: int) -> dict[str, float]:
    http, server = [], []
    for i in range(n):
        start = time.perf_counter()
        response = send(client, i)
        http.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, response.text
        server.append(float(response.headers["server-timing"].split("dur=")[1]))
    return {"server_p50_ms": float(np.percentile(server, 50)), "server_p99_ms": float(np.percentile(server, 99)),
            "http_p50_ms": float(np.percentile(http, 50)), "http_p99_ms": float(np.percentile(http, 99)), "n": n}


def e2m_queries(rng: np.random.Generator):
    points = rng.uniform(-1, 1, size=(1000, 2))

    def point(client: httpx.Client, i: int) -> httpx.Response:
        v, a = points[i % 1000]
        return client.post("/v1/emotion-to-music", json={"point": {"valence": v, "arousal": a}, "k": 10})

    def curve(client: httpx.Client, i: int) -> httpx.Response:
        v, a = points[i % 1000]
        body = [{"t": t, "valence": float(np.clip(v + 0.02 * t, -1, 1)), "arousal": a} for t in range(30)]
        return client.post("/v1/emotion-to-music", json={"curve": body, "k": 10})

    return {"e2m_point": point, "e2m_curve": curve}


def bench_size(args, embedder: Embedder, files: list[Path], n: int, rng: np.random.Generator) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        real = embedder.embed_features([embedder.frontend(load_audio(f, sr=embedder.config.frontend.sr))
                                        for f in files])
        process, url = catalogue_server(bundle=str(args.bundle), n=n, base=real, folder=Path(tmp),
                                        version=embedder.version)
        try:
            with httpx.Client(base_url=url, timeout=60) as client:
                count = 50 if args.quick else 300
                results = {name: timed(client, send, count) for name, send in e2m_queries(rng).items()}
                clip = files[0].read_bytes()
                results["m2e_30s"] = timed(client, lambda c, i: c.post(
                    "/v1/music-to-emotion", files={"file": ("clip.flac", clip)}), 10 if args.quick else 30)
                if embedder.has_text:
                    for mode in ("whole", "arc"):
                        results[f"t2m_{mode}"] = timed(client, lambda c, i, mode=mode: c.post(
                            "/v1/text-to-music", json={"text": STORY_200_WORDS, "k": 5, "mode": mode}),
                            10 if args.quick else 30)
        finally:
            process.terminate()
            process.wait(30)
    return results


def bench_ingest(args, files: list[Path]) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "in"
        folder.mkdir()
        for f in files:
            (folder / f.name).symlink_to(f)
        env = {**os.environ, "MOODSPACE_DATA_DIR": f"{tmp}/data", "MOODSPACE_BUNDLE": str(args.bundle)}
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "moodspace.cli", "ingest", str(folder)], env=env, check=True,
                       capture_output=True)
        seconds = time.perf_counter() - start
    return {"clips": len(files), "seconds": seconds, "clips_per_s": len(files) / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--corpus", type=Path, required=True, help="Manifest of 30 s clips.")
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--ingest-clips", type=int, default=100)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    embedder = Embedder.from_bundle(load_bundle(resolve_bundle(args.bundle)))
    clips = read_manifest(args.corpus)
    files = [audio_path(args.corpus, c) for c in clips[: 20 if args.quick else 200]]
    sizes = [1000] if args.quick else [int(s) for s in args.sizes.split(",")]
    results: dict = {"machine": machine(), "sizes": {str(n): bench_size(args, embedder, files, n, rng) for n in sizes}}
    ingest_files = [audio_path(args.corpus, c) for c in clips[: 10 if args.quick else args.ingest_clips]]
    results["ingest"] = bench_ingest(args, ingest_files)
    print(machine())
    print(f"{'N':>8} {'query':<10} {'server p50':>11} {'p99':>8} {'HTTP p50':>10} {'p99':>8}   (ms)")
    for n, per in results["sizes"].items():
        for name, r in per.items():
            print(f"{n:>8} {name:<10} {r['server_p50_ms']:>11.2f} {r['server_p99_ms']:>8.2f} "
                  f"{r['http_p50_ms']:>10.2f} {r['http_p99_ms']:>8.2f}")
    ingest = results["ingest"]
    print(f"ingest: {ingest['clips']} clips in {ingest['seconds']:.1f} s = {ingest['clips_per_s']:.2f} clips/s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
