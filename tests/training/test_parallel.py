import os

import pytest
import torch

from training.parallel import WorkerDiedError, parallel_map


def _threads_and_square(x: int) -> tuple[int, int]:
    return torch.get_num_threads(), x * x


def test_results_keep_order_and_each_worker_runs_one_torch_thread():
    results = parallel_map(_threads_and_square, list(range(6)), workers=2, progress=False)
    assert [square for _, square in results] == [x * x for x in range(6)]
    assert {threads for threads, _ in results[1:]} == {1}  # the workers' (the first item runs here)


def _pid(_: int) -> int:
    return os.getpid()


def test_the_first_item_runs_in_this_process_before_the_workers():
    """So that JIT caches (numba via librosa) are written once, not raced by the workers (numba#10128)."""
    pids = parallel_map(_pid, list(range(5)), workers=2, progress=False)
    assert pids[0] == os.getpid() and os.getpid() not in pids[1:]


def _die_on_three(x: int) -> int:
    if x == 3:
        os._exit(9)  # as a segfault or the out-of-memory killer would end it
    return x


def test_a_worker_that_dies_ends_the_map_with_an_error_naming_it_instead_of_waiting_for_ever():
    with pytest.raises(WorkerDiedError, match="features: a worker process died"):
        parallel_map(_die_on_three, list(range(8)), workers=2, desc="features", unit="clip", progress=False)
