"""The VA reading from a categorical head: the expected placement of its class probabilities."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from models.bundle import save_bundle
from models.config import EncoderConfig, ModelConfig
from models.encoders import CrossModalModel
from models.inference import Embedder, Reading, mixed_reading
from models.taxonomy import CLASS_VA, TAXONOMIES


def _model(class_reading: str | None, grid_share: tuple[float, float] = (0.0, 0.0)) -> CrossModalModel:
    torch.manual_seed(0)
    config = ModelConfig(music=EncoderConfig(kind="bigru", hidden=8, layers=(16,)), n_features=6, d=4,
                         taxonomies=("quadrant",), class_reading=class_reading, grid_share=grid_share)
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
    assert set(readings) == {"grid", "quadrant head", "grid and quadrant head", "the bundle's reading"}
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


def test_a_grid_share_needs_a_class_reading_and_shares_in_the_unit_interval():
    with pytest.raises(ValueError, match="name the head first"):
        ModelConfig(taxonomies=("quadrant",), grid_share=(0.5, 0.0))
    with pytest.raises(ValueError, match="two shares in"):
        ModelConfig(taxonomies=("quadrant",), class_reading="quadrant", grid_share=(1.5, 0.0))
    config = ModelConfig(taxonomies=("quadrant",), class_reading="quadrant", grid_share=(0.6, 0.0))
    assert ModelConfig.from_dict(config.to_dict()) == config  # JSON's list comes back a tuple


def test_a_mixed_reading_is_the_mixture_of_the_two_axis_by_axis():
    head = Reading(np.array([[-0.5, 0.2]]), np.array([[0.0, 0.1]]))
    grid = Reading(np.array([[0.5, 0.8]]), np.array([[0.0, 0.3]]))
    mixed = mixed_reading(head, grid, (0.5, 0.0))
    np.testing.assert_allclose(mixed.mean, [[0.0, 0.2]])  # valence halfway, arousal the head's
    np.testing.assert_allclose(mixed.std, [[0.5, 0.1]])  # two points 1 apart, half each: spread 0.5
    np.testing.assert_allclose(mixed_reading(head, grid, (1.0, 1.0)).mean, grid.mean)


def test_the_curve_mixes_each_windows_grid_reading_into_the_heads_placement():
    features = np.random.default_rng(2).normal(size=(12, 6)).astype(np.float32)
    head = Embedder(_model("quadrant"), version="test").read_track(features)
    mixed_embedder = Embedder(_model("quadrant", (0.6, 0.0)), version="test")
    mixed = mixed_embedder.read_track(features)
    grid = mixed_embedder.read_va(mixed.windows).mean  # the same weights: the same window embeddings
    np.testing.assert_allclose(mixed.curve[:, 0], 0.4 * head.curve[:, 0] + 0.6 * grid[:, 0], atol=1e-9)
    np.testing.assert_allclose(mixed.curve[:, 1], head.curve[:, 1], atol=1e-9)
    np.testing.assert_allclose(mixed.mean, mixed.curve.mean(axis=0), atol=1e-9)


def test_the_share_sweep_finds_the_reading_that_carries_each_axis():
    """Valence labels that only the grid reading follows and arousal labels that only the head follows: the best
    val sum is all grid on valence, all head on arousal, and the head alone is among the rows."""
    from training.readings_experiment import share_sweep

    rng = np.random.default_rng(3)
    labels = rng.integers(0, 4, 200)  # Q1..Q4: valence positive for Q1, Q4; arousal high for Q1, Q2
    valence = np.where(np.isin(labels, (0, 3)), 0.5, -0.5)
    arousal = np.where(np.isin(labels, (0, 1)), 0.5, -0.5)
    noise = rng.normal(size=(200, 2))
    grid = np.stack([valence + 0.1 * noise[:, 0], noise[:, 1]], axis=1)
    head = np.stack([noise[:, 0], arousal + 0.1 * noise[:, 1]], axis=1)
    found = {"grid": grid, "quadrant head": head}
    rows = share_sweep({"4q": {"val": ("quadrant", labels, found), "test": ("quadrant", labels, found)}},
                       shares=(0.0, 0.5, 1.0))
    assert rows[0]["grid_share"] == (1.0, 0.0)
    assert rows[0]["scores"]["4q"]["val"]["quadrant_accuracy"] == 1.0
    assert len(rows) == 9 and any(row["grid_share"] == (0.0, 0.0) for row in rows)
    del found["quadrant head"]
    assert share_sweep({"4q": {"val": ("quadrant", labels, found)}}) == []  # nothing to mix into without the head
