"""8-bit codes (app/codes.py): the slack bounds every item's error, and the certified top k is brute force's."""

from pathlib import Path

import numba
import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.code_kernels import (
    KERNELS,
    KERNELS_MANY,
    WEIGHT_MAX,
    available_kernels,
    host_kernel,
    layout,
    matrix,
    prepared,
    prepared_many,
)
from app.codes import BLOCK, augmented_scores, encode
from app.index import IndexStore, build_snapshot
from app.main import create_app
from models.scoring import Gaussians, augment_items, augment_query, composite_scores
from tests.app.conftest import add, make_settings, reindex


def _gaussians(n: int, d: int = 8, seed: int = 0) -> Gaussians:
    """Float32 values held in float64: what an index keeps, so brute force scores the same numbers."""
    rng = np.random.default_rng(seed)
    parts = (rng.normal(size=(n, d)), rng.normal(size=(n, d)), rng.uniform(-3, 2, size=(n, d)))
    return Gaussians(*(part.astype(np.float32).astype(np.float64) for part in parts))


def _query(seed: int, d: int = 8) -> Gaussians:
    return Gaussians(*(p[:1] for p in _gaussians(1, d, seed=seed)))


def _brute(query: Gaussians, items: Gaussians, lam: float, k: int) -> list[int]:
    return list(np.argsort(-composite_scores(query, items, lam=lam).score[0], kind="stable")[:k])


@pytest.mark.parametrize("kernel", available_kernels())
@pytest.mark.parametrize(("n", "d"), [(1000, 97), (37, 5), (64, 4), (130, 9)])
def test_each_kernel_gives_the_integer_products_of_codes_and_weights(kernel: str, n: int, d: int):
    """Rows and dimensions past the blocks' multiples, the largest codes against the largest weights of both
    signs, and a scattered list of blocks (a filter's pass), the last repeated to fill a group of blocks."""
    rng = np.random.default_rng(n + d)
    codes = rng.integers(0, 256, (n, d), dtype=np.uint8)
    codes[:5] = 255
    weights = rng.integers(-WEIGHT_MAX, WEIGHT_MAX + 1, d).astype(np.int16)
    weights[0], weights[-1] = WEIGHT_MAX, -WEIGHT_MAX
    expected = codes.astype(np.int64) @ weights.astype(np.int64)
    blocks = layout(codes)
    assert blocks.shape[2:] == (16, 4) and (matrix(blocks, n, d) == codes).all()
    ids = np.arange(blocks.shape[0], dtype=np.int64)
    out = np.full(ids.size * 16, 7, dtype=np.int32)
    KERNELS[kernel](blocks, ids, 0, ids.size, prepared(weights, kernel), out)
    assert (out[:n] == expected).all() and (out[n:] == 0).all()  # padded rows have zero codes
    last = (n - 1) // 16  # the last block with rows in it
    out = np.zeros(64, dtype=np.int32)
    KERNELS[kernel](blocks, np.array([last, 0, 0, 0], dtype=np.int64), 0, 4, prepared(weights, kernel), out)
    assert (out[: n - 16 * last] == expected[16 * last :]).all() and (out[16:32] == expected[:16]).all()


@pytest.mark.parametrize("kernel", available_kernels())
def test_each_kernel_scores_several_queries_in_one_pass_as_it_scores_each(kernel: str):
    """Three queries (the kernel's last call filled with all-zero queries) over 300 rows."""
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 256, (300, 21), dtype=np.uint8)
    weights = [rng.integers(-WEIGHT_MAX, WEIGHT_MAX + 1, 21).astype(np.int16) for _ in range(3)]
    blocks = layout(codes)
    ids = np.arange(blocks.shape[0], dtype=np.int64)
    forms = prepared_many(weights, kernel)
    out = np.full((forms.shape[0], ids.size * 16), 7, dtype=np.int32)
    KERNELS_MANY[kernel](blocks, ids, 0, ids.size, forms, out)
    for i, w in enumerate(weights):
        assert (out[i, :300] == codes.astype(np.int64) @ w.astype(np.int64)).all()
    assert (out[3:] == 0).all()


def test_a_numba_target_other_than_the_host_gets_the_plain_kernel(monkeypatch: pytest.MonkeyPatch):
    """Code compiled for another CPU (``NUMBA_CPU_NAME=generic``, for a portable cache) must not use this one's
    vector instructions."""
    monkeypatch.setattr(numba.config, "CPU_NAME", "generic", raising=False)
    assert host_kernel() == "plain" and available_kernels() == ["plain"]
    monkeypatch.setattr(numba.config, "CPU_NAME", None, raising=False)
    assert host_kernel() == available_kernels()[0]


