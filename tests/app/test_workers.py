"""Several server processes on one data folder: they share the snapshot on disk through memory mapping and each
swaps to a new generation within a second of its publication; a newer snapshot that cannot be read leaves the
last good one serving and /readyz says why, and a restart on it builds a new one from the database."""

import asyncio
import http.client
import json
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app.balance import SLACK, fair_share
from app.index import POINTER_CHECK_S, IndexStore, build_snapshot
from app.main import create_app
from app.settings import Settings
from models.scoring import Gaussians
from moodspace import cli
from tests.app.conftest import AUTH, TOKEN
from tests.app.servers import start_server
from training.corpus.generate import synth_corpus

runner = CliRunner()
SWAP_BOUND_S = 1.0  # the bound: no worker serves an old generation longer than this after the swap


def _serve(env: dict[str, str], workers: int) -> tuple[subprocess.Popen, str]:
    return start_server(env, workers=workers, new_session=True)


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


DAMAGE = {"flat": ("index.faiss", lambda data: b"not an index"),
          "sq8": ("codes_scale.npz", lambda data: data[: len(data) // 2])}  # a truncated zip: not an OSError


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_a_newer_snapshot_that_cannot_be_read_leaves_the_last_good_one_serving(tmp_path: Path, bundle_dir: Path,
                                                                              wavs: list[bytes], kind: str):
    from tests.app.conftest import add, make_settings, reindex

    settings: Settings = make_settings(tmp_path, bundle_dir, index_kind=kind)
    with TestClient(create_app(settings)) as client:
        add(client, wavs[0], "a")
        good = reindex(client)["result"]["generation"]
        version = client.get("/readyz").json()["model_version"]
        other = IndexStore(settings.index_dir)  # another process publishes a snapshot whose index is damaged
        d = 8
        rng = np.random.default_rng(0)
        damaged = build_snapshot(model_version=version, track_ids=np.arange(3), kind=kind,
                                 gaussians=Gaussians(*(rng.normal(size=(3, d)) for _ in range(3))))
        folder = other.save(damaged)
        name, damage = DAMAGE[kind]
        (folder / name).write_bytes(damage((folder / name).read_bytes()))
        time.sleep(POINTER_CHECK_S + 0.1)
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["generation"] == good
        assert "could not be loaded" in ready.json()["problem"]
        answer = client.post("/v1/emotion-to-music", json={"emotion": "calm", "k": 5}).json()
        assert answer["index_generation"] == good and len(answer["results"]) == 1
    with TestClient(create_app(settings)) as client:  # a restart on the damaged snapshot builds a new one
        answer = client.post("/v1/emotion-to-music", json={"emotion": "calm", "k": 5}).json()
        assert answer["index_generation"] not in (good, damaged.generation) and len(answer["results"]) == 1
        assert "problem" not in client.get("/readyz").json()


def _workers(server: subprocess.Popen) -> list[int]:
    """The uvicorn worker processes under ``server`` (not their decoding pools' starters or multiprocessing's
    resource tracker)."""
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    helpers = (b"forkserver", b"resource_tracker")
    return [int(pid) for pid in children if not any(h in Path(f"/proc/{pid}/cmdline").read_bytes() for h in helpers)]


def test_keep_alive_connections_crowded_into_one_worker_spread_over_both(tmp_path: Path, bundle_dir: Path):
    """With one worker stopped, all 12 connections land on the other; once both run, the crowded one closes
    connections past its share after an answer, the clients reopen them, and they come to rest within the slack of
    an even split. Every request is answered."""
    env = {"MOODSPACE_DATA_DIR": str(tmp_path / "data"), "MOODSPACE_BUNDLE": str(bundle_dir),
           "MOODSPACE_DECODE_PROCESSES": "1"}
    process, url = _serve(env, workers=2)
    port = int(url.rsplit(":", 1)[1])
    try:
        first, second = _workers(process)
        os.kill(second, signal.SIGSTOP)
        try:
            connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=30) for _ in range(12)]
            for connection in connections:
                connection.connect()
            pids = [_ready_pid(connection) for connection in connections]
        finally:
            os.kill(second, signal.SIGCONT)
        assert pids == [first] * 12
        for _ in range(BALANCE_ROUNDS):  # rounds of one request per connection; http.client reopens a closed one
            counts = Counter(_ready_pid(connection) for connection in connections)  # by pid (a replaced worker too)
            if len(counts) == 2 and max(counts.values()) <= fair_share(12, 2) + SLACK:
                break
        assert len(counts) == 2 and max(counts.values()) <= fair_share(12, 2) + SLACK, counts
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(60)


BALANCE_ROUNDS = 40  # a reopened connection goes to the crowded worker again when the other is slow to accept (a
# loaded machine: 10 rounds left 8 / 4 once in CI); the rounds stop as soon as the split is even


def _ready_pid(connection: http.client.HTTPConnection) -> int:
    connection.request("GET", "/readyz")
    response = connection.getresponse()
    body = json.loads(response.read())
    assert response.status == 200, body
    return int(body["pid"])


LOAD_CLIENTS = 32
LOAD_QUERIES = [{"point": {"valence": v, "arousal": a}, "k": 10} for v, a in ((0.6, 0.4), (-0.5, 0.3), (0.2, -0.6))]


async def _load(url: str, stop: threading.Event, answers: list[tuple[int, str, tuple]], failures: list[str]) -> None:
    """32 clients, each sending its next query when the previous answer arrives, until ``stop``."""
    limits = httpx.Limits(max_connections=LOAD_CLIENTS, max_keepalive_connections=LOAD_CLIENTS)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        async def one(c: int) -> None:
            i = c
            while not stop.is_set():
                query = i % len(LOAD_QUERIES)
                try:
                    response = await client.post("/v1/emotion-to-music", json=LOAD_QUERIES[query])
                except httpx.HTTPError as error:
                    failures.append(repr(error))
                else:
                    if response.status_code != 200:
                        failures.append(f"{response.status_code} {response.text[:200]}")
                    else:
                        body = response.json()
                        ranking = tuple(r["track_id"] for r in body["results"])
                        answers.append((query, body["index_generation"], ranking))
                i += 1
        await asyncio.gather(*(one(c) for c in range(LOAD_CLIENTS)))


@pytest.mark.slow
def test_32_clients_during_two_reindexes_get_no_failure_and_each_answer_from_one_generation(tmp_path: Path,
                                                                                           bundle_dir: Path):
    """The issue's load test: two workers, 32 clients for a bounded time while two reindexes and an ingest (which
    changes the rankings) publish new generations. No request fails, and all answers that name one generation
    rank the same tracks in the same order: no answer mixes two snapshots. (Scores are left out: a query
    embedded in a batch with others differs from one embedded alone in the last bits of float32.)"""
    env = {"MOODSPACE_DATA_DIR": str(tmp_path / "data"), "MOODSPACE_BUNDLE": str(bundle_dir),
           "MOODSPACE_DECODE_PROCESSES": "1", "MOODSPACE_ADMIN_TOKEN": TOKEN}
    first = synth_corpus(n=12, seconds=2, seed=5, out=tmp_path / "one", workers=1, progress=False)
    second = synth_corpus(n=12, seconds=2, seed=6, out=tmp_path / "two", workers=1, progress=False)
    assert runner.invoke(cli.cli, ["ingest", str(first)], env=env).exit_code == 0
    process, url = _serve(env, workers=2)
    stop, answers, failures = threading.Event(), [], []
    driver = threading.Thread(target=lambda: asyncio.run(_load(url, stop, answers, failures)))
    try:
        driver.start()
        pointer = tmp_path / "data" / "indexes" / "current.json"
        _answered_from(answers, json.loads(pointer.read_text())["generation"])  # each generation is seen serving
        with httpx.Client(base_url=url, headers=AUTH, timeout=120) as admin:
            _answered_from(answers, _reindex(admin))
            added = runner.invoke(cli.cli, ["ingest", str(second)], env=env)
            assert added.exit_code == 0, added.output
            _answered_from(answers, json.loads(pointer.read_text())["generation"])
            _answered_from(answers, _reindex(admin))
        time.sleep(2 * SWAP_BOUND_S)
    finally:
        stop.set()
        driver.join(120)
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)
    assert not failures, failures[:3]
    rankings: dict[tuple[int, str], set[tuple]] = {}
    for query, generation, ranking in answers:
        rankings.setdefault((query, generation), set()).add(ranking)
    generations = {generation for _, generation in rankings}
    assert len(answers) > 200 and len(generations) >= 3, (len(answers), generations)  # reindex, ingest, reindex
    assert all(len(seen) == 1 for seen in rankings.values()), {k: len(v) for k, v in rankings.items()}
    assert len({r for (q, _), (r,) in rankings.items() if q == 0}) >= 2, "the ingest should change the ranking"


def _answered_from(answers: list[tuple[int, str, tuple]], generation: str, timeout_s: float = 20.0) -> None:
    """Wait (at most ``timeout_s``) until an answer names ``generation``: the load goes on meanwhile, and a
    generation that never serves is left for the test's assertions to report."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not any(g == generation for _, g, _ in list(answers)):
        time.sleep(0.05)


def _reindex(admin: httpx.Client) -> str:
    """The generation a reindex published."""
    job = admin.post("/v1/admin/reindex")
    assert job.status_code == 202, job.text
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        body = admin.get(f"/v1/admin/jobs/{job.json()['job_id']}").json()
        if body["state"] in ("succeeded", "failed"):
            assert body["state"] == "succeeded"
            return str(body["result"]["generation"])
        time.sleep(0.05)
    raise AssertionError("the reindex did not finish")
