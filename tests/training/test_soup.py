import copy
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from models.encoders import CrossModalModel
from models.manifest import read_manifest
from tests.training.conftest import TINY_MODEL, TINY_TRAIN
from training.evaluate import embed
from training.features import Item, load_items
from training.loop import seed_everything
from training.soup import interpolate_weights, soup
from training.splits import train_val
from training.train import align_cca, train_model


@pytest.fixture(scope="module")
def items(tiny_corpus: Path) -> tuple[list[Item], list[Item]]:
    train, val = train_val(read_manifest(tiny_corpus))
    return (load_items(tiny_corpus, train, TINY_MODEL.frontend, workers=1, progress=False),
            load_items(tiny_corpus, val, TINY_MODEL.frontend, workers=1, progress=False))


def _model(seed: int, n_features: int = 8) -> CrossModalModel:
    seed_everything(seed)
    return CrossModalModel(replace(TINY_MODEL, n_features=n_features))


def test_interpolated_weights_run_from_the_first_model_to_the_second():
    a, b = _model(0), _model(1)
    state_a, state_b = a.state_dict(), b.state_dict()
    for alpha, want in ((0.0, state_a), (1.0, state_b)):
        got = interpolate_weights(a, b, alpha=alpha)
        assert all(torch.allclose(got[k], want[k]) for k in want)
    middle = interpolate_weights(a, b, alpha=0.25)
    moved = [k for k in state_a if state_a[k].is_floating_point() and not torch.equal(state_a[k], state_b[k])]
    assert moved  # two seeds give two sets of weights
    for k in moved:
        torch.testing.assert_close(middle[k], 0.75 * state_a[k] + 0.25 * state_b[k])
    with pytest.raises(ValueError, match="alpha 1.5"):
        interpolate_weights(a, b, alpha=1.5)


def test_a_model_souped_with_itself_reads_as_it_did(items):
    train, val = items
    config = replace(TINY_MODEL, n_features=train[0].features.shape[1])
    trained = train_model(config, train, val, TINY_TRAIN, progress=False).model
    souped = soup(trained, trained, alpha=0.3, train_items=train, val_items=val)
    for got, want in zip(embed(souped, val), embed(trained, val), strict=True):
        np.testing.assert_allclose(got.E, want.E, atol=1e-5)  # the CCA alignment fitted again as training fits it
        np.testing.assert_allclose(got.mu, want.mu, atol=1e-5)
    assert souped.config.query_lam == trained.config.query_lam
    assert torch.equal(souped.readout_temperature, trained.readout_temperature)


def test_a_soup_of_two_runs_from_one_start_lies_between_them_and_is_aligned_again(items):
    train, val = items
    config = replace(TINY_MODEL, n_features=train[0].features.shape[1])
    runs = [train_model(config, part, val, TINY_TRAIN, progress=False).model
            for part in (train, train[: len(train) * 2 // 3])]  # one seed: one start, two data sets
    runs[1].config = replace(runs[1].config, query_lam=0.98)  # each run chose its query lam: not a shape
    souped = soup(runs[0], runs[1], alpha=0.5, train_items=train, val_items=val)
    weights = [dict(r.music.named_parameters()) for r in runs]
    for name, got in souped.music.named_parameters():
        torch.testing.assert_close(got, (weights[0][name] + weights[1][name]) / 2)
    refit = copy.deepcopy(souped)
    align_cca(refit, train)  # the alignment is the one fitted on the soup's own embeddings, not a mean of two
    for side in ("music", "emotion"):
        torch.testing.assert_close(getattr(souped, side).align.weight, getattr(refit, side).align.weight)
    with pytest.raises(ValueError, match="different configs"):
        soup(runs[0], CrossModalModel(replace(config, d=3)), alpha=0.5, train_items=train, val_items=val)


def _labelled(items: list[Item]) -> list[Item]:
    """The items labelled by quadrant, each class's frames shifted its own way: a linear head can learn them."""
    return [replace(i, features=i.features + 3.0 * (k % 4), labels={"quadrant": k % 4}) for k, i in enumerate(items)]


def test_refitting_the_heads_changes_the_heads_alone_and_keeps_their_best_val_step(items):
    from training.classify import categorical_metrics
    from training.evaluate import class_probabilities
    from training.soup import refit_heads

    train, val = (_labelled(part) for part in items)
    val = val + train[:9]  # three val clips are too few to tell steps apart; the test needs no held-apart set
    config = replace(TINY_MODEL, n_features=train[0].features.shape[1], taxonomies=("quadrant",))
    model = train_model(config, train, val, TINY_TRAIN, progress=False).model
    torch.manual_seed(0)
    model.music.categorical["quadrant"].weight.data.normal_()  # heads that read the representation badly
    reference = np.array([i.labels["quadrant"] for i in val])

    def f1() -> float:
        return categorical_metrics("quadrant", reference, class_probabilities(model, val, "quadrant")).macro_f1

    before, state = f1(), copy.deepcopy(model.state_dict())
    scores = refit_heads(model, train, val, train_config=TINY_TRAIN, steps=100)
    after = model.state_dict()
    assert scores["quadrant"] == pytest.approx(f1()) and scores["quadrant"] > before
    changed = {k for k in state if not torch.equal(state[k], after[k])}
    assert changed == {"music.categorical.quadrant.weight", "music.categorical.quadrant.bias"}


def test_only_first_renditions_teach_the_refitted_heads(items):
    from training.soup import refit_heads

    train, val = (_labelled(part) for part in items)
    config = replace(TINY_MODEL, n_features=train[0].features.shape[1], taxonomies=("quadrant",))
    model = train_model(config, train, val, TINY_TRAIN, progress=False).model
    wrong = [replace(i, labels={"quadrant": (i.labels["quadrant"] + 1) % 4}) for i in train]  # later renditions
    refits = []
    for extra in ([], wrong):
        refitted = copy.deepcopy(model)
        refit_heads(refitted, train + extra, val, train_config=TINY_TRAIN, steps=30)
        refits.append(refitted.music.categorical["quadrant"].weight)
    torch.testing.assert_close(refits[0], refits[1])