def test_no_items_approximate_score_is_further_from_its_exact_score_than_the_slack():
    items = _gaussians(5000, seed=1)
    centre = items.mu.mean(axis=0)
    xb = augment_items(items, centre=centre)
    codes = encode(xb)
    for seed, lam in zip(range(20), np.linspace(0, 1, 20), strict=True):
        q = augment_query(_query(seed + 50), lam=lam, centre=centre)[0][0]
        weights, unit, slack = codes.query_weights(q)
        approx = codes.low @ q + unit * (codes.matrix().astype(np.int64) @ weights.astype(np.int64))
        error = np.abs(approx - xb @ q)
        assert error.max() <= slack
        assert slack < 20 * error.max()  # a bound, not a blanket: it stays near the worst error it covers


@pytest.mark.parametrize("lam", [0.0, 0.5, 0.9, 0.98, 1.0])
@pytest.mark.parametrize("k", [1, 10, 40])
def test_sq8_search_returns_the_brute_force_top_k_with_exact_scores(lam: float, k: int):
    """20 blocks of rows: k = 1 and 10 take the block leaders, k = 40 (more than the blocks) every row's score."""
    items = _gaussians(20 * BLOCK, seed=2)
    snapshot = build_snapshot(model_version="v", track_ids=np.arange(items.E.shape[0]) + 9, gaussians=items,
                              kind="sq8")
    for seed in range(4):
        query = _query(100 + seed)
        hits = snapshot.search(query, lam=lam, k=k, rescore_head=0)
        assert [h.track_id - 9 for h in hits] == _brute(query, items, lam, k)
        direct = composite_scores(query, items, lam=lam)
        assert [h.score for h in hits] == pytest.approx(direct.score[0, [h.track_id - 9 for h in hits]], abs=1e-9)


def test_the_certificate_rescores_a_sliver_of_a_spread_catalogue_and_everything_it_cannot_order():
    items = _gaussians(20 * BLOCK, seed=3)
    snapshot = build_snapshot(model_version="v", track_ids=np.arange(items.E.shape[0]), gaussians=items, kind="sq8")
    assert snapshot.codes is not None
    q = augment_query(_query(7), lam=0.9, centre=snapshot.centre)[0][0]
    rows, _ = snapshot.codes.certified(q, 10, snapshot.codes.scorer(snapshot.gaussians, snapshot.centre, q))
    assert 10 <= rows.size < 0.02 * snapshot.size
    # 300 items a hair apart at the top of a spread catalogue: one byte per dimension of the catalogue's range
    # cannot tell them apart, so every one of them is rescored.
    base = Gaussians(*(p[:1] for p in items))
    rng = np.random.default_rng(8)
    close = Gaussians(*(np.vstack([np.repeat(p, 300, axis=0) + rng.normal(0, 1e-6, (300, p.shape[1])), spread])
                        for p, spread in zip(base, items, strict=True)))
    close = Gaussians(*(p.astype(np.float32).astype(np.float64) for p in close))
    snapshot = build_snapshot(model_version="v", track_ids=np.arange(close.E.shape[0]), gaussians=close, kind="sq8")
    assert snapshot.codes is not None
    query = Gaussians(*(p + 0.01 for p in base))
    q = augment_query(query, lam=0.5, centre=snapshot.centre)[0][0]
    rows, _ = snapshot.codes.certified(q, 10, snapshot.codes.scorer(snapshot.gaussians, snapshot.centre, q))
    assert set(range(300)) <= set(rows.tolist())
    found = [h.track_id for h in snapshot.search(query, lam=0.5, k=10, rescore_head=0)]
    assert found == _brute(query, close, 0.5, 10) and max(found) < 300


def test_a_filtered_sq8_search_is_the_brute_force_top_k_of_the_rows_that_pass():
    items = _gaussians(6 * BLOCK, seed=4)
    snapshot = build_snapshot(model_version="v", track_ids=np.arange(items.E.shape[0]), gaussians=items, kind="sq8")
    rng = np.random.default_rng(5)
    for share in (0.5, 0.01):
        rows = np.sort(rng.choice(snapshot.size, int(snapshot.size * share), replace=False))
        query = _query(int(share * 100))
        hits = snapshot.search(query, lam=0.7, k=10, rescore_head=0, allowed=rows)
        subset = Gaussians(*(p[rows] for p in items))
        assert [h.track_id for h in hits] == list(rows[_brute(query, subset, 0.7, 10)])


