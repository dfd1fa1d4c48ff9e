"""One reading per track: the overall VA is the curve's mean, and looping a clip changes neither it nor the
named emotions (the built-in model, a generated clip)."""

import numpy as np
import pytest

from app.analysis import analyze_audio, rank_emotions
from models.bundle import load_bundle
from models.default import resolve_bundle
from models.inference import Embedder
from training.corpus.generate import synth_clip
from training.corpus.synth import SR


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder.from_bundle(load_bundle(resolve_bundle(None)))


def test_the_overall_reading_is_the_mean_of_the_curve(embedder: Embedder):
    _, y = synth_clip(2, seed=3, seconds=45)
    analysis = analyze_audio(embedder, y, sr=SR)
    curve = np.array(analysis.curve)
    assert analysis.valence == pytest.approx(curve[:, 1].mean(), abs=1e-3)
    assert analysis.arousal == pytest.approx(curve[:, 2].mean(), abs=1e-3)
    assert analysis.valence_std >= curve[:, 1].std() - 1e-3  # the spread includes the curve's own movement


def test_looping_a_clip_keeps_its_reading_and_emotions(embedder: Embedder):
    _, y = synth_clip(2, seed=3, seconds=45)
    once, looped = analyze_audio(embedder, y, sr=SR), analyze_audio(embedder, np.tile(y, 6), sr=SR)
    assert abs(once.valence - looped.valence) < 0.05 and abs(once.arousal - looped.arousal) < 0.05
    lam = embedder.config.score_lam
    top = [[e.name for e in rank_emotions(embedder, a.windows, lam=lam, k=3)] for a in (once, looped)]
    assert top[0][0] == top[1][0] and len(set(top[0]) & set(top[1])) >= 2


def test_the_curve_covers_the_whole_clip(embedder: Embedder):
    _, y = synth_clip(2, seed=3, seconds=45)
    times = np.array(analyze_audio(embedder, y, sr=SR).curve)[:, 0]
    frame = embedder.config.frontend.frame_seconds
    assert times[0] <= frame / 2 + 1e-3 and times[-1] >= 45 - 1.5 * frame  # first and last frames both read
    assert np.allclose(np.diff(times), frame, atol=1e-3)
