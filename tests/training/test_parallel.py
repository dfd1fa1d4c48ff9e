import torch

from training.parallel import parallel_map


def _threads_and_square(x: int) -> tuple[int, int]:
    return torch.get_num_threads(), x * x


def test_results_keep_order_and_each_worker_runs_one_torch_thread():
    results = parallel_map(_threads_and_square, list(range(6)), workers=2, progress=False)
    assert [square for _, square in results] == [x * x for x in range(6)]
    assert {threads for threads, _ in results} == {1}
