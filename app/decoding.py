"""Untrusted audio is decoded in a separate worker process with a wall-clock limit.

The worker decodes, checks and frames the upload (``models.frontend``) and returns only the (T, F) features and
the duration, so a file that makes a decoder hang or balloon costs a worker, not the service: on timeout the
worker is killed and replaced. Before decoding, the duration the file's header declares is checked against the
limit, so a small file that claims hours of audio is refused cheaply.
"""

from __future__ import annotations

import io
import multiprocessing
import threading
from multiprocessing.pool import AsyncResult, Pool

import numpy as np
import soundfile as sf

from app.errors import PayloadTooLargeError
from models.config import FrontEndConfig
from models.errors import AudioError
from models.frontend import load_audio, make_frontend

_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(["models.frontend", "app.decoding"])


def declared_seconds(data: bytes) -> float | None:
    """Duration from the file's header, if libsndfile can read one."""
    try:
        info = sf.info(io.BytesIO(data))
    except (sf.LibsndfileError, RuntimeError, TypeError):
        return None
    return info.frames / info.samplerate if info.samplerate > 0 and info.frames > 0 else None


def decode_features(data: bytes, name: str, config: FrontEndConfig, max_seconds: float) -> tuple[np.ndarray, float]:
    """(T, F) features and the duration in seconds of an upload; domain errors name the file."""
    declared = declared_seconds(data)
    if declared is not None and declared > max_seconds:
        raise PayloadTooLargeError(f"{name}: {declared:.0f} s of audio; the limit is {max_seconds:.0f} s "
                                   "(MOODSPACE_MAX_AUDIO_SECONDS)")
    y = load_audio(data, sr=config.sr, name=name)
    seconds = y.size / config.sr
    if seconds > max_seconds:
        raise PayloadTooLargeError(f"{name}: {seconds:.0f} s of audio; the limit is {max_seconds:.0f} s "
                                   "(MOODSPACE_MAX_AUDIO_SECONDS)")
    return make_frontend(config)(y), seconds


def _warm_frontend(config: FrontEndConfig) -> None:
    """Build the front end once as a worker starts. A failure here would kill every new worker in turn, so it is
    left to the first file, whose decode raises the same error with its name."""
    try:
        make_frontend(config)
    except Exception:
        return


class DecodeTimeoutError(AudioError):
    """Decoding an upload took longer than the configured limit."""


class Pending:
    """One file being decoded by the workers."""

    def __init__(self, workers: AudioWorkers, pool: Pool, result: AsyncResult, name: str) -> None:
        self.workers, self.pool, self.async_result, self.name = workers, pool, result, name

    def result(self) -> tuple[np.ndarray, float]:
        try:
            return self.async_result.get(self.workers.timeout_s)
        except multiprocessing.TimeoutError:
            self.workers._replace(self.pool)
            raise DecodeTimeoutError(f"{self.name}: decoding took longer than {self.workers.timeout_s:.0f} s "
                                     "(MOODSPACE_DECODE_TIMEOUT_S)") from None


class AudioWorkers:
    """A pool of decoding processes with a per-file time limit; a timed-out pool is killed and replaced."""

    def __init__(self, config: FrontEndConfig, *, timeout_s: float, max_seconds: float, processes: int = 1) -> None:
        self.config, self.timeout_s, self.max_seconds, self.processes = config, timeout_s, max_seconds, processes
        self._lock = threading.Lock()
        self._pool: Pool | None = self._start()

    def _start(self) -> Pool:
        """A pool whose workers build the front end as they start (a pretrained one loads its weights then, not
        during the first upload)."""
        return _CONTEXT.Pool(self.processes, initializer=_warm_frontend, initargs=(self.config,))

    def features(self, data: bytes, *, name: str) -> tuple[np.ndarray, float]:
        """(T, F) features and duration of one file, waiting at most ``timeout_s``."""
        return self.submit(data, name=name).result()

    def submit(self, data: bytes, *, name: str) -> Pending:
        """Start decoding in a worker; ``result()`` waits for it (so several files can be in flight)."""
        with self._lock:
            pool = self._pool
        assert pool is not None, "the audio workers are closed"
        return Pending(self, pool, pool.apply_async(decode_features, (data, name, self.config, self.max_seconds)),
                       name)

    def _replace(self, stuck: Pool) -> None:
        stuck.terminate()
        with self._lock:
            if self._pool is stuck:
                self._pool = self._start()

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.terminate()
            pool.join()
