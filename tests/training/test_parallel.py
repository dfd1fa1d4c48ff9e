import os

import torch

from training.parallel import parallel_map


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
