"""The service stops when asked: SIGTERM to its whole process group (systemd's default, `timeout`) or SIGINT to
the process ends it within 10 s, lets requests in flight finish, and leaves no decoding process behind."""

import io
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf

from tests.app.servers import start_server


def _start(tmp_path: Path, bundle_dir: Path, workers: int = 1) -> tuple[subprocess.Popen, int]:
    env = {"MOODSPACE_DATA_DIR": str(tmp_path / "data"), "MOODSPACE_BUNDLE": str(bundle_dir)}
    process, url = start_server(env, new_session=True, timeout_s=60, workers=workers)
    return process, int(url.rsplit(":", 1)[1])


def _group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def _uploads(port: int, n: int) -> tuple[list[threading.Thread], list[object]]:
    buffer = io.BytesIO()
    sf.write(buffer, np.random.default_rng(0).normal(size=16000 * 20) * 0.1, 16000, format="WAV")
    outcomes: list[object] = []

    def upload() -> None:
        try:
            response = httpx.post(f"http://127.0.0.1:{port}/v1/music-to-emotion", timeout=30,
                                  files={"file": ("clip.wav", buffer.getvalue(), "audio/wav")})
            outcomes.append(response.status_code)
        except httpx.HTTPError as error:  # refused once the server stopped listening
            outcomes.append(type(error).__name__)

    threads = [threading.Thread(target=upload) for _ in range(n)]
    for thread in threads:
        thread.start()
    return threads, outcomes


@pytest.mark.parametrize(("to_group", "workers", "uploads"), [(True, 1, 8), (False, 1, 8), (True, 2, 8), (True, 2, 0)],
                         ids=["SIGTERM to the group", "SIGINT to the process", "SIGTERM to the group of 2 workers",
                              "SIGTERM to the group of 2 idle workers"])
def test_the_service_stops_within_10_s_and_leaves_nothing_behind(tmp_path, bundle_dir, to_group: bool,
                                                                  workers: int, uploads: int):
    """With idle workers, the signal kills every decoding process while each pool waits for tasks: a pool that
    replaced them would start a new forkserver whose processes outlive the service."""
    process, port = _start(tmp_path, bundle_dir, workers)
    pgid = os.getpgid(process.pid)
    threads, outcomes = _uploads(port, uploads)
    time.sleep(0.3)  # requests in flight
    start = time.monotonic()
    if to_group:
        os.killpg(pgid, signal.SIGTERM)
    else:
        process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            os.killpg(pgid, signal.SIGKILL)
    elapsed = time.monotonic() - start
    for thread in threads:
        thread.join(30)
    assert elapsed < 10
    # every request in flight got an answer: its result, or 503 "the service is stopping" when the stop signal
    # killed its decoding process; one that had not reached the server yet may be refused
    assert len(outcomes) == uploads and all(o in (200, 503) or isinstance(o, str) for o in outcomes), outcomes
    for _ in range(50):
        if _group_gone(pgid):
            break
        time.sleep(0.1)
    assert _group_gone(pgid), "a decoding process outlived the service"
