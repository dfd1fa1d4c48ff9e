"""``moodspace serve``, ``ingest`` and ``reindex``, registered into the ``moodspace`` command through the
``moodspace.cli`` entry point. All honour the MOODSPACE_* settings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from tqdm import tqdm

from app import catalog
from app.ingest import ingest_audio
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
        """Embed audio into the catalogue; files already there (same content) are skipped."""
        services = Services.start(Settings())
        services.require_embedder()
        items = list(sources(source))
        counts = {"added": 0, "present": 0, "failed": 0}
        try:
            for file, title, artist, tags in tqdm(items, desc="ingest", unit="file"):
                try:
                    with services.sessions() as session:
                        added = ingest_audio(session, services, data=file.read_bytes(), title=title,
                                             artist=artist, source="ingest", tags=tags)
                        session.commit()
                    counts["added" if added.created else "present"] += 1
                except (MoodspaceError, OSError) as error:
                    counts["failed"] += 1
                    tqdm.write(f"skipped {file}: {error}")
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
        services = Services.start(Settings())
        try:
            reindex_now(services)
        finally:
            services.close()
