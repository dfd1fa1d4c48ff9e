"""Service fixtures: a tiny bundle, a few generated clips, SQLite and a real PostgreSQL.

PostgreSQL tests use a fresh database per test on the server at ``MOODSPACE_TEST_POSTGRES_URL`` (default: the
local server on 127.0.0.1:5432 with trust auth; `make test` starts one if none answers).
"""

from __future__ import annotations

import io
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import sqlalchemy as sa
import torch
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from models.bundle import load_bundle, save_bundle
from models.config import EncoderConfig, ModelConfig
from models.encoders import CrossModalModel
from models.fusion import RepresentationReplacement
from models.inference import Embedder
from models.song_model import SongModel
from models.text import shipped_version
from tests.models.test_song_model import tiny_song_model
from training.corpus.generate import synth_clip
from training.corpus.synth import SR

POSTGRES = os.environ.get("MOODSPACE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
TOKEN = "test-admin-token"


@pytest.fixture(scope="session")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained but fixed tiny model: the service's behaviour does not depend on its quality."""
    torch.manual_seed(0)
    config = ModelConfig(music=EncoderConfig(kind="bigru", hidden=8, layers=(16,)),
                         emotion=EncoderConfig(kind="bigru", hidden=8, layers=(16,)), d=4)
    return save_bundle(CrossModalModel(config).eval(), tmp_path_factory.mktemp("bundle") / "tiny").path  # type: ignore


def song_model_for(bundle_dir: Path, path: Path, seed: int = 0, *, context: bool = False) -> SongModel:
    """A random song model for the tests' tiny music model (its quality does not matter here); with ``context``,
    a tri-modal one."""
    embedder = Embedder.from_bundle(load_bundle(bundle_dir))
    features = embedder.frontend(np.zeros(22050, np.float32))
    width = embedder.represent_tracks([features])[0].shape[0]
    shape = tiny_song_model(seed, context=context)
    torch.manual_seed(seed)
    config = replace(shape.replacement.fusion.config, dim=16, heads=8, dropout=0.0)
    song = SongModel(RepresentationReplacement(features.shape[1], width, config), shape.reading, features.shape[1],
                     embedder.version, shipped_version(), context=shape.context)
    song.save(path)
    return song


@pytest.fixture(scope="session")
def wavs() -> list[bytes]:
    """Six different 3 s clips as WAV bytes."""
    out = []
    for index in range(6):
        _, y = synth_clip(index, seed=11, seconds=3)
        buffer = io.BytesIO()
        sf.write(buffer, y, SR, format="WAV")
        out.append(buffer.getvalue())
    return out


def _postgres_database() -> Iterator[str]:
    admin = sa.create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    name = f"moodspace_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as error:
        pytest.fail(f"PostgreSQL not reachable at {POSTGRES} ({error.orig}); run scripts/postgres or set "
                    "MOODSPACE_TEST_POSTGRES_URL")
    try:
        yield sa.make_url(POSTGRES).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalogue.db'}"
    else:
        yield from _postgres_database()


def make_settings(tmp_path: Path, bundle_dir: Path, database_url: str | None = None, **overrides: object) -> Settings:
    values = {"data_dir": tmp_path / "data", "database_url": database_url, "bundle": str(bundle_dir),
              "admin_token": TOKEN, "decode_processes": 1, **overrides}
    return Settings(**values)  # type: ignore[arg-type]


@contextmanager
def service(tmp_path: Path, bundle_dir: Path, database: str = "sqlite", **overrides: object) -> Iterator[TestClient]:
    """The app on a fresh SQLite or PostgreSQL database (a PostgreSQL one is dropped afterwards), for fixtures of a
    wider scope than one test."""
    postgres = _postgres_database() if database == "postgresql" else None
    url = f"sqlite:///{tmp_path / 'catalogue.db'}" if postgres is None else next(postgres)
    try:
        with TestClient(create_app(make_settings(tmp_path, bundle_dir, url, **overrides))) as client:
            yield client
    finally:
        if postgres is not None:
            postgres.close()  # drops the database


@pytest.fixture
def settings(tmp_path: Path, bundle_dir: Path) -> Settings:
    return make_settings(tmp_path, bundle_dir)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def any_db_client(tmp_path: Path, bundle_dir: Path, database_url: str) -> Iterator[TestClient]:
    """The service on SQLite and on PostgreSQL."""
    with TestClient(create_app(make_settings(tmp_path, bundle_dir, database_url))) as test_client:
        yield test_client


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def add(client: TestClient, wav: bytes, title: str, artist: str = "A") -> dict:
    response = client.post("/v1/admin/tracks", headers=AUTH, files={"file": (f"{title}.wav", wav, "audio/wav")},
                           data={"title": title, "artist": artist})
    assert response.status_code in (200, 201), response.text
    return response.json()


GENRES = ("jazz", "rock", "jazz", "folk", "rock", "jazz")  # of the six ``wavs`` in a ``genre_catalogue``


@contextmanager
def genre_catalogue(folder: Path, bundle: Path, wavs: list[bytes]) -> Iterator[tuple[TestClient, list[dict], Path]]:
    """The six clips as "Track k" of "Band k % 3" with ``GENRES``, indexed: the client, the tracks as added and
    the SQLite catalogue's path."""
    with service(folder, bundle) as client:
        tracks = []
        for k, wav in enumerate(wavs):
            response = client.post("/v1/admin/tracks", headers=AUTH, files={"file": (f"t{k}.wav", wav)},
                                   data={"title": f"Track {k}", "artist": f"Band {k % 3}", "genre": GENRES[k]})
            assert response.status_code == 201, response.text
            tracks.append(response.json()["track"])
        reindex(client)
        yield client, tracks, folder / "catalogue.db"


def reindex(client: TestClient) -> dict:
    response = client.post("/v1/admin/reindex", headers=AUTH)
    assert response.status_code == 202, response.text
    return wait_for_job(client, response.json()["job_id"])


def record_threads(monkeypatch: pytest.MonkeyPatch, module: object, name: str) -> list[str]:
    """Wrap ``module.name`` so that every call adds the name of the thread it runs on to the returned list."""
    threads: list[str] = []
    original = getattr(module, name)

    def recording(*args: object, **kwargs: object) -> object:
        threads.append(threading.current_thread().name)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, recording)
    return threads


