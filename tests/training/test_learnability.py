from pathlib import Path

import numpy as np
import pytest

from training.corpus.generate import synth_corpus
from training.learnability import (
    MAJOR_PROFILE,
    MINOR_PROFILE,
    descriptors,
    learnability,
    mode_score,
    r2,
    ridge_fit,
    ridge_predict,
)


def test_ridge_recovers_a_linear_map():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4))
    y = x @ rng.normal(size=(4, 2)) + 3.0
    model = ridge_fit(x[:150], y[:150], alpha=1e-6)
    estimated = ridge_predict(model, x[150:])
    assert r2(y[150:, 0], estimated[:, 0]) > 0.999 and r2(y[150:, 1], estimated[:, 1]) > 0.999


def test_mode_score_tells_major_from_minor_in_any_key():
    for shift in (0, 5, 9):
        assert mode_score(np.roll(MAJOR_PROFILE, shift)) > 0.2
        assert mode_score(np.roll(MINOR_PROFILE, shift)) < -0.2


def test_descriptors_see_level_and_brightness():
    t = np.arange(32000) / 16000
    dull = 0.05 * np.sin(2 * np.pi * 220 * t)
    bright = 0.5 * np.sign(np.sin(2 * np.pi * 220 * t))
    d_dull, d_bright = descriptors(dull), descriptors(bright)
    assert d_bright[1] > d_dull[1] + 15  # RMS dB
    assert d_bright[2] > 2 * d_dull[2]  # centroid


def test_learnability_scores_the_test_split(tmp_path: Path):
    manifest = synth_corpus(n=20, seconds=6, seed=0, out=tmp_path / "c", workers=1, progress=False)
    result = learnability(manifest, workers=1, progress=False)
    assert (result.n_train, result.n_test) == (16, 4)
    assert np.isfinite([result.valence_r2, result.arousal_r2]).all()
    assert set(result.coefficients) == {"tempo_bpm", "rms_db", "centroid_hz", "mode_score"}


def test_learnability_needs_a_test_split(tmp_path: Path):
    manifest = synth_corpus(n=3, seconds=2, seed=0, out=tmp_path / "c", workers=1, progress=False)
    with pytest.raises(ValueError, match="need >= 5 non-test and >= 2 test clips"):
        learnability(manifest, workers=1, progress=False)
