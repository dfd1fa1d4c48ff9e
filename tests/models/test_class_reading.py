"""The VA reading from a categorical head: the expected placement of its class probabilities."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from models.bundle import save_bundle
from models.config import EncoderConfig, ModelConfig
from models.encoders import CrossModalModel
from models.inference import Embedder
from models.taxonomy import CLASS_VA, TAXONOMIES


def _model(class_reading: str | None) -> CrossModalModel:
    torch.manual_seed(0)
    config = ModelConfig(music=EncoderConfig(kind="bigru", hidden=8, layers=(16,)), n_features=6, d=4,
                         taxonomies=("quadrant",), class_reading=class_reading)
    return CrossModalModel(config).eval()


def test_a_class_reading_needs_that_head():
    with pytest.raises(ValueError, match="class_reading 'mirex_cluster' needs a head"):
        ModelConfig(taxonomies=("quadrant",), class_reading="mirex_cluster")


def test_the_curve_is_each_windows_expected_class_placement_and_the_reading_its_mean():
    embedder = Embedder(_model("quadrant"), version="test")
    features = np.random.default_rng(0).normal(size=(12, 6)).astype(np.float32)
    track = embedder.read_track(features)
    frames, _ = embedder.window_frames(features)
    placement = np.array([CLASS_VA["quadrant"][c] for c in TAXONOMIES["quadrant"]])
    expected = embedder.class_probabilities(frames)["quadrant"] @ placement
    np.testing.assert_allclose(track.curve, expected, atol=1e-9)
    np.testing.assert_allclose(track.mean, expected.mean(axis=0), atol=1e-9)
    assert np.all(np.abs(track.curve) <= 0.5 + 1e-9)  # inside the quadrant centres' square
    grid = Embedder(_model(None), version="test").read_track(features)
    assert not np.allclose(grid.curve, track.curve)  # the same weights read by retrieval differ


def test_the_version_changes_with_how_the_model_reads(tmp_path):
    model = _model(None)
    first = save_bundle(model, tmp_path / "a").version
    assert save_bundle(model, tmp_path / "b").version == first
    model.config = replace(model.config, class_reading="quadrant")
    assert save_bundle(model, tmp_path / "c").version != first


def test_the_readings_experiment_scores_the_grid_and_each_heads_reading():
    from training.readings_experiment import candidates, quadrant_of

    embedder = Embedder(_model(None), version="test")
    features = [np.random.default_rng(k).normal(size=(9, 6)).astype(np.float32) for k in range(3)]
    readings = candidates(embedder, features)
    assert set(readings) == {"grid", "quadrant head", "grid and quadrant head"}
    np.testing.assert_allclose(readings["grid"], np.stack([embedder.read_track(f).mean for f in features]))
    np.testing.assert_allclose(readings["grid and quadrant head"], (readings["grid"] + readings["quadrant head"]) / 2)
    assert list(quadrant_of(np.array([[0.2, 0.3], [-0.2, 0.3], [-0.2, -0.3], [0.2, -0.3]]))) == [0, 1, 2, 3]


def test_the_window_representations_are_what_each_windows_heads_read():
    embedder = Embedder(_model("quadrant"), version="test")
    features = np.random.default_rng(1).normal(size=(12, 6)).astype(np.float32)
    h = embedder.represent_windows(features)
    frames, _ = embedder.window_frames(features)
    assert h.shape[0] == len(frames) == 12
    with torch.no_grad():
        from_h = torch.softmax(embedder.model.music.categorical["quadrant"](torch.from_numpy(h)), dim=1).numpy()
    assert np.allclose(from_h, embedder.class_probabilities(frames)["quadrant"], atol=1e-5)
