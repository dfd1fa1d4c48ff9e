"""Training losses of the shared space (CMER-CL):

- ``cca_loss``: deep CCA (Andrew et al., ICML 2013): minus the total canonical correlation of the two batches
  of point embeddings, from covariances regularised with ``reg * I``; divided by d, so it lies in [-1, 0].
- ``kl_rank_loss``: the KL ranking hinge with the diagonal-Gaussian KL, both anchors, every other batch item a
  negative: ``max(0, alpha + KL(anchor || positive) - KL(anchor || negative))``, with KL divided by d (the
  scale the ranking score uses).
- ``composite_loss``: ``lam * cca + (1 - lam) * kl_rank``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from models.encoders import Embedding
from models.scoring_torch import kl_matrix

__all__ = ["cca_loss", "composite_loss", "fit_linear_cca", "kl_matrix", "kl_rank_loss"]


def _inverse_sqrt(sigma: Tensor) -> Tensor:
    eigenvalues, eigenvectors = torch.linalg.eigh(sigma)
    return eigenvectors @ torch.diag(eigenvalues.clamp_min(1e-12).rsqrt()) @ eigenvectors.T


def centred(h: Tensor, groups: Tensor | None) -> Tensor:
    """(B, d) rows minus their mean, or minus the mean of their group where (B,) ``groups`` are given."""
    if groups is None:
        return h - h.mean(0)
    _, index = torch.unique(groups, return_inverse=True)
    sums = torch.zeros(int(index.max()) + 1, h.shape[1], dtype=h.dtype, device=h.device).index_add_(0, index, h)
    counts = torch.bincount(index).to(h.dtype)[:, None]
    return h - (sums / counts)[index]


def cca_loss(h1: Tensor, h2: Tensor, *, reg: float, groups: Tensor | None = None) -> Tensor:
    """Minus the mean canonical correlation between (B, d) batches (computed in float64); with (B,) ``groups``,
    each row is centred on its group's mean, so what tells the groups apart counts for nothing."""
    n, d = h1.shape
    h1, h2 = centred(h1.double(), groups), centred(h2.double(), groups)
    eye = torch.eye(d, dtype=torch.float64, device=h1.device)
    s11 = h1.T @ h1 / (n - 1) + reg * eye
    s22 = h2.T @ h2 / (n - 1) + reg * eye
    s12 = h1.T @ h2 / (n - 1)
    t = _inverse_sqrt(s11) @ s12 @ _inverse_sqrt(s22)
    return (-torch.linalg.svdvals(t).sum() / d).to(h1.dtype if h1.dtype != torch.float64 else torch.float32)


def fit_linear_cca(h1: Tensor, h2: Tensor, *, reg: float
                   ) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor], Tensor]:
    """Linear CCA of (N, d) views: per view (mean, weight) mapping ``(h - mean) @ weight`` to canonical
    variates scaled by sqrt(correlation), and the canonical correlations (d,), largest first."""
    n, d = h1.shape
    h1, h2 = h1.double(), h2.double()
    m1, m2 = h1.mean(0), h2.mean(0)
    c1, c2 = h1 - m1, h2 - m2
    eye = torch.eye(d, dtype=torch.float64)
    w1, w2 = _inverse_sqrt(c1.T @ c1 / (n - 1) + reg * eye), _inverse_sqrt(c2.T @ c2 / (n - 1) + reg * eye)
    u, rho, vh = torch.linalg.svd(w1 @ (c1.T @ c2 / (n - 1)) @ w2)
    scale = torch.diag(rho.clamp(0, 1).sqrt())
    return (m1.float(), (w1 @ u @ scale).float()), (m2.float(), (w2 @ vh.T @ scale).float()), rho.float()


def _hinge(kl: Tensor, alpha: float, negatives: Tensor | None = None) -> Tensor:
    """Mean over anchors i and negatives j of max(0, alpha + kl[i, i] - kl[i, j]); negatives are every j != i,
    or where the boolean (B, B) ``negatives`` allows."""
    n = kl.shape[0]
    hinge = torch.relu(alpha + kl.diagonal()[:, None] - kl)
    allowed = ~torch.eye(n, dtype=torch.bool, device=kl.device)
    if negatives is not None:
        allowed = allowed & negatives
    return hinge[allowed].mean() if allowed.any() else kl.new_zeros(())


def kl_rank_loss(music: Embedding, emotion: Embedding, *, alpha: float, negatives: Tensor | None = None) -> Tensor:
    """KL ranking hinge with music anchors (KL(N_m || N_e)) plus emotion anchors (KL(N_e || N_m)).

    ``negatives`` (B, B, symmetric) can exclude false negatives: pairs whose emotion inputs are the same, as
    happens with categorical labels (every EMOPIA clip of a quadrant has the same curve)."""
    d = music.mu.shape[1]
    m2e = kl_matrix(music.mu, music.logvar, emotion.mu, emotion.logvar) / d
    e2m = kl_matrix(emotion.mu, emotion.logvar, music.mu, music.logvar) / d
    return _hinge(m2e, alpha, negatives) + _hinge(e2m, alpha, negatives)


def composite_loss(music: Embedding, emotion: Embedding, *, lam: float, alpha: float, reg: float,
                   negatives: Tensor | None = None, groups: Tensor | None = None) -> tuple[Tensor, dict[str, float]]:
    """``lam * CCA + (1 - lam) * KLrank``; a term with zero weight is not computed. Returns the loss and its parts.
    ``groups``: the CCA centres each group on its own mean (``cca_loss``)."""
    zero = music.E.new_zeros(())
    cca = cca_loss(music.E, emotion.E, reg=reg, groups=groups) if lam > 0 else zero
    kl = kl_rank_loss(music, emotion, alpha=alpha, negatives=negatives) if lam < 1 else zero
    loss = lam * cca + (1 - lam) * kl
    return loss, {"loss": loss.item(), "cca": cca.item(), "kl_rank": kl.item()}
