"""The song model's lyrics reading as shipped reads exactly as the trainers' readers, and only word-free readers
ship."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from models.config import EncoderConfig, ModelConfig
from models.encoders import CrossModalModel
from models.inference import Embedder
from models.taxonomy import CLASS_VA, TAXONOMIES
from tests.training.test_lyrics_probe import _lyrics_sets
from training.classify import FoldsLogistic
from training.lyrics_reader import READING_WIDTH, fit_reader
from training.song_model import class_retrieval, fusion_config, lyrics_reading, probe_of
from training.song_text import lyrics_vectors

TEXTS = ["joy and sunshine, we are dancing and laughing", "tears at the grave, lonely and crying goodbye",
         "calm breeze, a gentle and quiet evening"]


def _own_probe(rng: np.random.Generator) -> FoldsLogistic:
    x, y = rng.normal(size=(100, 384)), np.arange(100) % 5
    return FoldsLogistic.fit(x + 0.5 * np.eye(5)[y] @ rng.normal(size=(5, 384)), y, [f"a{k % 20}" for k in range(100)],
                             classes=5)


def test_the_shipped_reading_reads_as_the_word_free_reader_and_the_own_probe(tmp_path, monkeypatch):
    monkeypatch.setenv("MOODSPACE_CACHE", str(tmp_path / "cache"))
    _lyrics_sets(tmp_path, np.random.default_rng(3))
    reader, own = fit_reader(tmp_path, words=False), _own_probe(np.random.default_rng(4))
    shipped = lyrics_reading(reader, own)
    vectors = lyrics_vectors(TEXTS, progress=False)
    read = shipped.read(vectors)
    assert read.shape == (3, READING_WIDTH + 5) == (3, shipped.width)
    assert np.allclose(read[:, :READING_WIDTH], reader.read(TEXTS, vectors), atol=1e-5)
    assert np.allclose(read[:, READING_WIDTH:], np.log(np.clip(own.probabilities(vectors), 1e-9, 1)), atol=1e-5)
    assert fusion_config(5).lyrics_reading == shipped.width and "context" not in fusion_config(5).modalities
    with pytest.raises(ValueError, match="vectors only"):
        lyrics_reading(fit_reader(tmp_path, words=True), own)


def test_a_probe_that_never_saw_a_class_is_refused(rng):
    model = LogisticRegression().fit(rng.normal(size=(30, 3)), np.arange(30) % 3)
    assert probe_of(model, classes=3).weight.shape == (3, 3)
    with pytest.raises(ValueError, match="not all 4"):
        probe_of(model, classes=4)


def test_emotion_to_music_finds_each_class_where_its_songs_sit_in_the_space():
    torch.manual_seed(0)
    embedder = Embedder(CrossModalModel(ModelConfig(music=EncoderConfig(kind="mlp", hidden=8, layers=(16, 8)), d=4)))
    placements = np.array([CLASS_VA["quadrant"][c] for c in TAXONOMIES["quadrant"]])
    labels = np.repeat(np.arange(4), 3)
    at_home = embedder.embed_points(placements[labels])  # each song embedded where its class's query lands
    assert class_retrieval(embedder, at_home, labels, "quadrant") == {"p@10": pytest.approx(0.3), "map": 1.0}
    elsewhere = class_retrieval(embedder, at_home, (labels + 1) % 4, "quadrant")
    assert elsewhere["map"] < 0.5 and elsewhere["p@10"] < 0.3
