"""Map a function over items on several processes with a progress bar; results keep the input order."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from multiprocessing import get_context
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")
R = TypeVar("R")


def _one_thread_each() -> None:
    """One torch thread per worker process: the pool already fills the cores, and several OpenMP threads per
    worker on top of it spin against each other (half the CPU time went to the kernel before this)."""
    import torch

    torch.set_num_threads(1)


def parallel_map(fn: Callable[[T], R], items: Sequence[T], *, workers: int | None = None, desc: str = "",
                 unit: str = "item", progress: bool = True) -> list[R]:
    """``[fn(x) for x in items]`` on ``workers`` processes (default: all cores); ``fn`` must be picklable."""
    workers = max(1, min(workers or os.cpu_count() or 1, len(items)))
    bar = tqdm(total=len(items), desc=desc, unit=unit, disable=not progress)
    with bar:
        results = []
        # The first item runs here, before any worker starts, so that JIT caches on disk (numba's, which librosa
        # uses) are written by one process: workers compiling the same gufunc at once can leave a mixed cache
        # that crashes every later process (numba/numba#10128; seen here as a segfault in librosa's piptrack).
        for item in items[:1] if workers > 1 else items:
            results.append(fn(item))
            bar.update()
        if workers == 1:
            return results
        with get_context("spawn").Pool(workers, initializer=_one_thread_each) as pool:
            for result in pool.imap(fn, items[1:], chunksize=2):
                results.append(result)
                bar.update()
            return results
