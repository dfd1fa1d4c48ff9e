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

import torch

from models.encoders import CrossModalModel
from training.features import Item
from training.train import QUERY_LAMS, TrainConfig, align_cca, choose_query_lam, fit_readout_temperature


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
