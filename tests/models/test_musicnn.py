"""The PyTorch musicnn against outputs of the original TensorFlow model (tests/fixtures, made once with
scripts/musicnn_reference.py), and the TensorFlow checkpoint reader."""

import copy
import resource
import sys
from pathlib import Path

import librosa
import numpy as np
import pytest
import torch

from models.errors import MoodspaceError
from models.frontend import frontend_config, make_frontend
from models.musicnn import MusicnnMSD, checkpoint_dir, log_mel, pretrained, windows
from models.tfcheckpoint import CheckpointError, read_checkpoint

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def test_port_matches_tensorflow_musicnn():
    x = np.load(FIXTURES / "musicnn_inputs.npz")["x"].astype(np.float32)
    reference = np.load(FIXTURES / "musicnn_reference.npz")
    with torch.no_grad():
        out = pretrained()(torch.from_numpy(x))
    assert x.shape[0] == 5
    assert np.abs(torch.sigmoid(out["logits"]).numpy() - reference["tags"]).max() < 1e-4
    assert np.abs(out["penultimate"].numpy() - reference["penultimate"]).max() < 1e-4
    assert np.abs(out["mean_pool"].numpy() - reference["mean_pool"]).max() < 1e-4
    np.testing.assert_allclose(out["max_pool"].numpy(), reference["max_pool"], rtol=1e-5, atol=1e-3)


def test_checkpoint_reader_gives_every_variable_with_its_shape():
    tensors = read_checkpoint(checkpoint_dir())
    assert tensors["conv2d/kernel"].shape == (7, 38, 1, 204) and tensors["conv2d/kernel"].dtype == np.float32
    assert tensors["dense_1/kernel"].shape == (200, 50)
    assert tensors["batch_normalization_9/moving_variance"].shape == (1506,)
    assert all(np.isfinite(t).all() for t in tensors.values())


def test_checkpoint_reader_refuses_what_is_not_a_checkpoint(tmp_path: Path):
    with pytest.raises(CheckpointError, match="checkpoint index not found"):
        read_checkpoint(tmp_path / "nothing")
    (tmp_path / "bad.index").write_bytes(b"x" * 100)
    with pytest.raises(CheckpointError, match="not a TensorFlow checkpoint index"):
        read_checkpoint(tmp_path / "bad")


@pytest.mark.parametrize(("name", "size"), [("musicnn-msd", 200), ("musicnn-msd-pool", 953)])
def test_front_end_gives_one_feature_per_3_s_window(name: str, size: int):
    frontend = make_frontend(frontend_config(name))
    y = (np.random.default_rng(0).normal(size=16000 * 10) * 0.1).astype(np.float32)
    features = frontend(y)
    assert features.shape == (3, size) and np.isfinite(features).all()
    assert frontend(y[: 16000 * 2]).shape == (1, size)  # shorter than a window: repeated to fill one


def test_windows_cover_the_spectrogram_without_overlap():
    spectrogram = np.arange(400 * 96, dtype=np.float32).reshape(400, 96)
    batch = windows(spectrogram)
    assert batch.shape == (2, 187, 96) and batch[1, 0, 0] == spectrogram[187, 0]


def test_missing_package_is_named(monkeypatch):
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(MoodspaceError, match="pip install --no-deps musicnn==0.1.0"):
        checkpoint_dir()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_front_end_reuses_freed_memory_instead_of_faulting_in_fresh_pages():
    """With glibc's defaults a 30 s clip cost about 240,000 minor page faults per call (activations mapped and
    unmapped per window); the front end keeps freed memory, so a repeated call faults in almost nothing."""
    y = np.random.default_rng(0).standard_normal(16_000 * 30).astype(np.float32) * 0.1
    front_end = make_frontend(frontend_config("musicnn-msd"))
    front_end(y)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    front_end(y)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before < 20_000


def _log_mel_extremes(n_windows: int, seed: int) -> torch.Tensor:
    """(W, 187, 96) log-mel windows drawn over the whole range any clip can reach, silence and full scale too."""
    top = float(np.log10(1e4 * 256.0**2 * librosa.filters.mel(sr=16_000, n_fft=512, n_mels=96).sum(axis=1).max() + 1))
    x = np.random.default_rng(seed).uniform(0, top, size=(n_windows, 187, 96)).astype(np.float32)
    x[0] = 0.0
    x[1, :, :48] = top
    return torch.from_numpy(x)


def _dense(model: MusicnnMSD, x: torch.Tensor) -> torch.Tensor:
    return model.midend_dense(model.frontend_dense(x))


@torch.no_grad()
def test_living_filters_give_what_every_filter_gives():
    """The pruned forward pass against the original computation, over the whole input range and a real clip."""
    model = pretrained()
    t = np.arange(16_000 * 9) / 16_000
    y = (0.3 * np.sin(2 * np.pi * 220 * t * (1 + t / 9)) * (np.sin(2 * np.pi * 2 * t) > 0)
         + 0.05 * np.random.default_rng(0).standard_normal(t.size)).astype(np.float32)  # a gliding tone, beats, noise
    for x in (_log_mel_extremes(4, seed=0), torch.from_numpy(windows(log_mel(y)))):
        np.testing.assert_allclose(model.frontend(x), model.frontend_dense(x), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(model.midend(model.frontend(x)), _dense(model, x), rtol=1e-4, atol=1e-3)
    assert sum(len(branch.alive) for branch in model.pooled) < 0.2 * 561  # it is worth doing


@torch.no_grad()
def test_a_filter_that_comes_alive_is_computed():
    model = copy.deepcopy(pretrained())
    dead = next(i for i in range(204) if i not in set(model.pooled[0].alive.tolist()))
    model.timbral[0].weight[dead] = torch.randn_like(model.timbral[0].weight[dead]) * 0.1
    model.prune()
    assert dead in model.pooled[0].alive.tolist()
    x = _log_mel_extremes(3, seed=1)
    np.testing.assert_allclose(model.midend(model.frontend(x)), _dense(model, x), rtol=1e-4, atol=1e-3)
