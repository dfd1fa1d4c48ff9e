from dataclasses import replace
from pathlib import Path

import torch

from models.bundle import load_bundle
from tests.training.conftest import TINY_MODEL, TINY_TRAIN
from training.run import train_bundle


def _trained_weights(bundle_dir: Path) -> dict[str, torch.Tensor]:
    """The weights a step can move: not the CCA alignment or the readout temperature, which are fitted after."""
    state = load_bundle(bundle_dir).model.state_dict()
    return {k: v for k, v in state.items() if ".align." not in k and k != "readout_temperature"}


def test_train_bundle_starts_from_init_and_saves_the_model_it_trained(tiny_corpus: Path, tmp_path: Path):
    start = train_bundle(data=[tiny_corpus], val=[], out=tmp_path / "start", config=TINY_MODEL,
                         train_config=TINY_TRAIN)
    frozen = replace(TINY_TRAIN, lr=0.0, weight_decay=0.0, seed=1)  # steps that move nothing
    train_bundle(data=[tiny_corpus], val=[], out=tmp_path / "still", config=TINY_MODEL, train_config=frozen,
                 init=start.model)
    train_bundle(data=[tiny_corpus], val=[], out=tmp_path / "fresh", config=TINY_MODEL, train_config=frozen)
    kept, still, new = (_trained_weights(tmp_path / name) for name in ("start", "still", "fresh"))
    assert all(torch.equal(still[k], v) for k, v in kept.items())  # the saved bundle is the model it started from
    assert not all(torch.equal(new[k], v) for k, v in kept.items())  # without init: another seed's fresh weights
