"""``moodspace serve``, ``ingest`` and ``reindex`` (mounted by ``moodspace.cli``). All honour the MOODSPACE_*
settings; this module never imports ``training/``, so the service starts without the trainers."""

from __future__ import annotations

import os
import tempfile
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import typer
from tqdm import tqdm

from app import catalog
from app.decoding import Pending
from app.ingest import already_embedded, ingest_audio
from app.jobs import run_reindex
from app.services import Services
from app.settings import Settings
from app.songinfo import SongInfo, read_sidecar, read_tags
from app.tables import JobState
from models.errors import MoodspaceError
from models.manifest import audio_path, read_manifest

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif"}
LogLevel = Literal["critical", "error", "warning", "info", "debug", "trace"]

cli = typer.Typer()


@dataclass(frozen=True)
class Source:
    """One file to ingest and what the catalogue should call it: ``title`` and ``artist`` where the manifest gives
    them, else the file's own tags, else ``fallback`` (the clip id or the file name) as the title."""

    file: Path
    fallback: str
    title: str = ""
    artist: str = ""
    tags: tuple[str, ...] = ()

    def song(self, data: bytes) -> SongInfo:
        """The file's tags and sidecar lyrics, under what the manifest says; a skipped tag is logged."""
        info = read_tags(data, name=str(self.file))
        if info.lyrics is None:
            lyrics, reason = read_sidecar(self.file)
            if reason:
                tqdm.write(f"{self.file}: lyrics left out: {reason}")
            info = info.overridden_by(lyrics=lyrics)
        info = info.overridden_by(title=self.title, artist=self.artist)
        return info if info.title else info.overridden_by(title=self.fallback)


@dataclass
class IngestCounts:
    added: int = 0
    present: int = 0
    failed: int = 0
    failures: list[str] = field(default_factory=list)


def sources(path: Path) -> Iterator[Source]:
    """The files of a manifest, a folder of audio files (recursively) or one file."""
    if path.suffix == ".jsonl":
        for clip in read_manifest(path):
            yield Source(audio_path(path, clip), clip.id, clip.title, clip.artist, clip.tags)
    elif path.is_dir():
        for file in sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES):
            yield Source(file, file.stem)
    elif path.is_file():
        yield Source(path, path.stem)
    else:
        raise MoodspaceError(f"{path}: no such file or folder")


class Ingester:
    """Ingests files in order, keeping twice as many decodes in flight as there are decoding processes."""

    def __init__(self, services: Services, bar: tqdm) -> None:
        self.services, self.model, self.bar = services, services.require_model(), bar
        self.counts = IngestCounts()
        self.in_flight: deque[tuple[Source, bytes, Pending]] = deque()

    def add(self, item: Source) -> None:
        try:
            data = item.file.read_bytes()
        except OSError as error:
            return self._failed(item, str(error))
        with self.services.sessions() as session:
            if already_embedded(session, data, model_version=self.model.embedder.version):
                self.counts.present += 1
                self.bar.update()
                return None
        self.in_flight.append((item, data, self.model.audio.submit(data, name=item.title or item.fallback)))
        while len(self.in_flight) >= 2 * self.model.audio.processes:
            self.finish()
        return None

    def finish(self) -> None:
        item, data, pending = self.in_flight.popleft()
        try:
            decoded = pending.result()
            with self.services.sessions() as session:
                added = ingest_audio(session, self.model, data_dir=self.services.settings.data_dir, data=data,
                                     source="ingest", tags=item.tags, decoded=decoded, info=item.song(data))
                session.commit()
        except MoodspaceError as error:
            return self._failed(item, str(error))
        if added.created:
            self.counts.added += 1
        else:
            self.counts.present += 1
        self.bar.update()
        return None

    def _failed(self, item: Source, reason: str) -> None:
        self.counts.failed += 1
        self.counts.failures.append(f"{item.file}: {reason}")
        tqdm.write(f"skipped {item.file}: {reason}")
        self.bar.update()


