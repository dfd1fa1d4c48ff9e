"""The composite score in torch, differentiable, for training: the same formula as ``models.scoring`` (numpy,
float64, for serving and evaluation), ``score = lam * pearson(E_q, E_i) - (1 - lam) * KL(N_q || N_i) / d``."""

from __future__ import annotations

from torch import Tensor

from models.encoders import Embedding


def kl_matrix(mu_q: Tensor, logvar_q: Tensor, mu_i: Tensor, logvar_i: Tensor) -> Tensor:
    """(Nq, Ni) KL(N_q || N_i) between diagonal Gaussians given (N, d) means and log-variances."""
    var_q, inv_var_i = logvar_q.exp(), (-logvar_i).exp()
    trace = var_q @ inv_var_i.T  # sum_k v_q / v_i
    mahalanobis = (mu_q**2) @ inv_var_i.T - 2 * mu_q @ (mu_i * inv_var_i).T + (mu_i**2 * inv_var_i).sum(1)[None]
    log_det = logvar_i.sum(1)[None, :] - logvar_q.sum(1)[:, None]
    return 0.5 * (trace + mahalanobis + log_det - mu_q.shape[1])


def centred_unit(E: Tensor) -> Tensor:
    """Rows minus their mean, scaled to unit norm: ``pearson(a, b) = <c(a), c(b)>``."""
    centred = E - E.mean(dim=1, keepdim=True)
    return centred / centred.norm(dim=1, keepdim=True).clamp_min(1e-9)


def composite_score_matrix(query: Embedding, items: Embedding, *, lam: float) -> Tensor:
    """(Nq, Ni) composite scores of every query against every item."""
    d = query.E.shape[1]
    corr = centred_unit(query.E) @ centred_unit(items.E).T
    return lam * corr - (1 - lam) * kl_matrix(query.mu, query.logvar, items.mu, items.logvar) / d
