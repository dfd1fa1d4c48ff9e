"""Two trained music models of one seed, their weights interpolated (WiSE-FT, Wortsman et al. 2022: a model
fitted to one kind of data and one fitted to broader data, started from the same weights, are joined by a line in
weight space along which the shift-robustness of the one and the accuracy of the other trade smoothly).

Here the two are the default's recipe (``distil-short``, best on real recordings) and a recipe that also hears the
MIDI pieces through other renderers (``rendition-origheads-ema-distil-short``, best across renderers). One seed
starts both from the same weights (``training.train.train_model`` seeds before building the model), so their
weights are comparable. After interpolation the parts fitted after training are fitted again as training fits
them: the CCA alignment on the training items, the query lam and the VA readout temperature on validation.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import torch

from models.encoders import CrossModalModel, pad
from training.classify import categorical_metrics
from training.evaluate import class_probabilities
from training.features import Item
from training.multitask import distillation_loss
from training.train import (
    QUERY_LAMS,
    Teachers,
    TrainConfig,
    align_cca,
    choose_query_lam,
    crop,
    first_renditions_label,
    fit_readout_temperature,
)


def interpolate_weights(a: CrossModalModel, b: CrossModalModel, *, alpha: float) -> dict[str, torch.Tensor]:
    """``(1 - alpha) * a + alpha * b`` for every floating tensor of the two state dicts (the feature statistics
    too); integer tensors are ``a``'s, and must equal ``b``'s."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha {alpha}: a weight between the two models lies in [0, 1]")
    state_a, state_b = a.state_dict(), b.state_dict()
    assert state_a.keys() == state_b.keys(), "the two models have different layers"
    out = {}
    for name, tensor in state_a.items():
        if tensor.is_floating_point():
            out[name] = torch.lerp(tensor, state_b[name], alpha)
        else:
            assert torch.equal(tensor, state_b[name]), f"{name}: integer tensors differ between the models"
            out[name] = tensor.clone()
    return out


def soup(a: CrossModalModel, b: CrossModalModel, *, alpha: float, train_items: Sequence[Item],
         val_items: Sequence[Item], train_config: TrainConfig | None = None) -> CrossModalModel:
    """A new model at ``alpha`` along the line from ``a`` to ``b``, its CCA alignment fitted on ``train_items`` and
    its query lam (when ``a``'s config tunes one) and readout temperature chosen on ``val_items``."""
    if replace(b.config, query_lam=a.config.query_lam) != a.config:  # the lam is chosen after training
        raise ValueError("the two models have different configs: only models of one recipe's shape interpolate")
    train_config = train_config or TrainConfig()
    model = copy.deepcopy(a)
    model.load_state_dict(interpolate_weights(a, b, alpha=alpha))
    align_cca(model, train_items)
    if train_config.tune_query_lam and 0 < model.config.lam < 1:
        choose_query_lam(model, val_items, QUERY_LAMS, weight=train_config.va_agreement_weight)
    fit_readout_temperature(model, val_items)
    model.eval()
    return model


REFIT_CROPS = 8  # random training windows per labelled item whose representations the refitted heads read
REFIT_STEPS = 300  # most full-batch steps of the refit; the step with the best val macro-F1 is kept
REFIT_LR = 1e-2


def _windows(model: CrossModalModel, items: Sequence[Item], *, crop_frames: int, crops: int,
             rng: np.random.Generator) -> torch.Tensor:
    """(len(items) * crops, H) shared representations of random training windows (``crop``), item-major."""
    windows = [crop(item, crop_frames, rng)[0] for item in items for _ in range(crops)]
    with torch.no_grad():
        return torch.cat([model.music.represent(*pad(windows[k : k + 256])) for k in range(0, len(windows), 256)])


def refit_heads(model: CrossModalModel, train_items: Sequence[Item], val_items: Sequence[Item], *,
                teachers: Teachers | None = None, train_config: TrainConfig | None = None,
                crops: int = REFIT_CROPS, steps: int = REFIT_STEPS) -> dict[str, float]:
    """Fit each categorical head again on the frozen shared representation (every other weight stays): after
    interpolation the heads are the line's average of two heads fitted to two different representations, not
    the best linear read of the soup's own. Each head starts from its interpolated weights and learns from the
    training windows of the items labelled in its taxonomy (their first renditions' labels only) with training's
    loss (labels, and the teachers' soft targets where given); the step with the best macro-F1 on the val items
    labelled in the taxonomy is kept. Returns taxonomy -> that val macro-F1."""
    train_config = train_config or TrainConfig()
    rng = np.random.default_rng(train_config.seed)
    model.eval()
    labelled_train = first_renditions_label(train_items)
    scores = {}
    for taxonomy in model.music.categorical:
        train = [i for i in labelled_train if taxonomy in i.labels]
        val = [i for i in val_items if taxonomy in i.labels]
        if not train or not val:
            continue
        h = _windows(model, train, crop_frames=train_config.crop_frames, crops=crops, rng=rng)
        target = torch.tensor([i.labels[taxonomy] for i in train]).repeat_interleave(crops)
        taught = teachers is not None and all(i.id in teachers for i in train)
        soft = (torch.from_numpy(np.stack([teachers[i.id] for i in train])).repeat_interleave(crops, dim=0)  # type: ignore[index]
                if taught else None)
        scores[taxonomy] = _fit_head(model, taxonomy, h, target, soft, val, train_config=train_config, steps=steps)
    return scores


def _fit_head(model: CrossModalModel, taxonomy: str, h: torch.Tensor, target: torch.Tensor, soft: torch.Tensor | None,
              val: Sequence[Item], *, train_config: TrainConfig, steps: int) -> float:
    head = model.music.categorical[taxonomy]
    reference = np.array([i.labels[taxonomy] for i in val])

    def f1() -> float:
        return categorical_metrics(taxonomy, reference, class_probabilities(model, val, taxonomy)).macro_f1

    best, best_state = f1(), copy.deepcopy(head.state_dict())
    optimizer = torch.optim.Adam(head.parameters(), lr=REFIT_LR, weight_decay=train_config.weight_decay)
    for step in range(1, steps + 1):
        optimizer.zero_grad()
        loss = distillation_loss(head(h), target, soft, kd_weight=train_config.kd_weight,
                                 temperature=train_config.kd_temperature)
        loss.backward()
        optimizer.step()
        if step % 10 == 0 and (score := f1()) > best:
            best, best_state = score, copy.deepcopy(head.state_dict())
    head.load_state_dict(best_state)
    return best
