import json
import threading
from pathlib import Path

import numpy as np
import pytest

from app.index import FLAT_MARGIN, IndexStore, Snapshot, build_snapshot
from models.scoring import Gaussians, augment_query, composite_scores


def _gaussians(n: int, d: int = 8, seed: int = 0) -> Gaussians:
    rng = np.random.default_rng(seed)
    return Gaussians(rng.normal(size=(n, d)), rng.normal(size=(n, d)), rng.uniform(-3, 2, size=(n, d)))


def _brute(query: Gaussians, items: Gaussians, lam: float, k: int) -> np.ndarray:
    return np.argsort(-composite_scores(query, items, lam=lam).score[0], kind="stable")[:k]


@pytest.mark.parametrize("lam", [0.0, 0.3, 0.7, 1.0])
def test_flat_index_returns_the_brute_force_top_k_with_exact_scores(lam: float):
    items = _gaussians(3000)
    snapshot = build_snapshot(model_version="v", track_ids=np.arange(3000) + 100, gaussians=items)
    for seed in range(5):
        query = Gaussians(*(p[:1] for p in _gaussians(1, seed=seed + 10)))
        hits = snapshot.search(query, lam=lam, k=10, rescore_head=64)
        assert [h.track_id - 100 for h in hits] == list(_brute(query, items, lam, 10))
        direct = composite_scores(query, items, lam=lam)
        first = hits[0].track_id - 100
        assert hits[0].score == pytest.approx(direct.score[0, first], rel=1e-6, abs=1e-9)
        assert hits[0].corr == pytest.approx(direct.corr[0, first], rel=1e-6, abs=1e-9)
        assert hits[0].neg_kl == pytest.approx(direct.neg_kl[0, first], rel=1e-6, abs=1e-9)


def test_hnsw_on_mips_transformed_vectors_recalls_the_exact_top_10():
    items = _gaussians(5000, seed=3)
    hnsw = build_snapshot(model_version="v", track_ids=np.arange(5000), gaussians=items, kind="hnsw")
    recall = []
    for seed in range(20):
        query = Gaussians(*(p[:1] for p in _gaussians(1, seed=100 + seed)))
        found = {h.track_id for h in hnsw.search(query, lam=0.5, k=10, rescore_head=100, ef_search=200)}
        recall.append(len(found & set(_brute(query, items, 0.5, 10))) / 10)
    assert np.mean(recall) >= 0.95


def test_saved_snapshot_loads_back_and_serves_the_same(tmp_path: Path):
    store = IndexStore(tmp_path)
    items = _gaussians(200)
    snapshot = build_snapshot(model_version="v1", track_ids=np.arange(200), gaussians=items)
    store.publish(snapshot)
    served = store.current  # the saved files, memory-mapped, not the builder's copy
    assert served is not None and all(isinstance(p, np.memmap) for p in (*served.gaussians, served.track_ids))
    pointer = json.loads((tmp_path / "current.json").read_text())
    assert pointer == {"model_version": "v1", "generation": snapshot.generation}
    fresh = IndexStore(tmp_path)
    assert fresh.load_current("v2") is None  # another model version's index is never served
    loaded = fresh.load_current("v1")
    query = Gaussians(*(p[:1] for p in _gaussians(1, seed=9)))
    assert loaded is not None
    assert loaded.search(query, lam=0.5, k=5, rescore_head=10) == snapshot.search(query, lam=0.5, k=5,
                                                                                  rescore_head=10)


@pytest.mark.parametrize("kind", ["flat", "fp16", "sq8", "hnsw"])
def test_a_loaded_snapshot_is_memory_mapped_and_reads_older_snapshots(tmp_path: Path, kind: str):
    store = IndexStore(tmp_path)
    snapshot = build_snapshot(model_version="v", track_ids=np.arange(50) * 3, gaussians=_gaussians(50), kind=kind)
    folder = store.save(snapshot)
    loaded = store.load(folder)
    assert all(isinstance(part, np.memmap) for part in (*loaded.gaussians, loaded.track_ids))
    query = Gaussians(*(p[:1] for p in _gaussians(1, seed=4)))
    expected = snapshot.search(query, lam=0.7, k=5, rescore_head=20)
    assert loaded.search(query, lam=0.7, k=5, rescore_head=20) == expected
    # A snapshot saved before the arrays were separate files (items.npz) still loads and answers the same.
    arrays = {name: np.load(folder / f"{name}.npy") for name in ("track_ids", "E", "mu", "logvar", "centre")}
    np.savez(folder / "items.npz", **arrays)
    for name in arrays:
        (folder / f"{name}.npy").unlink()
    assert store.load(folder).search(query, lam=0.7, k=5, rescore_head=20) == expected


