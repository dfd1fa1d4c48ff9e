"""The heavy objects of a running service, made once in the lifespan (or by a command-line job) and reached through
small typed dependencies: handlers ask for the settings, the embedder, the audio workers or the serving index, not
for the whole bundle of them.

``Services.start`` builds everything before it returns an immutable ``Services``: the database (migrated), the
index store, the model (``Model``: the embedder and the decoding workers for its front end) or the reason there is
none, the job thread and the metrics. The index store swaps snapshots itself; nothing else changes afterwards.
"""

from __future__ import annotations

import ctypes
import fcntl
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app import catalog
from app.db import make_engine, upgrade
from app.decoding import AudioWorkers
from app.errors import NotReadyError
from app.index import IndexStore, SearchIndex, SnapshotStore
from app.metrics import Metrics
from app.query_thread import BatchAnswer, QueryThread
from app.settings import Settings
from models.bundle import load_bundle
from models.default import resolve_bundle
from models.errors import MoodspaceError
from models.inference import Embedder
from models.song_model import SongModel
from models.songtext import SongReadings, SongTextModel
from models.text import sentence_encoder

log = logging.getLogger(__name__)
T = TypeVar("T")
Q = TypeVar("Q")
R = TypeVar("R")


@dataclass(frozen=True)
class Model:
    """A loaded bundle and the decoding processes for its front end."""

    embedder: Embedder
    audio: AudioWorkers
    song_text: SongTextModel | None = None  # lyrics and title/artist readings, where the settings name a model
    song_model: SongModel | None = None  # lyrics read with the audio into the embedding (of this music model)

    def read_song(self, audio: tuple[float, float], *, title: str, artist: str, lyrics: str | None
                  ) -> SongReadings | None:
        """The audio, lyrics, title/artist and fused readings of a song whose audio reads ``audio``; None without
        a song-text model."""
        if self.song_text is None:
            return None
        return self.song_text.read_song(audio, lyrics=lyrics, title=title, artist=artist,
                                        music_model=self.embedder.version)