def test_candidates_are_scored_as_augment_items_scores_them():
    items = _gaussians(500, d=16, seed=6)
    items = Gaussians(items.E.astype(np.float32), items.mu.astype(np.float32), items.logvar.astype(np.float32))
    items.E[3] = 0.5  # a constant point embedding: no spread to scale by
    centre = items.mu.astype(np.float64).mean(axis=0)
    q = np.random.default_rng(7).normal(size=3 * 16 + 1)
    rows = np.array([3, 0, 499, 250, 3])
    expected = augment_items(Gaussians(*(p[rows] for p in items)), centre=centre) @ q
    got = augmented_scores(rows, E=items.E, mu=items.mu, logvar=items.logvar, centre=centre, q=q)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_a_saved_sq8_snapshot_memory_maps_its_codes_and_answers_the_same(tmp_path: Path):
    store = IndexStore(tmp_path, kind="sq8")
    items = _gaussians(3000, seed=8)
    snapshot = store.build(model_version="v1", track_ids=np.arange(3000) * 2, gaussians=items)
    store.publish(snapshot)
    loaded = IndexStore(tmp_path, kind="sq8").load_current("v1")
    assert loaded is not None and loaded.kind == "sq8" and loaded.index is None and loaded.codes is not None
    assert isinstance(loaded.codes.codes, np.memmap)
    for seed in range(3):
        query = _query(300 + seed)
        assert loaded.search(query, lam=0.8, k=7, rescore_head=0) == snapshot.search(query, lam=0.8, k=7,
                                                                                     rescore_head=0)


def test_the_service_serves_an_sq8_index_and_loads_it_back(tmp_path: Path, bundle_dir: Path, wavs: list[bytes]):
    settings = make_settings(tmp_path, bundle_dir, index_kind="sq8")
    request = {"point": {"valence": 0.3, "arousal": -0.4}, "k": 4}
    with TestClient(create_app(settings)) as client:
        for i, wav in enumerate(wavs):
            add(client, wav, f"track {i}")
        assert reindex(client)["state"] == "succeeded"
        first = client.post("/v1/emotion-to-music", json=request).json()["results"]
        assert client.get("/readyz").json()["index_kind"] == "sq8"
    with TestClient(create_app(settings)) as client:
        assert client.post("/v1/emotion-to-music", json=request).json()["results"] == first
    assert len(first) == 4 and [r["score"] for r in first] == sorted((r["score"] for r in first), reverse=True)


def test_codes_saved_row_by_row_before_the_block_layout_still_load_and_answer_the_same(tmp_path: Path):
    store = IndexStore(tmp_path, kind="sq8")
    items = _gaussians(1500, seed=12)
    snapshot = store.build(model_version="v1", track_ids=np.arange(1500), gaussians=items)
    store.publish(snapshot)
    folder = next((tmp_path / "v1").iterdir())
    assert snapshot.codes is not None
    np.save(folder / "codes.npy", snapshot.codes.matrix())  # (N, D), as earlier versions wrote them
    with np.load(folder / "codes_scale.npz") as scale:
        np.savez(folder / "codes_scale.npz", **{name: scale[name] for name in scale.files if name != "rows"})
    loaded = IndexStore(tmp_path, kind="sq8").load_current("v1")
    assert loaded is not None and loaded.codes is not None and loaded.codes.size == 1500
    for seed in range(3):
        query = _query(400 + seed)
        assert loaded.search(query, lam=0.6, k=5, rescore_head=0) == snapshot.search(query, lam=0.6, k=5,
                                                                                     rescore_head=0)


@pytest.mark.parametrize("n", [1, 5])
def test_a_catalogue_of_identical_items_is_searched_and_loaded(tmp_path: Path, n: int):
    """Every dimension has one value (a track added twice, or once): the codes have no resolution, and every row
    is scored exactly instead of the cut overflowing (which failed the load's warm-up and every search)."""
    one = _gaussians(1, seed=11)
    items = Gaussians(*(np.repeat(part, n, axis=0) for part in one))
    store = IndexStore(tmp_path, kind="sq8")
    store.publish(store.build(model_version="v1", track_ids=np.arange(n), gaussians=items))
    loaded = IndexStore(tmp_path, kind="sq8").load_current("v1")
    assert loaded is not None and loaded.codes is not None
    query = _query(5)
    hits = loaded.search(query, lam=0.7, k=min(2, n), rescore_head=0)
    expected = composite_scores(query, one, lam=0.7).score[0, 0]
    assert len(hits) == min(2, n) and all(h.score == pytest.approx(expected, abs=1e-9) for h in hits)
