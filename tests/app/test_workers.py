"""Several server processes on one data folder: they share the snapshot on disk through memory mapping and each
swaps to a new generation within a second of its publication; a newer snapshot that cannot be read leaves the
last good one serving and /readyz says why."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app.index import POINTER_CHECK_S, IndexStore, build_snapshot
from app.main import create_app
from app.settings import Settings
from models.scoring import Gaussians
from moodspace import cli
from tests.app.test_cli import _free_port
from training.corpus.generate import synth_corpus

runner = CliRunner()
SWAP_BOUND_S = 1.0  # the bound: no worker serves an old generation longer than this after the swap


def _serve(env: dict[str, str], workers: int) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "moodspace.cli", "serve", "--port", str(port), "--workers",
                                str(workers), "--log-level", "warning"], env={**os.environ, **env},
                               start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    raise AssertionError("the service did not become ready")


def _poll(url: str, stop: threading.Event, seen: list[tuple[float, float, int, str, int]]) -> None:
    """Emotion -> music on a new connection each time (so that every worker answers some): (sent, answered, pid,
    generation, results) per answer."""
    query = {"point": {"valence": 0.2, "arousal": 0.1}, "k": 50}
    while not stop.is_set():
        sent = time.time()
        with httpx.Client(base_url=url, timeout=10) as client:
            ready = client.get("/readyz").json()
            answer = client.post("/v1/emotion-to-music", json=query)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        seen.append((sent, time.time(), ready["pid"], body["index_generation"], len(body["results"])))


def test_workers_share_the_mapped_snapshot_and_swap_to_a_new_generation_within_a_second(tmp_path: Path,
                                                                                           bundle_dir: Path):
    env = {"MOODSPACE_DATA_DIR": str(tmp_path / "data"), "MOODSPACE_BUNDLE": str(bundle_dir),
           "MOODSPACE_DECODE_PROCESSES": "1"}
    first = synth_corpus(n=3, seconds=2, seed=3, out=tmp_path / "one", workers=1, progress=False)
    second = synth_corpus(n=2, seconds=2, seed=4, out=tmp_path / "two", workers=1, progress=False)
    assert runner.invoke(cli.cli, ["ingest", str(first)], env=env).exit_code == 0
    process, url = _serve(env, workers=2)
    stop, seen = threading.Event(), []
    poller = threading.Thread(target=_poll, args=(url, stop, seen))
    try:
        poller.start()
        time.sleep(1.0)
        added = runner.invoke(cli.cli, ["ingest", str(second)], env=env)  # publishes a new generation
        assert added.exit_code == 0, added.output
        pointer = tmp_path / "data" / "indexes" / "current.json"
        published = pointer.stat().st_mtime
        time.sleep(2.0)
        stop.set()
        poller.join(30)
        new = IndexStore(tmp_path / "data" / "indexes").load_current(_version(url))
        assert new is not None
        pids = {pid for *_, pid, _, _ in seen}
        assert len(pids) == 2, f"both workers should have answered: {pids}"
        late = [s for s in seen if s[0] > published + SWAP_BOUND_S]
        assert late and {(generation, n) for *_, generation, n in late} == {(new.generation, 5)}
        assert {pid for *_, pid, _, _ in late} == pids
        old = [s for s in seen if s[1] < published]
        assert old and {(generation, n) for *_, generation, n in old} == {(seen[0][3], 3)}
        for pid in pids:  # each worker maps the same index file instead of holding its own copy
            maps = Path(f"/proc/{pid}/maps").read_text()
            assert f"{new.generation}/index.faiss" in maps and f"{new.generation}/E.npy" in maps
    finally:
        stop.set()
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)


def _version(url: str) -> str:
    return httpx.get(f"{url}/readyz").json()["model_version"]


def test_a_newer_snapshot_that_cannot_be_read_leaves_the_last_good_one_serving(tmp_path: Path, bundle_dir: Path,
                                                                              wavs: list[bytes]):
    from tests.app.conftest import add, make_settings, reindex

    settings: Settings = make_settings(tmp_path, bundle_dir)
    with TestClient(create_app(settings)) as client:
        add(client, wavs[0], "a")
        good = reindex(client)["result"]["generation"]
        version = client.get("/readyz").json()["model_version"]
        other = IndexStore(settings.index_dir)  # another process publishes a snapshot whose index is damaged
        d = 8
        rng = np.random.default_rng(0)
        damaged = build_snapshot(model_version=version, track_ids=np.arange(3),
                                 gaussians=Gaussians(*(rng.normal(size=(3, d)) for _ in range(3))))
        folder = other.save(damaged)
        (folder / "index.faiss").write_bytes(b"not an index")
        time.sleep(POINTER_CHECK_S + 0.1)
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["generation"] == good
        assert "could not be loaded" in ready.json()["problem"]
        answer = client.post("/v1/emotion-to-music", json={"emotion": "calm", "k": 5}).json()
        assert answer["index_generation"] == good and len(answer["results"]) == 1
