import os

import pytest

from app.settings import Settings


def test_decode_pools_share_the_cores_among_server_processes_and_batch_jobs_take_all(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("MOODSPACE_DECODE_PROCESSES", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert Settings().decode_pool_size(batch=False) == 8 and Settings(workers=3).decode_pool_size(batch=False) == 2
    assert Settings(workers=16).decode_pool_size(batch=False) == 1
    assert Settings(workers=4).decode_pool_size(batch=True) == 8
    monkeypatch.setenv("MOODSPACE_DECODE_PROCESSES", "3")
    assert Settings().decode_pool_size(batch=True) == Settings().decode_pool_size(batch=False) == 3
