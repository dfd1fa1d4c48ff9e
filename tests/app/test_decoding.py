import io
import os
import signal
import time
from multiprocessing import forkserver
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from app.decoding import _CONTEXT, _exists, declared_seconds, stop_pool
from app.main import create_app
from app.services import Services
from models.frontend import LIBROSA_GUFUNC_MODULES
from tests.app.conftest import make_settings


def lying_flac(seconds: float = 2.0, claimed_samples: int = (1 << 35) - 1) -> bytes:
    """A valid FLAC whose STREAMINFO claims ``claimed_samples`` (about 600 hours at 16 kHz)."""
    buffer = io.BytesIO()
    sf.write(buffer, np.random.default_rng(0).normal(size=int(seconds * 16000)) * 0.1, 16000, format="FLAC")
    data = bytearray(buffer.getvalue())
    start = 8 + 10  # after "fLaC" and the block header: rate, channels, bits, then 36 bits of total samples
    value = int.from_bytes(data[start : start + 8], "big")
    value = (value & ~((1 << 36) - 1)) | claimed_samples
    data[start : start + 8] = value.to_bytes(8, "big")
    return bytes(data)


def test_declared_duration_is_read_from_the_header():
    assert declared_seconds(lying_flac()) == pytest.approx(((1 << 35) - 1) / 16000)
    assert declared_seconds(b"not audio") is None


def test_a_header_claiming_hundreds_of_hours_is_refused_before_decoding(client: TestClient):
    response = client.post("/v1/music-to-emotion", files={"file": ("bomb.flac", lying_flac(), "audio/flac")})
    assert response.status_code == 413 and "MOODSPACE_MAX_AUDIO_SECONDS" in response.json()["detail"]


def test_a_decode_past_the_time_limit_fails_cleanly_and_the_workers_recover(tmp_path, bundle_dir, wavs):
    with TestClient(create_app(make_settings(tmp_path, bundle_dir, decode_timeout_s=0.0001))) as client:
        response = client.post("/v1/music-to-emotion", files={"file": ("slow.wav", wavs[0], "audio/wav")})
        assert response.status_code == 422 and "MOODSPACE_DECODE_TIMEOUT_S" in response.json()["detail"]
        services: Services = client.app.state.services
        assert services.model is not None
        services.model.audio.timeout_s = 60.0
        again = client.post("/v1/music-to-emotion", files={"file": ("fine.wav", wavs[0], "audio/wav")})
        assert again.status_code == 200


def test_a_front_end_that_cannot_be_built_fails_each_file_instead_of_the_workers(wavs):
    from dataclasses import replace

    from app.decoding import AudioWorkers
    from models.config import FrontEndConfig

    workers = AudioWorkers(replace(FrontEndConfig(), name="no-such-front-end"), timeout_s=60, max_seconds=60)
    try:
        with pytest.raises(ValueError, match="unknown front end 'no-such-front-end'"):
            workers.decode(wavs[0], name="a.wav")
    finally:
        workers.close()


def test_a_worker_that_dies_mid_decode_is_replaced_and_the_file_decoded_again(wavs):
    import os
    import signal

    from app.decoding import AudioWorkers
    from models.config import FrontEndConfig

    buffer = io.BytesIO()
    sf.write(buffer, np.random.default_rng(1).normal(size=16000 * 120) * 0.1, 16000, format="WAV")
    workers = AudioWorkers(FrontEndConfig(), timeout_s=60, max_seconds=900)
    try:
        pending = workers.submit(buffer.getvalue(), name="long.wav")
        for pid in workers._pids[id(pending.pool)]:
            os.kill(pid, signal.SIGKILL)  # the worker dies with the file in hand (or idle, holding the queue)
        decoded = pending.result()
        assert decoded.seconds == pytest.approx(120.0) and decoded.features.shape[0] > 100
        assert workers._pool is not pending.pool  # replaced
        assert workers.decode(wavs[0], name="next.wav").seconds == pytest.approx(3.0)  # and the next file works
    finally:
        workers.close()


def test_a_wav_header_claiming_4_gb_is_refused_with_413(client: TestClient, wavs: list[bytes]):
    from app.decoding import riff_declared_seconds

    data = bytearray(wavs[0][:16384])  # 16 KB of a real WAV
    start = data.index(b"data")
    data[start + 4 : start + 8] = (0xFFFFFF00).to_bytes(4, "little")  # the data chunk claims about 4 GB
    assert riff_declared_seconds(bytes(data)) > 100_000
    assert riff_declared_seconds(wavs[0]) == pytest.approx(3.0)
    response = client.post("/v1/music-to-emotion", files={"file": ("claims.wav", bytes(data), "audio/wav")})
    assert response.status_code == 413 and "MOODSPACE_MAX_AUDIO_SECONDS" in response.json()["detail"]


def _wait_until(condition, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_a_pool_whose_dead_worker_held_the_queue_lock_stops_with_its_replacement():
    """The stop-signal race CI met: an idle worker waits for tasks holding the queue's lock; killed there, it is
    replaced by one that blocks on that lock for good, and ``terminate`` never finishes. The replacement is
    killed, not left behind."""
    pool = _CONTEXT.Pool(1)
    first = pool._pool[0]
    time.sleep(0.5)  # idle: waiting for a task, holding the lock
    os.kill(first.pid, signal.SIGKILL)
    assert _wait_until(lambda: pool._pool and pool._pool[0].pid != first.pid), "the pool did not replace its worker"
    replacement = pool._pool[0]
    stop_pool(pool, timeout_s=0.5)
    assert _wait_until(lambda: not _exists(replacement.pid)), "the replacement worker outlived the pool"


def test_the_forkserver_imports_every_librosa_module_that_compiles_gufuncs_before_a_worker_starts():
    """Workers that compile the same numba gufunc at once can leave its disk cache mixed, which crashes every
    later process (numba/numba#10128; seen here after a first ingest). The forkserver imports each such librosa
    module once, before it forks a worker: the list must cover every module of the installed librosa that uses
    ``guvectorize``."""
    root = Path(librosa.__file__).parent
    compiling = {".".join(("librosa", *path.relative_to(root).with_suffix("").parts))
                 for path in root.rglob("*.py") if "guvectorize(" in path.read_text(encoding="utf-8")}
    assert compiling and compiling <= set(LIBROSA_GUFUNC_MODULES)
    assert set(LIBROSA_GUFUNC_MODULES) <= set(forkserver._forkserver._preload_modules)  # set_forkserver_preload's
