"""``moodspace distil-frontend``: distil the MSD musicnn (``musicnn-msd-tags``) into ``models.student``.

For every clip of the given manifests' train splits: the 3 s log-mel windows (student input) and musicnn's 250
outputs for the same windows (the teacher, read from the feature cache when training already computed them).
The student learns the standardised penultimate features by mean squared error and the tag activations by binary
cross-entropy on the teacher's probabilities (soft targets); early stopping on the val splits' windows. Reported:
R^2 of the penultimate features and the tags' mean absolute error on the val windows. No emotion label is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from models.atomic import atomic_file
from models.config import FrontEndName
from models.frontend import frontend_config, load_audio
from models.manifest import Clip, audio_path, read_manifest
from models.musicnn import log_mel, windows
from models.student import N_PENULTIMATE, MusicnnStudent
from training.features import clip_features
from training.loop import OptimConfig, Validation, descend, fit, mean_parts, seed_everything
from training.parallel import parallel_map

TEACHER: FrontEndName = "musicnn-msd-tags"


@dataclass(frozen=True)
class DistilConfig(OptimConfig):
    epochs: int = 30
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    patience: int = 5


def _pairs(clip: Clip, *, manifest: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """(W, 187, 96) float16 windows and (W, 250) teacher outputs of one clip; None if it does not decode."""
    config = frontend_config(TEACHER)
    path = audio_path(manifest, clip)
    try:
        y = load_audio(path, sr=config.sr)
        teacher = clip_features(path, config)
    except Exception:  # a clip that does not decode is left out of distillation, as out of training
        return None
    inputs = windows(log_mel(y, config.sr), hop=config.hops_per_frame)
    n = min(len(inputs), len(teacher))
    return inputs[:n].astype(np.float16), teacher[:n]


def window_sets(manifests: list[Path], split: str, *, workers: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    inputs, targets = [], []
    for manifest in manifests:
        clips = [c for c in read_manifest(manifest) if c.split == split]
        for pair in parallel_map(partial(_pairs, manifest=manifest), clips, workers=workers,
                                 desc=f"windows {manifest.stem}:{split}", unit="clip"):
            if pair is not None:
                inputs.append(pair[0])
                targets.append(pair[1])
    return np.concatenate(inputs), np.concatenate(targets)


@dataclass(frozen=True)
class DistilResult:
    train_windows: int
    val_windows: int
    penultimate_r2: float
    tags_mae: float
    best_epoch: int


def _losses(model: MusicnnStudent, x: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    standardised, logits = model(x.float())
    goal = (target[:, :N_PENULTIMATE] - model.penultimate_mean) / model.penultimate_std
    return (nn.functional.mse_loss(standardised, goal),
            nn.functional.binary_cross_entropy_with_logits(logits, target[:, N_PENULTIMATE:]))


@torch.no_grad()
def _val_scores(model: MusicnnStudent, x: Tensor, target: Tensor) -> tuple[float, float]:
    model.eval()
    out = torch.cat([model.outputs(x[s : s + 256].float()) for s in range(0, len(x), 256)])
    residual = ((out[:, :N_PENULTIMATE] - target[:, :N_PENULTIMATE]) ** 2).sum()
    total = ((target[:, :N_PENULTIMATE] - target[:, :N_PENULTIMATE].mean(dim=0)) ** 2).sum()
    return float(1 - residual / total), float((out[:, N_PENULTIMATE:] - target[:, N_PENULTIMATE:]).abs().mean())


def distil(manifests: list[Path], *, out: Path, config: DistilConfig = DistilConfig(),
           workers: int | None = None) -> DistilResult:
    seed_everything(config.seed)
    x_train, y_train = (torch.from_numpy(a) for a in window_sets(manifests, "train", workers=workers))
    x_val, y_val = (torch.from_numpy(a) for a in window_sets(manifests, "val", workers=workers))
    model = MusicnnStudent()
    model.penultimate_mean.copy_(y_train[:, :N_PENULTIMATE].mean(dim=0))
    model.penultimate_std.copy_(y_train[:, :N_PENULTIMATE].std(dim=0).clamp_min(1e-3))
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)

    def train_epoch() -> dict[str, float]:
        parts = []
        for batch in torch.randperm(len(x_train), generator=generator).split(config.batch_size):
            penultimate, tags = _losses(model, x_train[batch], y_train[batch])
            loss = penultimate + tags
            descend(optimizer, loss)
            parts.append({"loss": loss.item(), "penultimate": penultimate.item(), "tags": tags.item()})
        return mean_parts(parts)

    def validate() -> Validation[tuple[float, float]]:
        r2, mae = _val_scores(model, x_val, y_val)
        return Validation(r2, {"val_r2": r2, "val_tags_mae": mae}, (r2, mae))

    result = fit(model, epochs=config.epochs, patience=config.patience, train_epoch=train_epoch, validate=validate,
                 desc="distil")
    with atomic_file(out) as handle:
        torch.save(model.state_dict(), handle)
    assert result.best is not None and result.best.detail is not None
    r2, mae = result.best.detail
    return DistilResult(len(x_train), len(x_val), r2, mae, result.best_epoch)
