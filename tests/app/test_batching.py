"""Concurrent callers' work done together: each caller gets its own answer, a failure stays its caller's."""

import threading
import time

import numpy as np
import pytest

from app.batching import MicroBatcher
from app.search import QueryBatches
from app.settings import Settings


def _slow_square(items: list[int]) -> list[int]:
    time.sleep(0.02)  # a batch takes a while, so callers arriving meanwhile form the next one
    if any(i < 0 for i in items):
        raise ValueError("negative")
    return [i * i for i in items]


def _call_together(batcher: MicroBatcher, items: list[int]) -> dict[int, object]:
    answers: dict[int, object] = {}
    start = threading.Barrier(len(items))

    def call(item: int) -> None:
        start.wait()
        try:
            answers[item] = batcher(item)
        except ValueError as error:
            answers[item] = error

    threads = [threading.Thread(target=call, args=(i,)) for i in items]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return answers


def test_concurrent_callers_share_calls_and_each_gets_its_own_answer():
    batcher = MicroBatcher(_slow_square, name="test")
    try:
        answers = _call_together(batcher, list(range(1, 41)))
        assert answers == {i: i * i for i in range(1, 41)}
        assert batcher.items == 40 and batcher.batches < 20, batcher.batches
        assert batcher(7) == 49  # a lone caller is served at once
    finally:
        batcher.close()


def test_a_failing_item_fails_only_its_own_caller():
    batcher = MicroBatcher(_slow_square, name="test")
    try:
        answers = _call_together(batcher, [-3, *range(1, 20)])
        assert isinstance(answers[-3], ValueError)
        assert {i: a for i, a in answers.items() if i > 0} == {i: i * i for i in range(1, 20)}
    finally:
        batcher.close()


def test_a_closed_batcher_refuses_new_callers():
    batcher = MicroBatcher(_slow_square, name="test")
    batcher.close()
    with pytest.raises(RuntimeError, match="closed"):
        batcher(2)


def test_batched_points_embed_as_each_point_alone(tmp_path, bundle_dir):
    from models.bundle import load_bundle
    from models.inference import Embedder

    embedder = Embedder.from_bundle(load_bundle(bundle_dir))
    batches = QueryBatches(embedder, Settings(data_dir=tmp_path))
    try:
        points = [(float(v), float(a)) for v, a in np.random.default_rng(0).uniform(-1, 1, size=(25, 2))]
        together = batches._embed_points(points)
        for point, embedded in zip(points, together, strict=True):
            alone = embedder.embed_points(np.array([point]))
            for part, expected in zip(embedded, alone, strict=True):
                np.testing.assert_allclose(part, expected, rtol=1e-5, atol=1e-6)
    finally:
        batches.close()