def test_a_failed_save_changes_nothing(tmp_path: Path, monkeypatch):
    store = IndexStore(tmp_path)
    old = build_snapshot(model_version="v", track_ids=np.arange(10), gaussians=_gaussians(10))
    store.publish(old)
    served = store.current
    new = build_snapshot(model_version="v", track_ids=np.arange(20), gaussians=_gaussians(20))

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("app.index.np.save", disk_full)
    with pytest.raises(OSError, match="No space left"):
        store.publish(new)
    assert store.current is served and served is not None and served.generation == old.generation
    assert json.loads((tmp_path / "current.json").read_text())["generation"] == old.generation
    assert [p.name for p in (tmp_path / "v").iterdir()] == [old.generation]


def test_readers_see_old_or_new_snapshot_during_swaps(tmp_path: Path):
    store = IndexStore(tmp_path)
    snapshots = [build_snapshot(model_version="v", track_ids=np.arange(n) + n * 1000, gaussians=_gaussians(n, seed=n))
                 for n in (50, 60, 70)]
    store.swap(snapshots[0])
    query = Gaussians(*(p[:1] for p in _gaussians(1, seed=5)))
    errors, stop = [], threading.Event()

    def read() -> None:
        while not stop.is_set():
            hits = store.current.search(query, lam=0.5, k=5, rescore_head=10)
            if len({h.track_id // 1000 for h in hits}) != 1 or len(hits) != 5:
                errors.append(hits)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for thread in readers:
        thread.start()
    for _ in range(50):
        for snapshot in snapshots:
            store.swap(snapshot)
    stop.set()
    for thread in readers:
        thread.join()
    assert not errors


def test_empty_catalogue_gives_empty_results():
    snapshot = build_snapshot(model_version="v", track_ids=np.zeros(0, dtype=np.int64),
                              gaussians=Gaussians(*(np.zeros((0, 4)),) * 3))
    assert snapshot.size == 0
    assert snapshot.search(Gaussians(*(np.zeros((1, 4)),) * 3), lam=0.5, k=3, rescore_head=10) == []


@pytest.mark.parametrize("lam", [0.5, 0.9, 0.98])
def test_fp16_codes_give_the_exact_top_k_by_their_certificate(lam: float):
    items = _gaussians(4000, seed=5)
    snapshot = build_snapshot(model_version="v", track_ids=np.arange(4000), gaussians=items, kind="fp16")
    for seed in range(10):
        query = Gaussians(*(p[:1] for p in _gaussians(1, seed=200 + seed)))
        hits = snapshot.search(query, lam=lam, k=10, rescore_head=10)
        assert [h.track_id for h in hits] == list(_brute(query, items, lam, 10))


@pytest.mark.parametrize("kind", ["flat", "fp16"])
def test_near_ties_beyond_the_first_candidates_make_the_certificate_look_further(kind: str):
    """200 items a hair apart: neither half-precision codes nor float32 vectors can order them, so the first 10
    candidates cannot be certified and the scan grows until the exact order is found."""
    base = _gaussians(1, seed=7)
    rng = np.random.default_rng(8)
    items = Gaussians(*(np.repeat(p, 200, axis=0) + rng.normal(0, 1e-6, (200, p.shape[1])) for p in base))
    snapshot = build_snapshot(model_version="v", track_ids=np.arange(200), gaussians=items, kind=kind)
    query = Gaussians(*(p + 0.05 for p in base))
    q, offset = augment_query(query, lam=0.5, centre=snapshot.centre)
    rows, _ = snapshot.certified(query, q, float(offset[0]), lam=0.5, k=10, head=10)
    assert rows.size > 10
    assert [h.track_id for h in snapshot.search(query, lam=0.5, k=10, rescore_head=10)] == \
        list(_brute(query, items, 0.5, 10))


def test_a_certified_flat_search_rescores_a_few_candidates_past_k_not_a_fixed_head(monkeypatch):
    items = _gaussians(3000, seed=3)
    snapshot = build_snapshot(model_version="v", track_ids=np.arange(3000), gaussians=items)
    rescored: list[int] = []
    exact = Snapshot._exact
    monkeypatch.setattr(Snapshot, "_exact", lambda self, query, rows, lam: rescored.append(rows.size) or
                        exact(self, query, rows, lam))
    query = Gaussians(*(p[:1] for p in _gaussians(1, seed=9)))
    hits = snapshot.search(query, lam=0.5, k=10, rescore_head=256)
    assert [h.track_id for h in hits] == list(_brute(query, items, 0.5, 10))
    assert rescored == [10 + FLAT_MARGIN]


def test_a_flat_snapshot_saved_without_error_bounds_rescores_its_fixed_head(tmp_path: Path):
    items = _gaussians(500, seed=2)
    store = IndexStore(tmp_path)
    store.publish(build_snapshot(model_version="v1", track_ids=np.arange(500), gaussians=items))
    manifest_path = next(tmp_path.glob("v1/*/manifest.json"))
    manifest = json.loads(manifest_path.read_text())
    assert "max_error" in manifest and "abs_max" in manifest
    manifest_path.write_text(json.dumps({k: v for k, v in manifest.items() if k not in ("max_error", "abs_max")}))
    loaded = IndexStore(tmp_path).load_current("v1")
    assert loaded is not None and loaded.max_error is None and loaded.first_head(5, 40) == 40
    query = Gaussians(*(p[:1] for p in _gaussians(1, seed=4)))
    assert [h.track_id for h in loaded.search(query, lam=0.9, k=5, rescore_head=40)] == list(_brute(query, items,
                                                                                                    0.9, 5))


@pytest.mark.parametrize("kind", ["flat", "fp16"])
def test_a_saved_snapshot_keeps_its_error_bounds(tmp_path: Path, kind: str):
    store = IndexStore(tmp_path)
    snapshot = build_snapshot(model_version="v1", track_ids=np.arange(300), gaussians=_gaussians(300), kind=kind)
    store.publish(snapshot)
    loaded = IndexStore(tmp_path).load_current("v1")
    assert loaded is not None and loaded.kind == kind
    np.testing.assert_array_equal(loaded.max_error, snapshot.max_error)
    query = Gaussians(*(p[:1] for p in _gaussians(1, seed=4)))
    assert loaded.search(query, lam=0.9, k=5, rescore_head=5) == snapshot.search(query, lam=0.9, k=5, rescore_head=5)


@pytest.mark.parametrize("kind", ["flat", "fp16", "sq8", "hnsw"])
def test_a_batch_of_queries_gets_the_answers_each_gets_alone(kind: str):
    """One FAISS call for 30 queries (different lams and k, 30 > FAISS's BLAS threshold of 20) ranks each
    query's tracks as its own search does, with the same float64 scores."""
    items = _gaussians(4000, seed=5)
    snapshot = build_snapshot(model_version="v", track_ids=np.arange(4000) + 7, gaussians=items, kind=kind)
    queries = _gaussians(30, seed=6)
    lams = [(0.5, 0.9, 0.98, 0.2)[i % 4] for i in range(30)]
    ks = [(10, 3, 25)[i % 3] for i in range(30)]
    together = snapshot.search_many(queries, lams=lams, ks=ks, rescore_head=64, ef_search=200)
    for i, hits in enumerate(together):
        alone = snapshot.search(Gaussians(*(p[i : i + 1] for p in queries)), lam=lams[i], k=ks[i], rescore_head=64,
                                ef_search=200)
        assert [h.track_id for h in hits] == [h.track_id for h in alone]
        assert [h.score for h in hits] == pytest.approx([h.score for h in alone], rel=1e-12, abs=1e-12)
        if kind == "flat":
            assert [h.track_id - 7 for h in hits] == list(_brute(Gaussians(*(p[i : i + 1] for p in queries)),
                                                                items, lams[i], ks[i]))
