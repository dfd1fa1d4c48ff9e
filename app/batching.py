"""Concurrent requests' model and index work, done together.

Under load most of a query's time is fixed cost: a GRU call for a handful of frames, one pass of FAISS over the
whole catalogue. ``MicroBatcher`` runs one function on the inputs of every caller waiting at that moment, on a
thread of its own: a lone caller runs alone at once (no waiting for company), and callers that arrive while a
batch runs form the next one. Each caller gets the answer it would get alone: the same index rows and float64
scores for a search, the same embedding up to float32 rounding for a batched encoder call (rtol 1e-5,
tests/app/test_batching.py).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")
MAX_BATCH = 64  # callers served by one call (a FAISS scan of 64 queries still reads the catalogue once)


class MicroBatcher(Generic[T, R]):
    """``batcher(item)`` returns ``fn([item, ...])[i]`` for the caller's item, ``fn`` run on a thread of its own
    over the items of every caller waiting then. If ``fn`` raises on a batch, each item is run again alone, so
    one bad input fails only its own caller."""

    def __init__(self, fn: Callable[[list[T]], Sequence[R]], *, name: str, max_batch: int = MAX_BATCH) -> None:
        self.fn, self.max_batch = fn, max_batch
        self._queue: queue.SimpleQueue[tuple[T, Future[R]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        self.batches = 0  # calls of fn, and the items they served: the mean batch size under load
        self.items = 0

    def __call__(self, item: T) -> R:
        if not self._thread.is_alive():
            raise RuntimeError(f"{self._thread.name} is closed")
        future: Future[R] = Future()
        self._queue.put((item, future))
        return future.result()

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(10)

    def _run(self) -> None:
        while (first := self._queue.get()) is not None:
            batch = [first]
            stop = False
            while len(batch) < self.max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            self._serve(batch)
            if stop:
                break
        while True:  # closed: callers that arrived meanwhile are still answered
            try:
                late = self._queue.get_nowait()
            except queue.Empty:
                return
            if late is not None:
                self._serve([late])

    def _serve(self, batch: list[tuple[T, Future[R]]]) -> None:
        self.batches, self.items = self.batches + 1, self.items + len(batch)
        try:
            results = self.fn([item for item, _ in batch])
        except Exception as error:
            if len(batch) == 1:
                batch[0][1].set_exception(error)
            else:
                for one in batch:
                    self._serve([one])
            return
        for (_, future), result in zip(batch, results, strict=True):
            future.set_result(result)
