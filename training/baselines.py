"""One-way regression baselines (CMER-CL section 4.5): RegMLP and RegBiGRU map music to its clip-mean valence and
arousal; retrieval then ranks by absolute error. M2E: emotion j scores ``-|predicted_i - va_j|_1`` for music
query i; E2M: music j scores ``-|va_i - predicted_j|_1`` for emotion query i."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from models.config import EncoderConfig
from models.encoders import SequenceTrunk, pad
from training.evaluate import RetrievalMetrics, retrieval_metrics
from training.features import Item
from training.loop import Validation, descend, fit, mean_parts, seed_everything
from training.train import TrainConfig, batches, crop, feature_stats


class VARegressor(nn.Module):
    """Frame features (B, T, F) -> clip-mean (valence, arousal) on [-1, 1]."""

    feature_mean: Tensor
    feature_std: Tensor

    def __init__(self, n_features: int, encoder: EncoderConfig) -> None:
        super().__init__()
        self.register_buffer("feature_mean", torch.zeros(n_features))
        self.register_buffer("feature_std", torch.ones(n_features))
        self.trunk = SequenceTrunk(n_features, encoder)
        self.out = nn.Linear(self.trunk.out_dim, 2)

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        return torch.tanh(self.out(self.trunk((x - self.feature_mean) / self.feature_std, lengths)))


@torch.no_grad()
def regress_va(model: VARegressor, items: Sequence[Item], *, batch_size: int = 64) -> np.ndarray:
    model.eval()
    parts = [model(*pad([i.features for i in items[k : k + batch_size]])).numpy()
             for k in range(0, len(items), batch_size)]
    return np.concatenate(parts).astype(np.float64)


def _val_error(model: VARegressor, items: Sequence[Item]) -> float:
    return float(np.mean(np.abs(regress_va(model, items) - np.stack([i.va_mean for i in items]))))


def train_regressor(encoder: EncoderConfig, train_items: Sequence[Item], val_items: Sequence[Item],
                    train_config: TrainConfig, *, n_features: int) -> VARegressor:
    """MSE on the VA mean of each random window; early stopping on validation absolute error."""
    seed_everything(train_config.seed)
    rng = np.random.default_rng(train_config.seed)
    model = VARegressor(n_features, encoder)
    mean, std = feature_stats(train_items)
    model.feature_mean.copy_(mean)
    model.feature_std.copy_(std.clamp_min(1e-4))
    optimizer = torch.optim.Adam(model.parameters(), lr=train_config.lr, weight_decay=train_config.weight_decay)

    def train_epoch() -> dict[str, float]:
        losses = []
        for batch in batches(train_items, size=train_config.batch_size, rng=rng):
            windows = [crop(item, train_config.crop_frames, rng) for item in batch]
            target = torch.from_numpy(np.stack([w[1].mean(axis=0) for w in windows]))
            loss = nn.functional.mse_loss(model(*pad([w[0] for w in windows])), target)
            losses.append({"loss": descend(optimizer, loss)})
        return mean_parts(losses)

    fit(model, epochs=train_config.epochs, patience=train_config.patience, train_epoch=train_epoch,
        validate=lambda: Validation(-_val_error(model, val_items)), desc="regressor", progress=False)
    return model


def regression_metrics(predicted: np.ndarray, va: np.ndarray) -> RetrievalMetrics:
    """Retrieval metrics of a regressor ranking by absolute VA error, both directions."""
    m2e = -np.abs(predicted[:, None, :] - va[None, :, :]).sum(axis=2)
    e2m = -np.abs(va[:, None, :] - predicted[None, :, :]).sum(axis=2)
    return retrieval_metrics(m2e, e2m, va)
