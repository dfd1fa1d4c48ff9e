"""Crash and load checks over real processes and real HTTP (slow marker; .ci/run runs them with a time cap)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
import torch

from models.bundle import save_bundle
from models.config import EncoderConfig, ModelConfig
from models.encoders import CrossModalModel
from tests.app.conftest import AUTH, TOKEN
from tests.app.servers import start_server
from training.corpus.generate import synth_corpus

pytestmark = pytest.mark.slow


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "moodspace.cli", *args], env={**os.environ, **env},
                          capture_output=True, text=True, check=False, timeout=600)


class Server:
    def __init__(self, env: dict[str, str]) -> None:
        self.process, self.url = start_server(env, timeout_s=60)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("clips")
    first = synth_corpus(n=15, seconds=8, seed=21, out=root / "first", workers=2, progress=False)
    second = synth_corpus(n=60, seconds=8, seed=22, out=root / "second", workers=2, progress=False)
    return first.parent / "audio", second.parent / "audio"


def _other_bundle(tmp: Path) -> Path:
    torch.manual_seed(99)
    config = ModelConfig(music=EncoderConfig(kind="bigru", hidden=8, layers=(16,)),
                         emotion=EncoderConfig(kind="bigru", hidden=8, layers=(16,)), d=4)
    return save_bundle(CrossModalModel(config).eval(), tmp / "other").path  # type: ignore[return-value]


def test_kill_9_during_a_reindex_loses_nothing_and_the_old_index_serves(tmp_path, bundle_dir, clips):
    env = {"MOODSPACE_DATA_DIR": str(tmp_path / "data"), "MOODSPACE_BUNDLE": str(bundle_dir),
           "MOODSPACE_ADMIN_TOKEN": TOKEN}
    assert _run(env, "ingest", str(clips[0])).returncode == 0  # 15 tracks, indexed
    # 60 more tracks embedded by another model version only: the next reindex has to embed them all.
    other = {**env, "MOODSPACE_BUNDLE": str(_other_bundle(tmp_path))}
    assert _run(other, "ingest", str(clips[1]), "--no-reindex").returncode == 0
    server = Server(env)
    job = httpx.post(f"{server.url}/v1/admin/reindex", headers=AUTH).json()
    for _ in range(3000):
        state = httpx.get(f"{server.url}/v1/admin/jobs/{job['job_id']}", headers=AUTH).json()
        if state["message"].startswith("embedded"):
            break
        time.sleep(0.01)
    assert state["state"] == "running" and 0 < state["progress"] < 0.8
    server.process.kill()  # SIGKILL in the middle of the job
    server.process.wait(10)

    server = Server(env)
    try:
        assert httpx.get(f"{server.url}/readyz").json()["index_size"] == 15  # the old index serves
        answer = httpx.post(f"{server.url}/v1/emotion-to-music", json={"emotion": "calm", "k": 50}).json()
        assert len(answer["results"]) == 15
        stale = httpx.get(f"{server.url}/v1/admin/jobs/{job['job_id']}", headers=AUTH).json()
        assert stale["state"] == "failed" and "interrupted" in stale["message"]
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'data' / 'moodspace.db'}")
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT COUNT(*) FROM tracks")).scalar() == 75
            duplicates = connection.execute(sa.text(
                "SELECT COUNT(*) FROM (SELECT track_id, model_version FROM embeddings "
                "GROUP BY track_id, model_version HAVING COUNT(*) > 1)")).scalar()
            assert duplicates == 0
        engine.dispose()
        state = _reindex_and_wait(server.url)
        assert state["state"] == "succeeded" and state["result"]["size"] == 75
        assert httpx.get(f"{server.url}/readyz").json()["index_size"] == 75
    finally:
        server.stop()


def _reindex_and_wait(url: str) -> dict:
    """Ask for a reindex and poll its job until it ends (up to 150 s); the job's last state."""
    job = httpx.post(f"{url}/v1/admin/reindex", headers=AUTH).json()
    for _ in range(3000):
        state = httpx.get(f"{url}/v1/admin/jobs/{job['job_id']}", headers=AUTH).json()
        if state["state"] in ("succeeded", "failed"):
            break
        time.sleep(0.05)
    return state


def test_queries_over_http_never_fail_while_reindexes_swap(tmp_path, bundle_dir, clips):
    env = {"MOODSPACE_DATA_DIR": str(tmp_path / "data"), "MOODSPACE_BUNDLE": str(bundle_dir),
           "MOODSPACE_ADMIN_TOKEN": TOKEN}
    assert _run(env, "ingest", str(clips[0])).returncode == 0
    server = Server(env)
    failures: list[str] = []
    sent = [0]
    stop = threading.Event()

    def query() -> None:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            while not stop.is_set():
                response = client.post("/v1/emotion-to-music", json={"point": {"valence": 0.3, "arousal": 0.2}})
                sent[0] += 1
                if response.status_code != 200 or len(response.json()["results"]) != 10:
                    failures.append(response.text)

    threads = [threading.Thread(target=query) for _ in range(4)]
    try:
        for thread in threads:
            thread.start()
        swaps, deadline = 0, time.monotonic() + 300
        with httpx.Client(base_url=server.url, headers=AUTH, timeout=60) as admin:
            # At least 10 swaps and 200 queries around them, however fast either side runs on this machine.
            while (swaps < 10 or sent[0] < 200) and time.monotonic() < deadline:
                job = admin.post("/v1/admin/reindex").json()
                while admin.get(f"/v1/admin/jobs/{job['job_id']}").json()["state"] not in ("succeeded", "failed"):
                    time.sleep(0.02)
                swaps += 1
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        server.stop()
    assert swaps >= 10 and sent[0] >= 200 and not failures, (swaps, sent[0], failures[:3])


def test_a_full_disk_during_reindex_fails_the_job_and_the_old_index_serves(tmp_path, bundle_dir, clips):
    """A real full file system: a 1 MiB tmpfs mounted over the index folder (needs root, as CI runs)."""
    env = {"MOODSPACE_DATA_DIR": str(tmp_path / "data"), "MOODSPACE_BUNDLE": str(bundle_dir),
           "MOODSPACE_ADMIN_TOKEN": TOKEN}
    assert _run(env, "ingest", str(clips[0])).returncode == 0
    indexes = tmp_path / "data" / "indexes"
    saved = tmp_path / "saved-indexes"
    indexes.rename(saved)
    indexes.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(indexes)], capture_output=True,
                             text=True, check=False)
    assert mounted.returncode == 0, f"this check mounts a tmpfs and needs root: {mounted.stderr}"
    try:
        subprocess.run(["cp", "-a", f"{saved}/.", str(indexes)], check=True)
        filler = indexes / "filler"
        subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=4k", "count=1024"], capture_output=True,
                       check=False)  # fills what is left of the 1 MiB
        server = Server(env)
        try:
            assert _run(env, "ingest", str(clips[1]), "--no-reindex").returncode == 0
            state = _reindex_and_wait(server.url)
            assert state["state"] == "failed" and "No space left on device" in state["message"]
            assert httpx.get(f"{server.url}/readyz").json()["index_size"] == 15
            answer = httpx.post(f"{server.url}/v1/emotion-to-music", json={"emotion": "sad", "k": 50}).json()
            assert len(answer["results"]) == 15
        finally:
            server.stop()
    finally:
        subprocess.run(["umount", str(indexes)], check=False)
