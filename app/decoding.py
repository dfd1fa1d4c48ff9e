"""Untrusted audio is decoded in a separate worker process with a wall-clock limit.

The worker decodes, checks and frames the upload (``models.frontend``) and returns only a ``Decoded``: the (T, F)
features, the duration, and the tempo, key and mode (``models.harmony``), so a file that makes a decoder hang or
balloon costs a worker, not the service: on timeout the worker is killed and replaced. Before decoding, the
duration the file's header declares is checked against the limit, so a small file that claims hours of audio is
refused cheaply.
"""

from __future__ import annotations

import hashlib
import io
import logging
import multiprocessing
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from multiprocessing import context, forkserver
from multiprocessing.pool import TERMINATE, AsyncResult, Pool
from types import FrameType
from typing import Any

import numpy as np
import soundfile as sf

from app.errors import NotReadyError, PayloadTooLargeError, SilentAudioError
from app.processes import process_exists
from models.config import FrontEndConfig
from models.errors import AudioError
from models.frontend import LIBROSA_GUFUNC_MODULES, hear, load_audio, make_frontend
from models.harmony import Tonality

log = logging.getLogger(__name__)
STOPPING = threading.Event()  # set when the serving process is told to stop (mark_stopping_on_signals)


class _DecodingProcess(context.ForkServerProcess):
    """A decoding process that is not started once the service is stopping. A stop signal to the process group
    kills the forkserver and the pool's idle workers; a pool replacing them would start a new forkserver
    (``ensure_running``) and workers that never get the signal and outlive the service."""

    @staticmethod
    def _Popen(process_obj: Any) -> Any:  # noqa: N802 (the name multiprocessing calls)
        if STOPPING.is_set():
            raise OSError("no decoding process starts: the service is stopping")
        return context.ForkServerProcess._Popen(process_obj)


class _DecodingContext(context.ForkServerContext):
    Process = _DecodingProcess


_CONTEXT = _DecodingContext()
_CONTEXT.set_forkserver_preload(["models.frontend", "models.harmony", "app.decoding", *LIBROSA_GUFUNC_MODULES])


def riff_declared_seconds(data: bytes) -> float | None:
    """Duration a WAV's own header claims: the ``data`` chunk's size over the ``fmt`` chunk's byte rate. libsndfile
    trusts the bytes that are there instead, so a 16 KB file claiming 4 GB reads as a short clip."""
    if len(data) < 12 or data[:4] not in (b"RIFF", b"RF64") or data[8:12] != b"WAVE":
        return None
    offset, byte_rate = 12, 0
    while offset + 8 <= len(data):
        chunk, size = data[offset : offset + 4], int.from_bytes(data[offset + 4 : offset + 8], "little")
        if chunk == b"fmt " and offset + 16 <= len(data):
            byte_rate = int.from_bytes(data[offset + 16 : offset + 20], "little")
        if chunk == b"data":
            return size / byte_rate if byte_rate > 0 else None
        offset += 8 + size + (size & 1)
    return None


def declared_seconds(data: bytes) -> float | None:
    """Duration from the file's header: the longer of what libsndfile reads and what a WAV header claims."""
    try:
        info = sf.info(io.BytesIO(data))
        read = info.frames / info.samplerate if info.samplerate > 0 and info.frames > 0 else None
    except (sf.LibsndfileError, RuntimeError, TypeError):
        read = None
    claims = [s for s in (read, riff_declared_seconds(data)) if s is not None]
    return max(claims) if claims else None


@dataclass(frozen=True)
class Decoded:
    """What a decoding process returns for one file."""

    features: np.ndarray  # (T, F)
    seconds: float
    tonality: Tonality
    fingerprint: str  # of the decoded signal: the same audio in another container or encoding has the same one


def decode_features(data: bytes, name: str, config: FrontEndConfig, max_seconds: float) -> Decoded:
    """Features, duration, tempo, key and mode of an upload; domain errors name the file."""
    declared = declared_seconds(data)
    if declared is not None and declared > max_seconds:
        raise PayloadTooLargeError(f"{name}: {declared:.0f} s of audio; the limit is {max_seconds:.0f} s "
                                   "(MOODSPACE_MAX_AUDIO_SECONDS)")
    y = load_audio(data, sr=config.sr, name=name)
    seconds = y.size / config.sr
    if seconds > max_seconds:
        raise PayloadTooLargeError(f"{name}: {seconds:.0f} s of audio; the limit is {max_seconds:.0f} s "
                                   "(MOODSPACE_MAX_AUDIO_SECONDS)")
    check_audible(y, name)
    features, tonality = hear(make_frontend(config), y)
    return Decoded(features, seconds, tonality, fingerprint(y))


