import os

import pytest

from app.settings import Settings


def test_decode_pool_is_one_process_for_the_service_and_every_core_for_batch_jobs(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("MOODSPACE_DECODE_PROCESSES", raising=False)
    assert Settings().decode_pool_size(batch=False) == 1
    assert Settings().decode_pool_size(batch=True) == (os.cpu_count() or 1)
    monkeypatch.setenv("MOODSPACE_DECODE_PROCESSES", "3")
    assert Settings().decode_pool_size(batch=True) == Settings().decode_pool_size(batch=False) == 3
