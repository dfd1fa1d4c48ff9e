"""The one early-stopping training loop. Every trainer gives it a module whose weights it keeps, a function that
runs one epoch and a function that scores the epoch on validation data (higher is better); ``fit`` keeps the
weights of the best epoch, stops after ``patience`` epochs without a better score and restores the best.

``OptimConfig`` holds the fields every trainer shares; trainers extend it with their own.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

V = TypeVar("V")


@dataclass(frozen=True)
class OptimConfig:
    epochs: int = 150
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    patience: int = 20  # epochs without a better validation score before stopping
    seed: int = 0


@dataclass(frozen=True)
class Validation(Generic[V]):
    """One epoch's validation: the score early stopping compares, columns for the history, and any detail."""

    score: float
    record: dict[str, float] = field(default_factory=dict)
    detail: V | None = None


@dataclass
class FitResult(Generic[V]):
    best_epoch: int = 0
    best: Validation[V] | None = None
    history: list[dict[str, float]] = field(default_factory=list)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def fit(module: nn.Module, *, epochs: int, patience: int, train_epoch: Callable[[], dict[str, float]],
        validate: Callable[[], Validation[V]], desc: str, progress: bool = True, min_epochs: int = 1) -> FitResult[V]:
    """Run up to ``epochs`` epochs of ``train_epoch`` (which returns the epoch's mean loss parts); keep the state of
    ``module`` after the epoch with the best ``validate().score`` from epoch ``min_epochs`` on (or the last, if
    fewer run; patience counts from there too) and load it back at the end."""
    result: FitResult[V] = FitResult()
    best_state, best_score, stale = copy.deepcopy(module.state_dict()), -np.inf, 0
    bar = tqdm(range(1, epochs + 1), desc=desc, unit="epoch", disable=not progress)
    for epoch in bar:
        module.train()
        parts = train_epoch()
        validation = validate()
        result.history.append({"epoch": epoch, **parts, **validation.record})
        bar.set_postfix({**({"loss": f"{parts['loss']:.3f}"} if "loss" in parts else {}),
                         "val": f"{validation.score:.3f}"})
        if epoch < min(min_epochs, epochs):
            continue
        if validation.score > best_score:
            best_state, best_score, stale = copy.deepcopy(module.state_dict()), validation.score, 0
            result.best_epoch, result.best = epoch, validation
        elif (stale := stale + 1) >= patience:
            break
    module.load_state_dict(best_state)
    module.eval()
    return result


def descend(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> float:
    """One gradient step on ``loss``; its value."""
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


@torch.no_grad()
def average_weights(average: nn.Module, model: nn.Module, *, decay: float) -> None:
    """One step of an exponential moving average of ``model``'s parameters into ``average`` (a copy of it):
    ``average = decay * average + (1 - decay) * model``. Buffers are left as they are."""
    for mean, current in zip(average.parameters(), model.parameters(), strict=True):
        mean.lerp_(current, 1.0 - decay)


def mean_parts(parts: list[dict[str, float]]) -> dict[str, float]:
    """Mean of each loss part over the epoch's steps that have it (a term a batch cannot form, such as one that
    needs two kinds of items, is left out of that step's parts)."""
    names = dict.fromkeys(k for p in parts for k in p)
    return {k: float(np.mean([p[k] for p in parts if k in p])) for k in names}
