"""Helpers shared by the benchmarks: synthetic catalogues with a trained model's statistics."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import sqlalchemy as sa

from app.db import upgrade
from app.tables import utcnow
from models.bundle import load_bundle
from models.default import resolve_bundle
from models.frontend import load_audio
from models.inference import Embedder
from models.manifest import audio_path, read_manifest
from models.scoring import Gaussians
from training.corpus.generate import synth_clip


def machine() -> str:
    """The processor's model name and the cores this process may use: timings from different machines are not
    comparable, so each report names its machine."""
    cpuinfo = Path("/proc/cpuinfo")
    names = [line.split(":", 1)[1].strip() for line in (cpuinfo.read_text().splitlines() if cpuinfo.is_file() else ())
             if line.startswith("model name")]
    return f"{names[0] if names else platform.processor() or platform.machine()}, {len(os.sched_getaffinity(0))} cores"


def embedder(bundle: str) -> Embedder:
    return Embedder.from_bundle(load_bundle(resolve_bundle(bundle)))


def real_embeddings(model: Embedder, *, corpus: Path | None, n: int = 200) -> Gaussians:
    """Music embeddings of real clips: from a manifest, or freshly generated 30 s clips."""
    if corpus is not None:
        clips = read_manifest(corpus)[:n]
        audio = [load_audio(audio_path(corpus, c), sr=model.config.frontend.sr) for c in clips]
    else:
        audio = [synth_clip(i, seed=321, seconds=30)[1] for i in range(n)]
    return model.embed_features([model.frontend(y) for y in audio])


def synthetic_catalogue(base: Gaussians, n: int, *, seed: int = 0, jitter: float = 0.25) -> Gaussians:
    """``n`` items drawn around real embeddings: a random real item plus Gaussian noise of ``jitter`` times each
    dimension's spread, so the catalogue has a trained model's statistics."""
    rng = np.random.default_rng(seed)
    pick = rng.integers(base.E.shape[0], size=n)
    parts = []
    for part in base:
        spread = part.std(axis=0) * jitter
        parts.append((part[pick] + rng.normal(size=(n, part.shape[1])) * spread).astype(np.float32))
    return Gaussians(*parts)


def populate(url: str, version: str, gaussians: Gaussians) -> None:
    """Bulk-insert N tracks with embeddings (the audio files are not needed for emotion-to-music)."""
    upgrade(url)
    engine = sa.create_engine(url)
    meta = sa.MetaData()
    tracks, embeddings = (sa.Table(name, meta, autoload_with=engine) for name in ("tracks", "embeddings"))
    n, now = gaussians.E.shape[0], utcnow()
    with engine.begin() as connection:
        for start in range(0, n, 10_000):
            rows = range(start, min(n, start + 10_000))
            connection.execute(tracks.insert(), [
                {"id": i + 1, "title": f"synthetic {i}", "artist": "bench", "duration_s": 30.0,
                 "audio_path": "audio/none.wav", "content_hash": f"{i:064x}", "source": "bench", "tags": [],
                 "added_at": now} for i in rows])
            connection.execute(embeddings.insert(), [
                {"track_id": i + 1, "model_version": version, "E": gaussians.E[i].astype(np.float32).tobytes(),
                 "mu": gaussians.mu[i].astype(np.float32).tobytes(),
                 "logvar": gaussians.logvar[i].astype(np.float32).tobytes(), "valence": 0.0, "arousal": 0.0,
                 "valence_std": 0.0, "arousal_std": 0.0, "va_curve": [], "created_at": now} for i in rows])
    engine.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(env: dict[str, str], *, workers: int = 1) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "moodspace.cli", "serve", "--port", str(port), "--log-level",
                                "warning", "--workers", str(workers)], env={**os.environ, **env})
    url = f"http://127.0.0.1:{port}"
    for _ in range(1200):
        try:
            if httpx.get(f"{url}/readyz").status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError("the service did not become ready")


def catalogue_server(*, bundle: str, n: int, base: Gaussians, folder: Path, version: str, workers: int = 1,
                     env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """`moodspace serve` over a SQLite catalogue of ``n`` synthetic items (made once per folder); ``env``: more
    settings for the server."""
    url = f"sqlite:///{folder}/bench.db"
    if not (folder / "bench.db").exists():
        populate(url, version, synthetic_catalogue(base, n))
    return serve({"MOODSPACE_DATA_DIR": str(folder), "MOODSPACE_DATABASE_URL": url, "MOODSPACE_BUNDLE": bundle,
                  **(env or {})}, workers=workers)


def worker_memory(server: subprocess.Popen) -> list[dict[str, float]]:
    """Resident and proportional set size (MiB) of each server process under ``server`` (its uvicorn workers
    with several, else itself; their decoding pools apart); PSS splits pages shared through memory mapping among
    the processes that map them."""
    children = [int(p) for p in Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()]
    helpers = (b"forkserver", b"resource_tracker")  # the decoding pool's starter and multiprocessing's tracker
    workers = [pid for pid in children if not any(h in Path(f"/proc/{pid}/cmdline").read_bytes() for h in helpers)]
    out = []
    for pid in workers or [server.pid]:
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:])
        out.append({"pid": pid, "rss_mib": int(fields["Rss"].split()[0]) / 1024,
                    "pss_mib": int(fields["Pss"].split()[0]) / 1024})
    return out