@dataclass(frozen=True)
class Services:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    store: SnapshotStore[Any]
    model: Model | None
    problem: str = ""  # why there is no model, if there is none
    executor: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="job"))
    queries: QueryThread = field(default_factory=lambda: QueryThread(max_batch=1))
    metrics: Metrics = field(default_factory=Metrics)

    @classmethod
    def start(cls, settings: Settings, *, embedder: Embedder | None = None, text: bool = True,
              batch: bool = False) -> Services:
        """Migrate the database, fail jobs a dead process left running, load the model and the index; with
        ``text``, the sentence encoder too (command-line jobs that never read text leave it out). ``batch``: a
        command-line job, whose decoding pool uses every core unless the settings say otherwise."""
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        with startup_lock(settings.data_dir):
            if settings.migrate_on_start:
                upgrade(settings.db_url)
            engine = make_engine(settings.db_url)
            sessions = sessionmaker(engine, expire_on_commit=False)
            with sessions() as session:
                if catalog.fail_interrupted_jobs(session):
                    log.warning("marked jobs interrupted by a previous stop as failed")
                session.commit()
        model, problem = load_model(settings, embedder=embedder, text=text, batch=batch)  # in parallel
        services = cls(settings, engine, sessions, make_store(settings), model, problem,
                       queries=QueryThread(max_batch=settings.query_batch))
        if model is not None:
            with startup_lock(settings.data_dir):  # the first process builds a missing index, the rest load it
                services.load_index()
        return services

    def load_index(self) -> SearchIndex:
        """The saved snapshot for the model version, or a fresh build from the database."""
        embedder = self.require_model().embedder
        snapshot = self.store.load_current(embedder.version)
        if snapshot is None:
            snapshot = self.build_index()
            self.store.publish(snapshot)
        self.metrics.index_size.set(snapshot.size)
        self.metrics.model_info.info({"version": embedder.version})
        return snapshot

    def build_index(self) -> SearchIndex:
        """A snapshot of every embedding of the model version in the database (not yet published)."""
        snapshot = self._index_from_database()
        release_free_memory()  # the rows read are garbage now
        return snapshot

    def _index_from_database(self) -> SearchIndex:
        version = self.require_model().embedder.version
        with self.sessions() as session:
            rows = catalog.embeddings_for_version(session, version)
            fields = catalog.filter_fields(session, rows.track_ids) if self.store.wants_fields else None
            spans = catalog.spans_for_version(session, version)
        return self.store.build(model_version=version, track_ids=rows.track_ids, gaussians=rows.gaussians,
                                fields=fields, spans=spans)

    async def answer(self, work: Callable[[], T]) -> T:
        """Run a short query (a point, a named emotion or a paragraph over the track index: milliseconds) on
        this process's query thread. One thread answers them in the order they came while the event loop reads and
        writes connections: every client waits about as long as the next (in the thread pool, 40 threads took
        turns on the interpreter lock, and each answer cost twice the work; run on the event loop, a query waited
        a varying number of loop turns, and p99 was twice p50). Longer work (curves, span searches, uploads) stays
        in the thread pool, so a slow query cannot hold up the quick ones behind it."""
        return await self.queries.run(work)

    async def answer_batched(self, answer: BatchAnswer[Q, R], query: Q) -> R:
        """``answer`` (a whole batch of queries of one kind) for ``query``, on the query thread with the queries of
        that kind that wait with it (``app.query_thread``)."""
        return await self.queries.batched(answer, query)

    def require_model(self) -> Model:
        if self.model is None:
            raise NotReadyError(f"no model loaded: {self.problem}")
        return self.model

    def require_index(self) -> SearchIndex:
        if self.model is not None:
            self.store.refresh(self.model.embedder.version)
        snapshot = self.store.current
        if snapshot is None:
            raise NotReadyError("the index is not loaded")
        return snapshot

    @property
    def model_version(self) -> str:
        """The loaded model's version, or "" without a model (the catalogue is still listed)."""
        return self.model.embedder.version if self.model else ""

    @property
    def ready(self) -> bool:
        return self.model is not None and self.store.current is not None

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)
        self.queries.shutdown()
        if self.model is not None:
            self.model.audio.close()
        self.store.close()
        self.engine.dispose()


def release_free_memory() -> None:
    """Give the C heap's free pages back to the system (glibc's ``malloc_trim``): reading every embedding from the
    database to build an index leaves hundreds of MiB of freed rows that glibc would otherwise keep for the
    process."""
    with suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL("libc.so.6").malloc_trim(0)


