import numpy as np
import pytest

from models.bundle import load_bundle
from models.default import resolve_bundle
from models.inference import Embedder
from models.songtext import SONG_TEXT_PATH, SongTextModel, TextModality
from models.text import sentence_encoder


def _modality(seed: int, *, weight: float) -> TextModality:
    rng = np.random.default_rng(seed)
    return TextModality(rng.normal(size=(385, 2)) * 0.05, rng.normal(size=384) * 0.01, np.full(384, 0.05),
                        np.zeros(2), np.ones(2), np.array([0.3, 0.2]), np.array([0.1, -0.1]), np.full(2, weight))


def _model(weight: float = 0.1) -> SongTextModel:
    return SongTextModel(_modality(0, weight=weight), _modality(1, weight=weight), "song-text-test", "music-test")


def test_without_text_every_reading_is_the_audios():
    readings = _model().read(np.array([0.4, -0.2]), {})
    assert readings.lyrics is None and readings.context is None
    assert (readings.fused.valence, readings.fused.arousal) == (readings.audio.valence, readings.audio.arousal)
    assert (readings.audio.valence, readings.audio.arousal) == (0.4, -0.2)


def test_the_fused_reading_adds_each_present_modalitys_weighted_standardised_output():
    model, audio = _model(weight=0.2), np.array([0.1, 0.3])
    vectors = {"lyrics": np.random.default_rng(2).normal(size=384).astype(np.float32)}
    z = model.lyrics.standardised(vectors["lyrics"][None, :])[0]
    readings = model.read(audio, vectors)
    assert readings.fused.valence == pytest.approx(np.clip(audio[0] + 0.2 * z[0], -1, 1), abs=1e-4)
    assert readings.lyrics.arousal == pytest.approx(np.clip(0.2 * z[1] - 0.1, -1, 1), abs=1e-4)
    assert readings.context is None
    unfused = model.read(audio, vectors, fuse=False)
    assert (unfused.fused.valence, unfused.fused.arousal) == (0.1, 0.3) and unfused.lyrics == readings.lyrics


def test_a_saved_model_reads_as_it_did(tmp_path):
    model, vectors = _model(), {"context": np.random.default_rng(3).normal(size=384).astype(np.float32)}
    model.save(tmp_path / "song_text.npz")
    loaded = SongTextModel.load(tmp_path / "song_text.npz")
    assert (loaded.version, loaded.audio_model) == ("song-text-test", "music-test")
    assert loaded.read(np.zeros(2), vectors) == model.read(np.zeros(2), vectors)


def test_only_the_text_given_becomes_a_modality():
    model, encoder = _model(), sentence_encoder()
    assert model.vectors(encoder, lyrics=None, title="", artist="") == {}
    assert set(model.vectors(encoder, lyrics="", title="", artist="The Band")) == {"context"}
    both = model.vectors(encoder, lyrics="sun on the water\nwe dance", title="Summer", artist="")
    assert set(both) == {"lyrics", "context"} and both["lyrics"].shape == (384,)


def test_the_shipped_readings_were_fitted_with_the_default_music_model():
    """Retraining the default music model calls for `moodspace train-song-text` (make model runs it)."""
    shipped = SongTextModel.load(SONG_TEXT_PATH)
    assert shipped.audio_model == Embedder.from_bundle(load_bundle(resolve_bundle("default"))).version
