"""Map a function over items on several processes with a progress bar; results keep the input order.

A worker that dies (a crash in native code, the kernel's out-of-memory killer, a script without an
``if __name__ == "__main__":`` guard, whose workers re-run it) ends the map with ``WorkerDiedError`` naming the
cause: ``multiprocessing.Pool`` would replace the worker and wait for the lost item for ever.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")
R = TypeVar("R")


class WorkerDiedError(RuntimeError):
    """A worker process ended before returning its items."""


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
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_one_thread_each) as pool:
            try:
                for result in pool.map(fn, items[1:], chunksize=2):
                    results.append(result)
                    bar.update()
            except BrokenProcessPool as error:
                raise WorkerDiedError(f"{desc or 'parallel_map'}: a worker process died after {len(results)} of "
                                      f"{len(items)} {unit}s ({error}); run with one worker to see the error where "
                                      "it happens") from error
            return results
