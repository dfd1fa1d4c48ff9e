"""The service's one settings object, read from the environment (prefix ``MOODSPACE_``)."""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.song_model import SONG_MODEL_PATH
from models.songtext import SONG_TEXT_PATH


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MOODSPACE_", extra="ignore")

    data_dir: Path = Field(Path("data"), description="Audio files, indexes and the default SQLite database; a "
                           "relative path is resolved once, against the working folder of the process that starts.")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default: SQLite file in data_dir.")
    bundle: str | None = Field(None, description="Model bundle folder; 'default' or unset: the built-in model.")
    song_text: Path | None = Field(SONG_TEXT_PATH, description="Lyrics and title/artist readings (.npz, from "
                                   "`moodspace train-song-text`); default: the built-in one; unset: none.")
    song_model: Path | None = Field(SONG_MODEL_PATH, description="Song model that reads a track's lyrics with its "
                                    "audio into the embedding (.pt, from `moodspace train-song-model`); default: "
                                    "the built-in one; unset: the audio alone.")
    admin_token: SecretStr | None = Field(None, description="Bearer token for /v1/admin; unset: admin is off.")
    max_upload_mb: float = Field(50.0, gt=0, description="Largest accepted upload.")
    max_audio_seconds: float = Field(900.0, gt=0, description="Longest accepted audio.")
    max_curve_points: int = Field(5_000, gt=0, description="Most points in a query curve.")
    max_curve_seconds: float = Field(3_600.0, gt=0, description="Longest query curve.")
    max_k: int = Field(200, gt=0, description="Most results per query.")
    decode_timeout_s: float = Field(60.0, gt=0, description="Longest time one upload may take to decode.")
    workers: int = Field(1, gt=0, description="Server processes of `moodspace serve` (they share the index on "
                         "disk and each swaps to a new generation within a second).")
    threads: int = Field(1, gt=0, description=(
        "torch and FAISS threads per server process. One: a request's encoder call and index scan are small, and "
        "two OpenMP thread teams (torch's, FAISS's) spinning on the same cores made a query 7x slower "
        "(docs/experiments.md); parallelism comes from server and decoding processes."))
    decode_processes: int | None = Field(None, gt=0, description=(
        "Processes that decode audio, per server process; unset: the cores shared among the server processes "
        "(at least 1), every core for `moodspace ingest`."))
    query_batch: int = Field(32, gt=0, description=(
        "Most point and named-emotion queries a server process answers in one batch: those that wait while it "
        "answers others share one pass of the emotion encoder and one catalogue listing (app/query_thread.py); 1: "
        "one at a time."))
    max_text_chars: int = Field(20_000, gt=0, description="Longest story text.")
    index_kind: Literal["flat", "fp16", "sq8", "hnsw", "milvus"] = Field("fp16", description=(
        "fp16: half-precision codes scanned first, exact by a certificate, half the bytes of flat (float32 "
        "vectors, exact by the same certificate); sq8: one byte per dimension, a quarter of flat's bytes, exact by "
        "its own certificate; HNSW for size; milvus: a Milvus collection (milvus_uri), for catalogues past one "
        "machine."))
    milvus_uri: str | None = Field(None, description=(
        "Milvus to use with index_kind milvus: http://host:19530 (standalone or cluster, shared by every server "
        "process), or a file path for milvus-lite (embedded, one process at a time); unset: data_dir/milvus.db."))
    milvus_token: SecretStr | None = Field(None, description="Milvus credentials (user:password or an API key).")
    milvus_timeout_s: float = Field(10.0, gt=0, description="Longest wait for one Milvus call.")
    milvus_replicas: int = Field(1, gt=0, description="In-memory replicas of the collection on a Milvus cluster.")
    milvus_alias: str = Field("moodspace", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$", description=(
        "The Milvus alias that names the serving collection; each generation is a collection <alias>_<generation>."))
    rescore_head: int = Field(256, ge=0, description=(
        "Top hits rescored in float64 by HNSW, Milvus and snapshots saved without error bounds, and the first "
        "candidates of an fp16 search; a flat snapshot rescores k + 8 and more only where its certificate asks."))
    hnsw_m: int = Field(32, gt=1)
    hnsw_ef_search: int = Field(128, gt=0)
    migrate_on_start: bool = Field(True, description="Run `alembic upgrade head` when the service starts.")

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @cached_property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'moodspace.db'}"

    @property
    def milvus_target(self) -> str:
        """The Milvus URI: the one set, or milvus-lite's file in data_dir."""
        return self.milvus_uri or str(self.data_dir / "milvus.db")

    @property
    def milvus_is_embedded(self) -> bool:
        """milvus-lite (a file): only one process can open it."""
        return not self.milvus_target.startswith(("http://", "https://", "tcp://", "unix:"))

    @property
    def audio_dir(self) -> Path:
        return self.data_dir / "audio"

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "indexes"

    def decode_pool_size(self, *, batch: bool) -> int:
        """Decoding processes: ``decode_processes`` if set, else for the service the cores divided among its
        ``workers`` (at least one each), and every core for a batch job (a command-line ingest or reindex)."""
        if self.decode_processes is not None:
            return self.decode_processes
        return (os.cpu_count() or 1) if batch else self.cores_per_worker

    @property
    def cores_per_worker(self) -> int:
        """The machine's cores divided among the server processes (at least one): each one's decoding pool."""
        return max(1, (os.cpu_count() or 1) // self.workers)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)
