"""The query thread: work in arrival order, and queries that wait together answered in one batch."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from app.query_thread import QueryThread


class Recorder:
    """A batch answer that doubles each number, raises for negative ones and records every batch it was given."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.threads: set[str] = set()

    def __call__(self, queries: Sequence[int]) -> list[int | Exception]:
        self.batches.append(list(queries))
        self.threads.add(threading.current_thread().name)
        return [ValueError(f"negative: {q}") if q < 0 else 2 * q for q in queries]


async def busy_then(thread: QueryThread, submit) -> list:
    """Hold the thread with a piece of work while ``submit()``'s coroutines queue behind it, then gather them."""
    gate = threading.Event()
    blocker = asyncio.ensure_future(thread.run(gate.wait))
    await asyncio.sleep(0.05)  # the thread is inside the blocker
    pending = [asyncio.ensure_future(c) for c in submit()]
    await asyncio.sleep(0.05)  # every query is waiting
    gate.set()
    await blocker
    return await asyncio.gather(*pending, return_exceptions=True)


@pytest.mark.parametrize(("max_batch", "batches"), [
    (32, [list(range(10))]), (4, [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]), (1, [[q] for q in range(10)])])
def test_queries_that_wait_together_are_answered_in_batches_of_at_most_max_batch_in_arrival_order(
        max_batch: int, batches: list[list[int]]):
    thread, answer = QueryThread(max_batch=max_batch), Recorder()
    try:
        results = asyncio.run(busy_then(thread, lambda: [thread.batched(answer, q) for q in range(10)]))
    finally:
        thread.shutdown()
    assert results == [2 * q for q in range(10)]
    assert answer.batches == batches
    assert all(name.startswith("query") for name in answer.threads)


def test_a_query_alone_is_a_batch_of_one_and_later_queries_start_a_new_batch():
    thread, answer = QueryThread(max_batch=32), Recorder()

    async def one_by_one() -> list[int]:
        return [await thread.batched(answer, q) for q in (3, 4)]

    try:
        assert asyncio.run(one_by_one()) == [6, 8]
    finally:
        thread.shutdown()
    assert answer.batches == [[3], [4]]


def test_one_query_s_error_reaches_that_query_alone():
    thread, answer = QueryThread(max_batch=32), Recorder()
    try:
        results = asyncio.run(busy_then(thread, lambda: [thread.batched(answer, q) for q in (1, -2, 3)]))
    finally:
        thread.shutdown()
    assert results[0] == 2 and results[2] == 6
    assert isinstance(results[1], ValueError) and "negative: -2" in str(results[1])


def test_a_batch_that_fails_as_a_whole_fails_each_of_its_queries_and_the_next_batch_runs():
    thread = QueryThread(max_batch=32)

    def broken(queries: Sequence[int]) -> list[int | Exception]:
        raise RuntimeError("no index")

    async def scenario() -> tuple[list, int]:
        failed = await busy_then(thread, lambda: [thread.batched(broken, q) for q in range(3)])
        return failed, await thread.batched(Recorder(), 5)

    try:
        failed, later = asyncio.run(scenario())
    finally:
        thread.shutdown()
    assert [type(f) for f in failed] == [RuntimeError] * 3
    assert later == 10


def test_a_cancelled_query_does_not_disturb_the_others_in_its_batch():
    thread, answer = QueryThread(max_batch=32), Recorder()

    def submit() -> list:
        queries = [asyncio.ensure_future(thread.batched(answer, q)) for q in range(3)]
        queries[1].cancel()  # its client went away
        return queries

    try:
        results = asyncio.run(busy_then(thread, submit))
    finally:
        thread.shutdown()
    assert results[0] == 0 and results[2] == 4
    assert isinstance(results[1], asyncio.CancelledError)


def test_different_answers_batch_apart_and_plain_work_keeps_its_place():
    thread, doubles = QueryThread(max_batch=32), Recorder()
    order: list[str] = []

    def triples(queries: Sequence[int]) -> list[int | Exception]:
        order.append("triples")
        return [3 * q for q in queries]

    def work() -> str:
        order.append("work")
        return "done"

    try:
        results = asyncio.run(busy_then(thread, lambda: [thread.batched(doubles, 1), thread.batched(triples, 1),
                                                         thread.run(work), thread.batched(doubles, 2)]))
    finally:
        thread.shutdown()
    assert results == [2, 3, "done", 4]
    assert doubles.batches == [[1, 2]]  # the second doubling joined the first's batch
    assert order == ["triples", "work"]