def fingerprint(y: np.ndarray) -> str:
    """sha256 of the decoded mono signal (at the front end's rate) quantised to 16 bits: a WAV and a FLAC of the
    same recording, or the same file with other tags, decode to the same samples and so the same fingerprint."""
    return hashlib.sha256(np.round(np.clip(y, -1.0, 1.0) * 32767).astype("<i2").tobytes()).hexdigest()


SILENCE_DBFS = -60.0  # RMS level below which a file holds no music to read (digital silence, or a hum's floor)


def check_audible(y: np.ndarray, name: str) -> None:
    """Refuse audio whose RMS level is below ``SILENCE_DBFS``: there is no music to read, and any emotion named
    would be the model's guess about silence."""
    level = 20 * np.log10(max(float(np.sqrt(np.mean(np.square(y, dtype=np.float64)))), 1e-10))
    if level < SILENCE_DBFS:
        raise SilentAudioError(f"{name}: no music heard: the audio is silent (level {level:.0f} dBFS, below "
                               f"{SILENCE_DBFS:.0f} dBFS)")


def _warm_frontend(config: FrontEndConfig) -> None:
    """Build the front end once as a worker starts. A failure here would kill every new worker in turn, so it is
    left to the first file, whose decode raises the same error with its name."""
    try:
        make_frontend(config)
    except Exception:
        return


class DecodeTimeoutError(AudioError):
    """Decoding an upload took longer than the configured limit."""


class WorkerLostError(AudioError):
    """A decoding process died while reading the file, twice (the file is what kills it)."""


POLL_S = 0.25  # how often a waiting request checks that its decoding process is still there


class Pending:
    """One file being decoded by the workers. If a worker of its pool dies meanwhile (killed, out of memory, a
    decoder crash), the pool is replaced and the file decoded once more; a second loss is the file's fault."""

    def __init__(self, workers: AudioWorkers, pool: Pool, result: AsyncResult, name: str, data: bytes,
                 *, retried: bool = False) -> None:
        self.workers, self.pool, self.async_result, self.name = workers, pool, result, name
        self.data, self.retried = data, retried

    def result(self) -> Decoded:
        deadline = time.monotonic() + self.workers.timeout_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                return self.async_result.get(min(POLL_S, left))
            except multiprocessing.TimeoutError:
                if self.workers.lost_a_worker(self.pool):
                    return self._again()
        self.workers.replace(self.pool)
        raise DecodeTimeoutError(f"{self.name}: decoding took longer than {self.workers.timeout_s:.0f} s "
                                 "(MOODSPACE_DECODE_TIMEOUT_S)")

    def _again(self) -> Decoded:
        time.sleep(POLL_S)  # a stop signal reaches the forkserver and the service a moment after the worker
        if STOPPING.is_set() or not _forkserver_alive():  # the service is stopping: start no new processes
            raise NotReadyError(f"{self.name}: the service is stopping; send the file again in a moment")
        self.workers.replace(self.pool)
        if self.retried:
            raise WorkerLostError(f"{self.name}: the decoding process stopped while reading this file, twice; "
                                  "the file may be damaged")
        log.warning("%s: a decoding process died; decoding again on a new pool", self.name)
        return self.workers.submit(self.data, name=self.name, retried=True).result()


class AudioWorkers:
    """A pool of decoding processes with a per-file time limit; a timed-out pool is killed and replaced."""

    def __init__(self, config: FrontEndConfig, *, timeout_s: float, max_seconds: float, processes: int = 1) -> None:
        self.config, self.timeout_s, self.max_seconds, self.processes = config, timeout_s, max_seconds, processes
        self._lock = threading.Lock()
        self._pids: dict[int, list[int]] = {}  # id(pool) -> the worker pids it started with
        self._pool: Pool | None = self._start()

    def _start(self) -> Pool:
        """A pool whose workers build the front end as they start (a pretrained one loads its weights then, not
        during the first upload)."""
        try:
            pool = _CONTEXT.Pool(self.processes, initializer=_warm_frontend, initargs=(self.config,))
        except OSError as error:  # the forkserver is gone: the process is being stopped
            raise NotReadyError("no decoding process can start: the service is stopping") from error
        self._pids[id(pool)] = [p.pid for p in getattr(pool, "_pool", ()) if p.pid is not None]
        return pool

    def lost_a_worker(self, pool: Pool) -> bool:
        """Whether a worker ``pool`` started with has died (its tasks may be lost, its queue lock held)."""
        return not all(_exists(pid) for pid in self._pids.get(id(pool), ()))

    def decode(self, data: bytes, *, name: str) -> Decoded:
        """One file decoded, waiting at most ``timeout_s``."""
        return self.submit(data, name=name).result()

    def submit(self, data: bytes, *, name: str, retried: bool = False) -> Pending:
        """Start decoding in a worker; ``result()`` waits for it (so several files can be in flight)."""
        with self._lock:
            pool = self._pool
        if pool is None:
            raise NotReadyError("the decoding processes are stopped: the service is stopping")
        job = pool.apply_async(decode_features, (data, name, self.config, self.max_seconds))
        return Pending(self, pool, job, name, data, retried=retried)

    def replace(self, stuck: Pool) -> None:
        """Start a new pool in place of ``stuck`` (unless another request already did), then stop ``stuck``."""
        try:
            with self._lock:
                if self._pool is stuck:
                    self._pool = None
                    self._pool = self._start()
        finally:
            stop_pool(stuck)
            self._pids.pop(id(stuck), None)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            stop_pool(pool)


