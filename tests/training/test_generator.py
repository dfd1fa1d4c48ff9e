from pathlib import Path

import librosa
import numpy as np
import pytest

from models.errors import OutputExistsError
from models.manifest import audio_path, read_manifest
from training.corpus import generate
from training.corpus.annotators import simulate_ratings
from training.corpus.cues import cues
from training.corpus.generate import synth_audio, synth_clip, synth_corpus
from training.corpus.synth import SR
from training.corpus.trajectory import sample_trajectory
from training.learnability import descriptors

LEVELS = np.linspace(-0.9, 0.9, 7)


def test_same_seed_same_clip_other_seed_other_clip():
    clip_a, y_a = synth_clip(3, seed=1, seconds=6)
    clip_b, y_b = synth_clip(3, seed=1, seconds=6)
    _clip_c, y_c = synth_clip(3, seed=2, seconds=6)
    np.testing.assert_array_equal(y_a, y_b)
    np.testing.assert_array_equal(clip_a.curve, clip_b.curve)
    assert clip_a.to_json() == clip_b.to_json()
    assert not np.array_equal(y_a[: y_c.size], y_c)


def test_corpus_is_the_same_whatever_the_number_of_workers(tmp_path: Path):
    one = synth_corpus(n=3, seconds=3, seed=5, out=tmp_path / "one", workers=1, progress=False)
    two = synth_corpus(n=3, seconds=3, seed=5, out=tmp_path / "two", workers=2, progress=False)
    assert one.read_text() == two.read_text()
    for clip in read_manifest(one, check_audio=True):
        assert audio_path(one, clip).read_bytes() == (tmp_path / "two" / clip.audio).read_bytes()


def test_cue_functions_move_with_va_as_studies_report():
    by_arousal = [cues(0.0, a) for a in LEVELS]
    by_valence = [cues(v, 0.0) for v in LEVELS]
    for name in ("tempo_bpm", "notes_per_beat", "level_db", "brightness"):
        values = [getattr(c, name) for c in by_arousal]
        assert values == sorted(values) and values[0] < values[-1], name
    articulation = [c.articulation for c in by_arousal]
    assert articulation == sorted(articulation, reverse=True)
    for name in ("major_probability", "register", "stability"):
        values = [getattr(c, name) for c in by_valence]
        assert values == sorted(values) and values[0] < values[-1], name
    dissonance = [c.dissonance for c in by_valence]
    assert dissonance == sorted(dissonance, reverse=True) and dissonance[-1] == 0


def _render_constant(v: float, a: float, seed: int, seconds: float = 12.0) -> np.ndarray:
    trajectory = np.tile([v, a], (int(seconds * 2), 1))
    y, _ = synth_audio(trajectory=trajectory, seconds=seconds, rng=np.random.default_rng(seed))
    return y


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_audio_tempo_level_and_onsets_rise_with_arousal(seed: int):
    calm, aroused = _render_constant(0.0, -0.8, seed), _render_constant(0.0, 0.8, seed)
    rms = [float(np.sqrt(np.mean(y**2))) for y in (calm, aroused)]
    onsets = [librosa.onset.onset_detect(y=y, sr=SR, units="time").size for y in (calm, aroused)]
    assert rms[1] > 1.5 * rms[0]
    assert onsets[1] > onsets[0]


def test_audio_mode_follows_valence():
    # Same style and notes generator state for both; average the chroma major/minor score over seeds.
    scores = [[descriptors(_render_constant(v, 0.0, seed))[3] for seed in range(4)] for v in (-0.8, 0.8)]
    assert np.mean(scores[1]) > np.mean(scores[0]) + 0.1


def test_annotators_track_the_truth_with_spread():
    t = np.arange(120) / 2.0
    truth = 0.7 * np.stack([np.sin(2 * np.pi * t / 20), np.cos(2 * np.pi * t / 30)], axis=1)
    mean, std = simulate_ratings(rng=np.random.default_rng(0), truth=truth, n_raters=8)
    assert mean.shape == std.shape == truth.shape
    assert np.abs(mean[0]).max() < 0.3  # sliders start near the centre
    for k in (0, 1):
        assert np.corrcoef(mean[20:, k], truth[20:, k])[0, 1] > 0.8
    assert (std[4:] > 0.02).all() and (np.abs(mean) <= 1).all()


def test_trajectories_cover_every_quadrant():
    rng = np.random.default_rng(1)
    means = np.array([sample_trajectory(rng=rng, seconds=30).mean(axis=0) for _ in range(200)])
    quadrants = {(bool(v >= 0), bool(a >= 0)) for v, a in means}
    assert len(quadrants) == 4 and np.abs(means).max() <= 0.95


def test_manifest_clips_have_tags_titles_and_splits(tmp_path: Path):
    manifest = synth_corpus(n=10, seconds=2, seed=0, out=tmp_path / "c", workers=1, progress=False)
    clips = read_manifest(manifest, check_audio=True)
    assert [c.split for c in clips].count("test") == 2 and [c.split for c in clips].count("val") == 1
    assert all(c.tags and c.title and c.artist and c.curve_std is not None for c in clips)
    y, sr = librosa.load(audio_path(manifest, clips[0]), sr=None)
    assert sr == SR and y.size == 2 * SR


def test_existing_output_is_refused_before_any_work(tmp_path: Path):
    (tmp_path / "c").mkdir()
    with pytest.raises(OutputExistsError, match="already exists"):
        synth_corpus(n=2, seconds=2, seed=0, out=tmp_path / "c", progress=False)


def test_a_failed_run_leaves_nothing_behind(tmp_path: Path, monkeypatch):
    real = generate.synth_clip

    def failing(index: int, **kwargs):
        if index == 2:
            raise RuntimeError("disk full")
        return real(index, **kwargs)

    monkeypatch.setattr(generate, "synth_clip", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        synth_corpus(n=4, seconds=2, seed=0, out=tmp_path / "c", workers=1, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_no_two_clips_of_a_corpus_share_a_title(tmp_path: Path):
    manifest = synth_corpus(n=40, seconds=1, seed=7, out=tmp_path / "c", workers=1, progress=False)
    titles = [clip.title for clip in read_manifest(manifest)]
    drawn = [synth_clip(i, seed=7, seconds=1)[0].title for i in range(40)]
    assert len(set(drawn)) < len(drawn)  # the generator repeats itself; the corpus must not
    assert len(set(titles)) == len(titles)
    assert all(t == d or t.startswith(d + " ") for t, d in zip(titles, drawn, strict=True))


def test_repeated_titles_are_numbered_in_order():
    from training.corpus.metadata import unique_titles

    assert unique_titles(["A", "B", "A", "A", "A"]) == ["A", "B", "A II", "A III", "A IV"]
