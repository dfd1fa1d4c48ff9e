"""The heavy objects of a running service, made once in the lifespan and reached through dependencies."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app import catalog
from app.db import make_engine, upgrade
from app.decoding import AudioWorkers
from app.errors import NotReadyError
from app.index import IndexStore, Snapshot, build_snapshot
from app.metrics import Metrics
from app.settings import Settings
from models.bundle import load_bundle
from models.default import resolve_bundle
from models.errors import MoodspaceError
from models.inference import Embedder
from models.text import sentence_encoder

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    store: IndexStore
    embedder: Embedder | None = None
    audio: AudioWorkers | None = None
    problem: str = ""  # why the service is not ready, if it is not
    executor: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="job"))
    metrics: Metrics = field(default_factory=Metrics)

    @classmethod
    def start(cls, settings: Settings, *, embedder: Embedder | None = None, text: bool = True) -> Services:
        """Migrate the database, fail jobs a dead process left running, load the model and the index; with
        ``text``, the sentence encoder too (command-line jobs that never read text leave it out)."""
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        if settings.migrate_on_start:
            upgrade(settings.db_url)
        engine = make_engine(settings.db_url)
        services = cls(settings, engine, sessionmaker(engine, expire_on_commit=False),
                       IndexStore(settings.index_dir))
        with services.sessions() as session:
            if catalog.fail_interrupted_jobs(session):
                log.warning("marked jobs interrupted by a previous stop as failed")
            session.commit()
        services.embedder = embedder or services._load_embedder()
        if services.embedder is not None:
            services.audio = AudioWorkers(services.embedder.config.frontend, timeout_s=settings.decode_timeout_s,
                                          max_seconds=settings.max_audio_seconds, processes=settings.decode_processes)
            if text and services.embedder.has_text:
                sentence_encoder()  # load the frozen text encoder now, not on the first story
            services.load_index()
        return services

    def _load_embedder(self) -> Embedder | None:
        try:
            return Embedder.from_bundle(load_bundle(resolve_bundle(self.settings.bundle)))
        except MoodspaceError as error:
            self.problem = str(error)
            log.error("no model: %s", error)
            return None

    def load_index(self) -> Snapshot:
        """The saved snapshot for the model version, or a fresh build from the database."""
        embedder = self.require_embedder()
        snapshot = self.store.load_current(embedder.version)
        if snapshot is None:
            snapshot = self.build_index()
            self.store.publish(snapshot)
        self.metrics.index_size.set(snapshot.size)
        self.metrics.model_info.info({"version": embedder.version})
        return snapshot

    def build_index(self) -> Snapshot:
        embedder = self.require_embedder()
        with self.sessions() as session:
            rows = catalog.embeddings_for_version(session, embedder.version)
        return build_snapshot(model_version=embedder.version, track_ids=rows.track_ids, gaussians=rows.gaussians,
                              kind=self.settings.index_kind, hnsw_m=self.settings.hnsw_m)

    def require_embedder(self) -> Embedder:
        if self.embedder is None:
            raise NotReadyError(f"no model loaded: {self.problem}")
        return self.embedder

    def require_audio(self) -> AudioWorkers:
        if self.audio is None:
            raise NotReadyError(f"no model loaded: {self.problem}")
        return self.audio

    def require_index(self) -> Snapshot:
        snapshot = self.store.current
        if snapshot is None:
            raise NotReadyError("the index is not loaded")
        return snapshot

    @property
    def ready(self) -> bool:
        return self.embedder is not None and self.store.current is not None

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)
        if self.audio is not None:
            self.audio.close()
        self.engine.dispose()


def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]
