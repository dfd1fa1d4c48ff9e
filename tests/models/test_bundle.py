import json
from pathlib import Path

import pytest
import torch

from models.bundle import BundleError, load_bundle, save_bundle
from models.config import EncoderConfig, ModelConfig
from models.encoders import CrossModalModel


def _model() -> CrossModalModel:
    torch.manual_seed(0)
    config = ModelConfig(music=EncoderConfig(kind="mlp", hidden=8, layers=(16, 8)), n_features=10, d=4, lam=0.7)
    model = CrossModalModel(config)
    model.music.set_feature_stats(torch.randn(10), torch.rand(10) + 0.5)
    model.emotion.align.set(torch.randn(4), torch.randn(4, 4))
    return model.eval()


def test_round_trip_reproduces_embeddings_exactly(tmp_path: Path):
    model = _model()
    saved = save_bundle(model, tmp_path / "b", metrics={"val": 1.0}, model_card="# card\n")
    loaded = load_bundle(tmp_path / "b")
    assert loaded.config == model.config and loaded.version == saved.version
    assert loaded.version.startswith("moodspace-") and loaded.metrics == {"val": 1.0}
    x, va, lengths = torch.randn(3, 5, 10), torch.rand(3, 5, 2) * 2 - 1, torch.tensor([5, 3, 1])
    for original, rebuilt in ((model.music(x, lengths), loaded.model.music(x, lengths)),
                              (model.emotion(va, lengths), loaded.model.emotion(va, lengths))):
        for a, b in zip(original, rebuilt, strict=True):
            assert torch.equal(a, b)


def test_config_comes_from_json_not_from_tensor_shapes(tmp_path: Path):
    save_bundle(_model(), tmp_path / "b")
    config = json.loads((tmp_path / "b" / "config.json").read_text())
    config["d"] = 5
    (tmp_path / "b" / "config.json").write_text(json.dumps(config))
    with pytest.raises(BundleError, match="weights do not match config.json"):
        load_bundle(tmp_path / "b")


def test_missing_files_are_named(tmp_path: Path):
    save_bundle(_model(), tmp_path / "b")
    (tmp_path / "b" / "weights.pt").unlink()
    with pytest.raises(BundleError, match="weights.pt missing"):
        load_bundle(tmp_path / "b")


def test_saving_again_replaces_the_bundle_atomically(tmp_path: Path):
    first = save_bundle(_model(), tmp_path / "b")
    model = _model()
    torch.nn.init.zeros_(model.music.heads.E.weight)
    second = save_bundle(model, tmp_path / "b")
    assert first.version != second.version == load_bundle(tmp_path / "b").version
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def test_categorical_heads_round_trip_and_read_class_probabilities(tmp_path: Path):
    import numpy as np

    from models.inference import Embedder

    torch.manual_seed(0)
    config = ModelConfig(music=EncoderConfig(kind="bigru", hidden=8, layers=(16,)),
                         emotion=EncoderConfig(kind="bigru", hidden=8, layers=(16,)), d=4,
                         taxonomies=("quadrant", "mirex_cluster"))
    save_bundle(CrossModalModel(config).eval(), tmp_path / "b")
    loaded = load_bundle(tmp_path / "b")
    assert loaded.config.taxonomies == ("quadrant", "mirex_cluster")
    track = Embedder.from_bundle(loaded).read_track(np.random.default_rng(0).normal(size=(20, 192)).astype("f4"))
    assert track.classes["quadrant"].shape == (4,) and track.classes["mirex_cluster"].shape == (5,)
    assert all(abs(p.sum() - 1) < 1e-6 for p in track.classes.values())
    assert track.mean == pytest.approx(track.curve.mean(axis=0))
