import faiss
import numpy as np
import pytest

from models.scoring import (
    Gaussians,
    augment_items,
    augment_query,
    composite_scores,
    kl_diag,
    pearson,
    split_scores,
)


def _gaussians(rng: np.random.Generator, n: int, d: int, *, logvar_scale: float) -> Gaussians:
    return Gaussians(rng.normal(size=(n, d)), rng.normal(size=(n, d)) * 2 + 0.5,
                     rng.uniform(-logvar_scale, logvar_scale, size=(n, d)))


def test_pearson_and_kl_match_textbook_values():
    a, b = np.array([[1.0, 2.0, 3.0]]), np.array([[2.0, 4.0, 7.0], [3.0, 2.0, 1.0]])
    np.testing.assert_allclose(pearson(a, b)[0], [np.corrcoef(a[0], b[0])[0, 1], -1.0])
    # KL(N(0, 1) || N(1, e^2)) in one dimension: log(e) + (1 + 1) / (2 e^2) - 1/2
    kl = kl_diag(np.zeros((1, 1)), np.zeros((1, 1)), np.ones((1, 1)), np.full((1, 1), 2.0))
    assert kl[0, 0] == pytest.approx(1.0 + 2.0 / (2 * np.e**2) - 0.5)
    same = kl_diag(np.ones((1, 3)), np.full((1, 3), 0.3), np.ones((1, 3)), np.full((1, 3), 0.3))
    assert same[0, 0] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("lam", [0.0, 0.2, 0.5, 0.8, 1.0])
@pytest.mark.parametrize("logvar_scale", [0.01, 4.0, 9.0])
def test_augmented_inner_product_equals_the_composite_score(lam: float, logvar_scale: float):
    rng = np.random.default_rng(int(lam * 10) + int(logvar_scale))
    items, query = _gaussians(rng, 300, 16, logvar_scale=logvar_scale), _gaussians(rng, 7, 16, logvar_scale=4.0)
    centre = items.mu.mean(axis=0)
    direct = composite_scores(query, items, lam=lam)
    q, offset = augment_query(query, lam=lam, centre=centre)
    inner = q @ augment_items(items, centre=centre).T + offset[:, None]
    np.testing.assert_allclose(inner, direct.score, rtol=1e-9, atol=1e-9 * np.abs(direct.score).max())
    np.testing.assert_array_equal(np.argsort(-inner, axis=1)[:, :20], np.argsort(-direct.score, axis=1)[:, :20])


def test_split_scores_give_the_parts_of_given_pairs():
    rng = np.random.default_rng(3)
    query, items = _gaussians(rng, 5, 8, logvar_scale=2), _gaussians(rng, 5, 8, logvar_scale=2)
    full = composite_scores(query, items, lam=0.3)
    rows = split_scores(query, items, lam=0.3, centre=items.mu.mean(axis=0))
    for name in ("score", "corr", "neg_kl"):
        np.testing.assert_allclose(getattr(rows, name), np.diag(getattr(full, name)), rtol=1e-10)


def test_faiss_flat_ip_top_k_equals_brute_force():
    rng = np.random.default_rng(7)
    items, query = _gaussians(rng, 2000, 16, logvar_scale=3), _gaussians(rng, 20, 16, logvar_scale=3)
    centre = items.mu.mean(axis=0)
    xb = augment_items(items, centre=centre).astype(np.float32)
    q, _ = augment_query(query, lam=0.6, centre=centre)  # a per-query offset does not change the ranking
    index = faiss.IndexFlatIP(xb.shape[1])
    index.add(xb)
    _, I = index.search(q.astype(np.float32), 10)
    brute = np.argsort(-composite_scores(query, items, lam=0.6).score, axis=1)[:, :10]
    agree = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(I, brute, strict=True)])
    assert agree >= 0.99  # float32 may swap near-ties at the boundary, nothing more
    np.testing.assert_array_equal(I[:, 0], brute[:, 0])


def test_torch_composite_score_matches_the_numpy_one():
    import torch

    from models.encoders import Embedding
    from models.scoring_torch import composite_score_matrix

    rng = np.random.default_rng(3)
    query, items = _gaussians(rng, 5, 6, logvar_scale=1.0), _gaussians(rng, 9, 6, logvar_scale=1.0)
    as_torch = [Embedding(*(torch.from_numpy(x) for x in g)) for g in (query, items)]
    for lam in (0.0, 0.5, 0.98):
        np.testing.assert_allclose(composite_score_matrix(*as_torch, lam=lam).numpy(),
                                   composite_scores(query, items, lam=lam).score, rtol=1e-9, atol=1e-9)


def test_split_scores_are_the_matrix_diagonal():
    rng = np.random.default_rng(4)
    query, items = _gaussians(rng, 7, 5, logvar_scale=1.0), _gaussians(rng, 7, 5, logvar_scale=1.0)
    full = composite_scores(query, items, lam=0.7)
    rows = split_scores(query, items, lam=0.7, centre=np.full(5, 0.3))
    np.testing.assert_allclose(rows.score, np.diag(full.score), rtol=1e-9)
    np.testing.assert_allclose(rows.neg_kl, np.diag(full.neg_kl), rtol=1e-9)
