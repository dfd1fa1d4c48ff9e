"""``moodspace serve``, ``ingest`` and ``reindex``, registered into the ``moodspace`` command through the
``moodspace.cli`` entry point. All honour the MOODSPACE_* settings."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from tqdm import tqdm

from app import catalog
from app.decoding import Pending
from app.ingest import already_embedded, ingest_audio
from app.jobs import run_reindex
from app.services import Services
from app.settings import Settings
from models.errors import MoodspaceError
from models.manifest import audio_path, read_manifest

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif"}


def sources(path: Path) -> Iterator[tuple[Path, str, str, tuple[str, ...]]]:
    """(audio file, title, artist, tags) for a manifest, a folder of audio files (recursively) or one file."""
    if path.suffix == ".jsonl":
        for clip in read_manifest(path):
            yield audio_path(path, clip), clip.title or clip.id, clip.artist, clip.tags
    elif path.is_dir():
        for file in sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES):
            yield file, file.stem, "", ()
    elif path.is_file():
        yield path, path.stem, "", ()
    else:
        raise MoodspaceError(f"{path}: no such file or folder")


Source = tuple[Path, str, str, tuple[str, ...]]


def ingest_files(services: Services, items: list[Source]) -> dict[str, int]:
    """Ingest files in order, keeping twice as many decodes in flight as there are decoding processes."""
    counts = {"added": 0, "present": 0, "failed": 0}
    workers = services.require_audio()
    in_flight: deque[tuple[Source, bytes, Pending]] = deque()

    def finish() -> None:
        (file, title, artist, tags), data, pending = in_flight.popleft()
        try:
            decoded = pending.result()
            with services.sessions() as session:
                added = ingest_audio(session, services, data=data, title=title, artist=artist, source="ingest",
                                     tags=tags, decoded=decoded)
                session.commit()
            counts["added" if added.created else "present"] += 1
        except MoodspaceError as error:
            counts["failed"] += 1
            tqdm.write(f"skipped {file}: {error}")
        bar.update()

    with tqdm(total=len(items), desc="ingest", unit="file") as bar:
        for item in items:
            try:
                data = item[0].read_bytes()
            except OSError as error:
                counts["failed"] += 1
                tqdm.write(f"skipped {item[0]}: {error}")
                bar.update()
                continue
            with services.sessions() as session:
                if already_embedded(session, services, data):
                    counts["present"] += 1
                    bar.update()
                    continue
            in_flight.append((item, data, workers.submit(data, name=item[1])))
            while len(in_flight) >= 2 * workers.processes:
                finish()
        while in_flight:
            finish()
    return counts


def reindex_now(services: Services) -> None:
    """Run a reindex in this process, unless one is already running."""
    with services.sessions() as session:
        job, created = catalog.start_job(session, "reindex")
    if not created:
        raise MoodspaceError(f"a reindex is already {job.state} (job {job.id})")
    run_reindex(services, job.id)
    with services.sessions() as session:
        done = catalog.get_job(session, job.id)
        assert done is not None
    typer.echo(f"reindex {done.state}: {done.message}")
    if done.state != "succeeded":
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="Port.")] = 8000,
        log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    ) -> None:
        """Start the HTTP service (OpenAPI at /docs)."""
        import uvicorn

        from app.main import create_app

        typer.echo(f"moodspace serving on http://{host}:{port}/  (API docs: http://{host}:{port}/docs)")
        uvicorn.run(create_app(Settings()), host=host, port=port, log_level=log_level)

    @app.command("ingest")
    def ingest(
        source: Annotated[Path, typer.Argument(help="A manifest (.jsonl), a folder of audio files, or one file.")],
        reindex: Annotated[bool, typer.Option(help="Rebuild the index afterwards.")] = True,
    ) -> None:
        """Embed audio into the catalogue; files already there (same content) are skipped. Decoding runs on one
        worker process per core (MOODSPACE_DECODE_PROCESSES), several files in flight."""
        settings = Settings()
        if "MOODSPACE_DECODE_PROCESSES" not in os.environ:
            settings = settings.model_copy(update={"decode_processes": os.cpu_count() or 1})
        services = Services.start(settings, text=False)
        services.require_embedder()
        try:
            counts = ingest_files(services, list(sources(source)))
            typer.echo(f"added {counts['added']}, already present {counts['present']}, failed {counts['failed']}")
            if reindex:
                reindex_now(services)
        finally:
            services.close()
        if counts["failed"]:
            raise typer.Exit(1)

    @app.command("reindex")
    def reindex_command() -> None:
        """Embed tracks missing an embedding for the current model, rebuild and publish the index."""
        services = Services.start(Settings(), text=False)
        try:
            reindex_now(services)
        finally:
            services.close()
