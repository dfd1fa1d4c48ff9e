import threading

import pytest
from fastapi.testclient import TestClient

from app import catalog
from app.main import create_app
from app.services import Services
from tests.app.conftest import AUTH, add, make_settings, reindex, wait_for_job


@pytest.fixture
def gate(monkeypatch):
    """Hold the reindex job inside its embedding step until the test opens the gate."""
    import app.jobs

    opened, entered = threading.Event(), threading.Event()
    real = app.jobs.embed_missing

    def held(services, report):
        entered.set()
        assert opened.wait(30)
        return real(services, report)

    monkeypatch.setattr(app.jobs, "embed_missing", held)
    return opened, entered


def test_a_reindex_asked_for_while_one_runs_returns_the_running_job(client: TestClient, wavs, gate):
    opened, entered = gate
    add(client, wavs[0], "a")
    first = client.post("/v1/admin/reindex", headers=AUTH).json()
    assert entered.wait(10)
    second = client.post("/v1/admin/reindex", headers=AUTH)
    assert second.status_code == 202 and second.json()["job_id"] == first["job_id"]
    assert second.json()["state"] == "running"
    opened.set()  # asked again only after the gate opened, the job could be finished already: ask before
    assert wait_for_job(client, first["job_id"])["state"] == "succeeded"
    assert reindex(client)["job_id"] != first["job_id"]  # once finished, a new one can start


def test_queries_keep_succeeding_while_reindexes_swap_the_index(client: TestClient, wavs):
    for i, wav in enumerate(wavs):
        add(client, wav, f"t{i}")
    reindex(client)
    failures, stop = [], threading.Event()

    def query() -> None:
        while not stop.is_set():
            response = client.post("/v1/emotion-to-music", json={"point": {"valence": 0.2, "arousal": 0.1}, "k": 3})
            if response.status_code != 200 or len(response.json()["results"]) != 3:
                failures.append(response.text)

    threads = [threading.Thread(target=query) for _ in range(3)]
    for thread in threads:
        thread.start()
    for _ in range(5):
        assert reindex(client)["state"] == "succeeded"
    stop.set()
    for thread in threads:
        thread.join()
    assert not failures


def test_a_failed_reindex_reports_why_and_the_old_index_serves(client: TestClient, wavs, monkeypatch):
    add(client, wavs[0], "a")
    reindex(client)
    services: Services = client.app.state.services
    before = services.store.current
    add(client, wavs[1], "b")

    def unwritable(snapshot):
        raise PermissionError(13, "Permission denied", str(services.settings.index_dir))

    monkeypatch.setattr(services.store, "save", unwritable)
    job = reindex(client)
    assert job["state"] == "failed" and "Permission denied" in job["message"]
    assert services.store.current is before
    response = client.post("/v1/emotion-to-music", json={"emotion": "calm", "k": 5})
    assert response.status_code == 200 and len(response.json()["results"]) == 1


def test_jobs_interrupted_by_a_crash_are_failed_at_start_and_can_run_again(tmp_path, bundle_dir, database_url, wavs):
    settings = make_settings(tmp_path, bundle_dir, database_url)
    with TestClient(create_app(settings)) as first:
        add(first, wavs[0], "a")
        services: Services = first.app.state.services
        with services.sessions() as session:
            job, created = catalog.start_job(session, "reindex")  # as if the process died mid-job
            assert created
    with TestClient(create_app(settings)) as second:
        stale = second.get(f"/v1/admin/jobs/{job.id}", headers=AUTH).json()
        assert stale["state"] == "failed" and "interrupted" in stale["message"]
        assert reindex(second)["state"] == "succeeded"
        assert second.get("/v1/tracks").json()["total"] == 1


def test_an_index_folder_that_is_not_writable_fails_the_job_and_the_old_index_serves(client: TestClient, wavs):
    import shutil

    add(client, wavs[0], "a")
    reindex(client)
    services: Services = client.app.state.services
    before = services.store.current
    assert before is not None
    folder = services.settings.index_dir / before.model_version
    shutil.rmtree(folder)
    folder.write_text("a file where the index folder should be")
    add(client, wavs[1], "b")
    job = reindex(client)
    assert job["state"] == "failed" and str(folder) in job["message"]
    assert services.store.current is before
    assert len(client.post("/v1/emotion-to-music", json={"emotion": "calm"}).json()["results"]) == 1


def test_a_process_starting_beside_a_running_job_leaves_it_alone(tmp_path, bundle_dir, wavs):
    """Several server processes, or a command-line reindex beside the service: only a job whose owner is gone
    is failed when a process starts."""
    import socket
    import subprocess

    settings = make_settings(tmp_path, bundle_dir)
    alive = subprocess.Popen(["sleep", "60"])
    dead = subprocess.Popen(["true"])
    dead.wait()
    owners = {"alive": f"{socket.gethostname()}:{alive.pid}", "dead": f"{socket.gethostname()}:{dead.pid}",
              "elsewhere": "another-host:1"}
    try:
        with TestClient(create_app(settings)) as first:
            services: Services = first.app.state.services
            ids = {}
            with services.sessions() as session:
                for name, owner in owners.items():
                    job, _ = catalog.start_job(session, f"reindex-{name}")
                    job.owner = owner
                    ids[name] = job.id
                session.commit()
        with TestClient(create_app(settings)) as second:
            states = {name: second.get(f"/v1/admin/jobs/{i}", headers=AUTH).json()["state"] for name, i in ids.items()}
        assert states == {"alive": "queued", "dead": "failed", "elsewhere": "queued"}
    finally:
        alive.kill()
