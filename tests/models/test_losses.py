import numpy as np
import pytest
import torch

from models.config import ModelConfig
from models.encoders import Embedding
from models.losses import cca_loss, centred, composite_loss, fit_linear_cca, kl_matrix, kl_rank_loss
from models.scoring import kl_diag

REG = ModelConfig().cca_reg


def _pair(n: int = 32, d: int = 8, *, noise: float, seed: int = 0) -> tuple[Embedding, Embedding]:
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(n, d, generator=g)
    mu = torch.randn(n, d, generator=g) * 2
    logvar = torch.rand(n, d, generator=g) - 0.5

    def noisy(x: torch.Tensor) -> torch.Tensor:
        return x + noise * torch.randn(x.shape, generator=g)

    music = Embedding(base.clone().requires_grad_(), mu.clone().requires_grad_(), logvar.clone().requires_grad_())
    emotion = Embedding(noisy(base @ torch.randn(d, d, generator=g)), noisy(mu), logvar)
    return music, emotion


def _shuffled(e: Embedding) -> Embedding:
    perm = torch.randperm(e.E.shape[0], generator=torch.Generator().manual_seed(1))
    return Embedding(e.E[perm], e.mu[perm], e.logvar[perm])


def test_kl_matrix_matches_the_numpy_formula():
    music, emotion = _pair(noise=0.3)
    expected = kl_diag(*(t.detach().numpy() for t in (music.mu, music.logvar, emotion.mu, emotion.logvar)))
    np.testing.assert_allclose(kl_matrix(music.mu, music.logvar, emotion.mu, emotion.logvar).detach().numpy(),
                               expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("loss", ["cca", "kl_rank", "composite"])
def test_each_loss_is_lowest_for_matched_pairs_and_has_finite_gradients(loss: str):
    music, emotion = _pair(noise=0.1)

    def value(m: Embedding, e: Embedding) -> torch.Tensor:
        if loss == "cca":
            return cca_loss(m.E, e.E, reg=REG)
        if loss == "kl_rank":
            return kl_rank_loss(m, e, alpha=0.5)
        return composite_loss(m, e, lam=0.5, alpha=0.5, reg=REG)[0]

    matched, mismatched = value(music, emotion), value(music, _shuffled(emotion))
    assert matched < mismatched
    matched.backward()
    used = {"cca": ("E",), "kl_rank": ("mu", "logvar"), "composite": ("E", "mu", "logvar")}[loss]
    for name in used:
        grad = getattr(music, name).grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_cca_loss_is_minus_one_for_linearly_related_views():
    music, _ = _pair(n=256, d=4, noise=0.0)
    related = music.E.detach() @ torch.tensor([[2.0, 0, 0, 1], [0, 1, 0, 0], [0, 0, -3, 0], [1, 0, 0, 1]])
    assert cca_loss(music.E, related, reg=1e-6).item() == pytest.approx(-1.0, abs=1e-3)


def test_cca_within_groups_earns_nothing_for_what_tells_the_groups_apart():
    torch.manual_seed(0)
    groups = torch.arange(4).repeat_interleave(32)
    offsets = 5 * torch.randn(4, 8)
    h1, h2 = offsets[groups] + torch.randn(128, 8), offsets[groups] + torch.randn(128, 8)  # only the sets agree
    within = centred(h1, groups)
    assert torch.allclose(torch.stack([within[groups == g].mean(0) for g in range(4)]), torch.zeros(4, 8), atol=1e-5)
    assert cca_loss(h1, h2, reg=1e-3) < -0.3
    assert cca_loss(h1, h2, reg=1e-3, groups=groups) > -0.3
    related = torch.randn(128, 8)  # agreement inside each set still counts
    assert cca_loss(offsets[groups] + related, 2 * related, reg=1e-3, groups=groups) < -0.99


def test_composite_skips_a_term_with_zero_weight():
    music, emotion = _pair(noise=0.1)
    _, parts = composite_loss(music, emotion, lam=1.0, alpha=0.5, reg=REG)
    assert parts["kl_rank"] == 0.0 and parts["cca"] < 0
    _, parts = composite_loss(music, emotion, lam=0.0, alpha=0.5, reg=REG)
    assert parts["cca"] == 0.0 and parts["kl_rank"] > 0


def test_linear_cca_alignment_makes_partners_correlate_dimension_by_dimension():
    g = torch.Generator().manual_seed(0)
    latent = torch.randn(500, 3, generator=g)
    h1 = latent @ torch.randn(3, 6, generator=g) + 0.05 * torch.randn(500, 6, generator=g)
    h2 = latent @ torch.randn(3, 6, generator=g) + 0.05 * torch.randn(500, 6, generator=g)
    (m1, w1), (m2, w2), rho = fit_linear_cca(h1, h2, reg=REG)
    assert rho[:3].min() > 0.99 and rho[3:].max() < 0.3
    z1, z2 = ((h1 - m1) @ w1).numpy(), ((h2 - m2) @ w2).numpy()
    for k in range(3):
        assert np.corrcoef(z1[:, k], z2[:, k])[0, 1] > 0.99


def test_excluded_negatives_do_not_count():
    music, emotion = _pair(n=6, d=4, noise=0.1)
    # make items 0 and 1 share one emotion input, as two clips of one EMOPIA quadrant do
    emotion = Embedding(emotion.E, torch.cat([emotion.mu[:1], emotion.mu[:1], emotion.mu[2:]]),
                        torch.cat([emotion.logvar[:1], emotion.logvar[:1], emotion.logvar[2:]]))
    allowed = torch.ones(6, 6, dtype=torch.bool)
    allowed[0, 1] = allowed[1, 0] = False
    with_mask = kl_rank_loss(music, emotion, alpha=0.5, negatives=allowed)
    manual = kl_rank_loss(music, emotion, alpha=0.5)
    assert with_mask != manual
    none_allowed = torch.zeros(6, 6, dtype=torch.bool)
    assert kl_rank_loss(music, emotion, alpha=0.5, negatives=none_allowed).item() == 0.0
