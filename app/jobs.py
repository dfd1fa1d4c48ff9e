"""The reindex job: embed tracks that have no embedding for the current model, build a new index snapshot from
the database, publish it. Runs on the services' single job thread; the old snapshot serves until the new one is
complete, and a failure leaves it serving."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from app import catalog
from app.ingest import reembed
from app.services import Services
from app.tables import Job, JobState, utcnow

log = logging.getLogger(__name__)
COMMIT_EVERY = 20


def submit_reindex(services: Services) -> tuple[Job, bool]:
    """Queue a reindex, or return the one that is queued or running. Returns (job, created)."""
    services.require_model()
    with services.sessions() as session:
        job, created = catalog.start_job(session, "reindex")
    if created:
        services.executor.submit(run_reindex, services, job.id)
    return job, created


def _progress(services: Services, job_id: str) -> Callable[[float, str], None]:
    def report(progress: float, message: str) -> None:
        with services.sessions() as session:
            catalog.update_job(session, job_id, progress=round(progress, 4), message=message)
            session.commit()

    return report


def embed_missing(services: Services, report: Callable[[float, str], None]) -> int:
    """Embed every track without an embedding (or its spans) for the current model version, from its stored
    audio."""
    model = services.require_model()
    with services.sessions() as session:
        song_model = model.song_model.version if model.song_model is not None else None
        missing = catalog.tracks_to_embed(session, model.embedder.version, song_model)
        for done, track in enumerate(missing, start=1):
            reembed(session, model, track, data_dir=services.settings.data_dir)
            if done % COMMIT_EVERY == 0 or done == len(missing):
                session.commit()
                report(0.8 * done / len(missing), f"embedded {done}/{len(missing)} tracks")
    return len(missing)


def run_reindex(services: Services, job_id: str, *, serving: bool = True) -> None:
    """Embed what is missing, build and publish a snapshot. ``serving``: this process serves requests (the
    service's job) and swaps to the snapshot at once; a command-line job only publishes it."""
    report = _progress(services, job_id)
    start = time.perf_counter()
    with services.sessions() as session:
        catalog.update_job(session, job_id, state=JobState.running.value, started_at=utcnow(), message="started")
        session.commit()
    try:
        embedded = embed_missing(services, report)
        report(0.85, "building the index")
        snapshot = services.build_index()
        report(0.95, "saving the index")
        services.store.publish(snapshot)
        services.metrics.index_size.set(snapshot.size)
        result = {"size": snapshot.size, "embedded": embedded, "generation": snapshot.generation,
                  "model_version": snapshot.model_version, "seconds": round(time.perf_counter() - start, 3)}
        where = ("is serving" if serving else
                 "built; a server on this data folder swaps to it within a second")
        state, message = JobState.succeeded.value, f"index of {snapshot.size} tracks {where}"
    except Exception as error:  # a job reports every failure in its row; the old index keeps serving
        log.exception("reindex %s failed", job_id)
        result, state, message = {}, JobState.failed.value, f"{type(error).__name__}: {error}"
    final = {"state": state, "message": message, "result": result, "finished_at": utcnow()}
    with services.sessions() as session:
        catalog.update_job(session, job_id, **final, **({"progress": 1.0} if state == JobState.succeeded else {}))
        session.commit()
