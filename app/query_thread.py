"""This process's query thread: short queries answered one after another in arrival order, and queries of one kind
that wait together answered in one batch.

While the thread answers one query, others arrive on the event loop and wait. ``run`` queues a piece of work as
it is; ``batched`` queues a query for a batch answer (``BatchAnswer``): when the thread reaches it, every query of
that answer waiting by then is answered in one call, up to ``max_batch`` at a time. A batch shares what one query
at a time would repeat: one pass of an encoder over all the points (or all the stories' sentences), one index call
and one catalogue listing for all the hits. Under light load a batch is one query and costs what it did alone. A
query that joins a batch already queued is answered with it, ahead of work queued after that batch's first query.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
Q = TypeVar("Q")
R = TypeVar("R")

# Answers a batch of queries: one result, or the exception that query raised, per query, in order.
BatchAnswer = Callable[[Sequence[Q]], list[R | Exception]]

Waiting = tuple[Any, asyncio.Future[Any], asyncio.AbstractEventLoop]


class QueryThread:
    """One thread that answers queries in arrival order (module docstring)."""

    def __init__(self, *, max_batch: int) -> None:
        self.max_batch = max_batch
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="query")
        self._lock = threading.Lock()
        self._waiting: dict[Callable[..., Any], list[Waiting]] = {}

    async def run(self, work: Callable[[], T]) -> T:
        """Run ``work`` on the thread after the queries queued before it."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, work)

    async def batched(self, answer: BatchAnswer[Q, R], query: Q) -> R:
        """``answer``'s result for ``query``, answered with the other queries of ``answer`` that wait with it."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        with self._lock:
            waiting = self._waiting.setdefault(answer, [])
            waiting.append((query, future, loop))
            first = len(waiting) == 1
        if first:  # one drain per batch: the queries that come before it runs join this one
            self._executor.submit(self._drain, answer)
        return await future

    def _drain(self, answer: BatchAnswer[Any, Any]) -> None:
        with self._lock:
            waiting = self._waiting.pop(answer, [])
        for start in range(0, len(waiting), self.max_batch):
            batch = waiting[start : start + self.max_batch]
            try:
                results = answer([query for query, _, _ in batch])
            except Exception as error:  # the batch as a whole failed (no index, say): each query hears why
                results = [error] * len(batch)
            for (_, future, loop), result in zip(batch, results, strict=True):
                loop.call_soon_threadsafe(_settle, future, result)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


def _settle(future: asyncio.Future[Any], result: Any) -> None:
    if future.done():  # the client went away and its request was cancelled
        return
    if isinstance(result, Exception):
        future.set_exception(result)
    else:
        future.set_result(result)