@contextmanager
def startup_lock(data_dir: Path) -> Iterator[None]:
    """One process at a time migrates the database and builds a missing index: the server processes of one
    ``moodspace serve --workers N`` start together on the same data folder."""
    with open(data_dir / STARTUP_LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


STARTUP_LOCK = ".startup.lock"


def make_store(settings: Settings) -> SnapshotStore[Any]:
    """The index store the settings choose: snapshot files under ``index_dir``, or Milvus."""
    if settings.index_kind != "milvus":
        return IndexStore(settings.index_dir, kind=settings.index_kind, hnsw_m=settings.hnsw_m)
    from app.milvus import MilvusStore  # pymilvus is imported only by this backend

    token = settings.milvus_token.get_secret_value() if settings.milvus_token else ""
    return MilvusStore(settings.milvus_target, alias=settings.milvus_alias, token=token,
                       timeout_s=settings.milvus_timeout_s, replicas=settings.milvus_replicas)
TEXT_CACHE = 4096  # sentences whose encoder vectors the service remembers (1.5 KiB each)


def load_model(settings: Settings, *, embedder: Embedder | None = None, text: bool = True,
               batch: bool = False) -> tuple[Model | None, str]:
    """The model and its decoding workers, or None and the reason (the service then answers 503, not crash)."""
    if embedder is None:
        try:
            embedder = Embedder.from_bundle(load_bundle(resolve_bundle(settings.bundle)))
        except MoodspaceError as error:
            log.error("no model: %s", error)
            return None, str(error)
    audio = AudioWorkers(embedder.config.frontend, timeout_s=settings.decode_timeout_s,
                         max_seconds=settings.max_audio_seconds, processes=settings.decode_pool_size(batch=batch))
    song_text = load_song_text(settings, embedder) if text else None
    song_model = load_song_model(settings, embedder)  # it makes the embedding of a track with lyrics: always
    if text and (embedder.has_text or song_text is not None or song_model is not None):
        encoder = sentence_encoder()  # loaded now, not on the first story or lyrics
        encoder.keep_recent(TEXT_CACHE)
        warn_of_other_text_encoders(embedder, song_text, song_model, running=encoder.version)
    return Model(embedder, audio, song_text, song_model), ""


def warn_of_other_text_encoders(embedder: Embedder, song_text: SongTextModel | None,
                                song_model: SongModel | None = None, *, running: str) -> None:
    """Text heads, song-text readings or a song model fitted on a sentence encoder other than the ``running`` one
    read text wrongly: say so at start."""
    fitted = {"the model's text heads": embedder.text_encoder if embedder.has_text else running,
              "the lyrics and title/artist readings": song_text.text_encoder if song_text else running,
              "the song model's lyrics": song_model.text_encoder if song_model else running}
    for what, version in fitted.items():
        if version != running:
            log.warning("%s were fitted on sentence encoder %s, not %s: their text readings are off until they "
                        "are retrained (moodspace retrain-default --keep-music)", what, version, running)


def load_song_text(settings: Settings, embedder: Embedder) -> SongTextModel | None:
    """The lyrics and title/artist readings, or None (logged) where the settings name none or the file is bad;
    the music endpoints then answer from the audio alone."""
    if settings.song_text is None:
        return None
    try:
        song_text = SongTextModel.load(settings.song_text)
    except (OSError, KeyError, ValueError) as error:
        log.error("no lyrics or title/artist readings: %s: %s", settings.song_text, error)
        return None
    if song_text.audio_model != embedder.version:
        log.warning("%s was fitted with music model %s, not %s: its lyrics and title/artist readings are given, "
                    "the fused reading stays the audio's", settings.song_text, song_text.audio_model, embedder.version)
    return song_text


def load_song_model(settings: Settings, embedder: Embedder) -> SongModel | None:
    """The song model, or None (logged) where the settings name none, the file is bad, or it was fitted with
    another music model (its representation lives in that model's space): tracks are then read from the audio
    alone."""
    if settings.song_model is None:
        return None
    try:
        song_model = SongModel.load(settings.song_model)
    except (OSError, ValueError) as error:
        log.error("no song model: %s: %s", settings.song_model, error)
        return None
    if song_model.music_model != embedder.version:
        log.warning("%s was fitted with music model %s, not %s: lyrics are not read into the embeddings",
                    settings.song_model, song_model.music_model, embedder.version)
        return None
    return song_model


# The dependencies run on the event loop (a plain def would cost a thread hop each). get_index may swap to a
# snapshot another process published: that maps its files (1.8 ms for 100k tracks), once per publication.
async def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_settings(services: ServicesDep) -> Settings:
    return services.settings


async def get_model(services: ServicesDep) -> Model:
    return services.require_model()


async def get_embedder(services: ServicesDep) -> Embedder:
    return services.require_model().embedder


async def get_audio(services: ServicesDep) -> AudioWorkers:
    return services.require_model().audio


async def get_index(services: ServicesDep) -> SearchIndex:
    return services.require_index()


SettingsDep = Annotated[Settings, Depends(get_settings)]
ModelDep = Annotated[Model, Depends(get_model)]
EmbedderDep = Annotated[Embedder, Depends(get_embedder)]
AudioDep = Annotated[AudioWorkers, Depends(get_audio)]
IndexDep = Annotated[SearchIndex, Depends(get_index)]
