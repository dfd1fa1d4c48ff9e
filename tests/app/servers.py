"""`moodspace serve` as a real process for the tests that need real HTTP, signals or several workers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(env: dict[str, str], *, workers: int = 1, new_session: bool = False,
                 timeout_s: float = 120.0) -> tuple[subprocess.Popen, str]:
    """The process and its base URL once /readyz answers 200; ``new_session`` puts it in a process group of its
    own (for signals to the whole group). A server that never gets ready is killed and the test fails."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "moodspace.cli", "serve", "--port", str(port), "--log-level",
                                "warning", "--workers", str(workers)], env={**os.environ, **env},
                               start_new_session=new_session)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    if new_session:
        os.killpg(process.pid, signal.SIGKILL)
    else:
        process.kill()
    raise AssertionError("the service did not become ready")