STOP_TIMEOUT_S = 2.0
KILL_PASSES = 5
REPLACING_S = 8.0  # longest wait for a replacement the pool is starting (a new forkserver imports the front end)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def mark_stopping_on_signals() -> None:
    """Set ``STOPPING`` on SIGINT or SIGTERM, then run the handler already there (the server's own, which drains
    requests): uploads whose decoding process the signal killed answer 503 instead of starting new processes.
    Called by the app's lifespan, in every server process; only the main thread can install handlers."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in STOP_SIGNALS:
        previous = signal.getsignal(sig)
        if callable(previous) and not isinstance(previous, partial):
            signal.signal(sig, partial(_stopping, previous))


def _stopping(previous: Callable[[int, FrameType | None], Any], sig: int, frame: FrameType | None) -> None:
    STOPPING.set()
    previous(sig, frame)


def _forkserver_alive() -> bool:
    """Whether the forkserver that starts decoding processes still runs (a SIGTERM to the service's process group
    kills it with the workers)."""
    pid = getattr(forkserver._forkserver, "_forkserver_pid", None)
    return pid is None or _exists(pid)


def _exists(pid: int | None) -> bool:
    """Whether a process runs. ``Process.is_alive`` cannot tell once the forkserver is gone: the forkserver is
    what reports its children's exit codes."""
    return pid is not None and process_exists(pid)


def stop_pool(pool: Pool, *, timeout_s: float = STOP_TIMEOUT_S) -> None:
    """Stop a pool's workers without ever waiting on a dead one.

    A SIGTERM to the whole process group (systemd's default stop, ``timeout``, many supervisors) kills the
    forkserver and the idle workers before the service's own shutdown runs. An idle worker waits for tasks holding
    the task queue's lock, so one killed there leaves the lock taken for good, and ``Pool.terminate`` (and the
    pool's exit handler) then wait on it forever. With a dead worker, the remaining ones are killed and the pool's
    finalizer is cancelled (the pool drops dead workers from its list when it fails to replace them, so a short
    list counts as a dead worker); otherwise ``terminate`` runs, bounded by ``timeout_s``, and the workers are
    killed if it did not finish. Killed workers are reaped by whoever is their parent (the forkserver, or init once
    it is gone)."""
    workers = list(getattr(pool, "_pool", ()))
    lost = len(workers) < getattr(pool, "_processes", len(workers))  # dead ones the pool could not replace
    if lost or not all(_exists(process.pid) for process in workers):
        _stop_replacing(pool)
        _kill_workers(pool)
        finalizer = getattr(pool, "_terminate", None)
        if finalizer is not None:
            finalizer.cancel()
        return
    stopper = threading.Thread(target=pool.terminate, name="stop-decoding-pool", daemon=True)
    stopper.start()
    stopper.join(timeout_s)
    if stopper.is_alive():
        killed = _kill_workers(pool)
        log.warning("the decoding pool did not stop within %.0f s; killed its %d worker(s)", timeout_s, killed)


def _stop_replacing(pool: Pool) -> None:
    """Stop the pool's replacing of dead workers and wait (at most ``REPLACING_S``) for a replacement it is
    starting, so that the kill that follows sees it."""
    handler = getattr(pool, "_worker_handler", None)
    if handler is None:
        return
    handler._state = TERMINATE  # replace no more workers
    notifier = getattr(pool, "_change_notifier", None)
    if notifier is not None:
        notifier.put(None)  # wake the handler from its wait for a worker to exit
    if handler is not threading.current_thread():
        handler.join(REPLACING_S)


def _kill_workers(pool: Pool) -> int:
    """Kill every worker ``pool`` has now. A pool replaces workers that die, so one the stop signal killed can be
    replaced, a moment later, by a worker that never got the signal; left alone it would outlive the service,
    blocked on the lock its dead predecessor held. ``terminate`` (or the caller) stops the replacing first, so the
    list read after that is final."""
    killed: set[int] = set()
    for _ in range(KILL_PASSES):  # one the pool was starting as its replacing stopped joins the list a moment later
        alive = [p for p in list(getattr(pool, "_pool", ())) if _exists(p.pid)]
        if not alive:
            break
        for process in alive:
            process.kill()
        killed |= {p.pid for p in alive}
        time.sleep(0.1)
    return len(killed)