def ingest_files(services: Services, items: list[Source]) -> IngestCounts:
    with tqdm(total=len(items), desc="ingest", unit="file") as bar:
        ingester = Ingester(services, bar)
        for item in items:
            ingester.add(item)
        while ingester.in_flight:
            ingester.finish()
    return ingester.counts


def reindex_now(services: Services) -> None:
    """Run a reindex in this process, unless one is already running."""
    with services.sessions() as session:
        job, created = catalog.start_job(session, "reindex")
    if not created:
        raise MoodspaceError(f"a reindex is already {job.state} (job {job.id})")
    run_reindex(services, job.id, serving=False)
    with services.sessions() as session:
        done = catalog.get_job(session, job.id)
        assert done is not None
    typer.echo(f"reindex {done.state}: {done.message}")
    if done.state != JobState.succeeded:
        raise typer.Exit(1)


@cli.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port.")] = 8000,
    log_level: Annotated[LogLevel, typer.Option(help="uvicorn log level.")] = "info",
    workers: Annotated[int | None, typer.Option(min=1, help="Server processes (MOODSPACE_WORKERS).")] = None,
) -> None:
    """Start the HTTP service (OpenAPI at /docs). With several workers, uvicorn runs one process each on the same
    port; they share the index snapshot on disk (memory-mapped), each swaps to a new generation within a second of
    its publication, and keep-alive connections are balanced among them (``app.balance``)."""
    import uvicorn

    from app import balance

    if workers is not None:
        os.environ["MOODSPACE_WORKERS"] = str(workers)  # the worker processes read their settings again
    settings = Settings()
    if settings.index_kind == "milvus" and settings.milvus_is_embedded and settings.workers > 1:
        raise MoodspaceError(f"milvus-lite ({settings.milvus_target}) serves one process at a time: use one worker, "
                             "or a Milvus server for several (MOODSPACE_MILVUS_URI=http://host:19530)")
    typer.echo(f"data folder: {settings.data_dir}")
    typer.echo(f"moodspace serving on http://{host}:{port}/  (API docs: http://{host}:{port}/docs), "
               f"{settings.workers} worker{'s' if settings.workers > 1 else ''}")
    if settings.workers == 1:
        uvicorn.run("app.main:serving_app", factory=True, host=host, port=port, log_level=log_level)
        return
    with tempfile.TemporaryDirectory(prefix="moodspace-serve-") as folder:  # the processes' connection table
        os.environ[balance.TABLE_ENV] = str(balance.ConnectionTable.create(Path(folder) / "connections"))
        uvicorn.run("app.main:serving_app", factory=True, host=host, port=port, log_level=log_level,
                    workers=settings.workers, http="app.balance:BalancedHttpProtocol")


@cli.command("ingest")
def ingest(
    source: Annotated[Path, typer.Argument(exists=True, help="A manifest (.jsonl), a folder of audio files, or one "
                                                             "file.")],
    reindex: Annotated[bool, typer.Option(help="Rebuild the index afterwards.")] = True,
) -> None:
    """Embed audio into the catalogue; files already there (same content) are skipped. Decoding runs on one
    worker process per core (MOODSPACE_DECODE_PROCESSES), several files in flight."""
    items = list(sources(source))
    settings = Settings()
    typer.echo(f"data folder: {settings.data_dir}")
    services = Services.start(settings, text=False, batch=True)
    try:
        services.require_model()
        counts = ingest_files(services, items)
        typer.echo(f"added {counts.added}, already present {counts.present}, failed {counts.failed}")
        if reindex:
            reindex_now(services)
    finally:
        services.close()
    if counts.failed:
        raise typer.Exit(1)


@cli.command("reindex")
def reindex_command() -> None:
    """Embed tracks missing an embedding for the current model, rebuild and publish the index."""
    settings = Settings()
    typer.echo(f"data folder: {settings.data_dir}")
    services = Services.start(settings, text=False)
    try:
        reindex_now(services)
    finally:
        services.close()