def wait_for_job(client: TestClient, job_id: str) -> dict:
    """The job once it has succeeded or failed (about 12 s at most)."""
    for _ in range(600):
        job = client.get(f"/v1/admin/jobs/{job_id}", headers=AUTH).json()
        if job["state"] in ("succeeded", "failed"):
            return job
        time.sleep(0.02)
    raise AssertionError(f"the job did not finish: {job}")


@pytest.fixture(scope="session")
def story_bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model with text heads whose VA bridge learned four clearly different moods, and both categorical
    heads (untrained: tracks that feel alike are ranked by their class probabilities)."""
    import numpy as np

    from models.config import TextConfig
    from models.text import sentence_encoder
    from tests.training.test_text import MOODS
    from training.text import TextSet, TextTrainConfig, train_va_bridge, with_text_heads

    torch.manual_seed(0)
    config = ModelConfig(music=EncoderConfig(kind="bigru", hidden=8, layers=(16,)),
                         emotion=EncoderConfig(kind="bigru", hidden=8, layers=(16,)), d=4,
                         taxonomies=("quadrant", "mirex_cluster"))
    model = with_text_heads(CrossModalModel(config), TextConfig(layers=(32,)))
    texts = [t for _, _, group in MOODS.values() for t in group]
    va = np.array([[(v - 3) / 2, (a - 3) / 2] for v, a, group in MOODS.values() for _ in group])
    data = TextSet(sentence_encoder().encode(texts), va)
    train_va_bridge(model, data, data, TextTrainConfig(epochs=150, patience=150))
    metrics = {"text": {"encoder": sentence_encoder().version}}
    return save_bundle(model.eval(), tmp_path_factory.mktemp("bundle") / "story",  # type: ignore[return-value]
                       metrics=metrics).path
