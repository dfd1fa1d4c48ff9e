"""The shipped song model: its lyrics reading is the trainers' probes as numbers, a track without lyrics keeps the
music model's representation, and the file holds everything it reads with."""

from dataclasses import replace

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from models.fusion import MODALITIES, FusionConfig, RepresentationReplacement
from models.song_model import CONTEXT_READING_WIDTH, LinearProbe, LyricsReading, SongModel
from models.songtext import TextModality

WIDTH, FEATURES = 12, 6


def _probe(rng: np.random.Generator, classes: int, inputs: int) -> LinearProbe:
    return LinearProbe(rng.normal(size=inputs), np.full(inputs, 2.0), rng.normal(size=(classes, inputs)),
                       rng.normal(size=classes))


def _ridge(rng: np.random.Generator) -> TextModality:
    return TextModality(rng.normal(size=(385, 2)), np.zeros(384), np.ones(384), np.zeros(2), np.ones(2),
                        np.ones(2), np.zeros(2), np.zeros(2))


def tiny_song_model(seed: int = 0, *, music_model: str = "music-test", context: bool = False) -> SongModel:
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    reading = LyricsReading(_probe(rng, 4, 384), _probe(rng, 4, 4), _ridge(rng), _probe(rng, 5, 384))
    fusion = FusionConfig(dim=16, heads=8, dropout=0.0, modalities=("audio", "lyrics"), lyrics_reading=reading.width,
                          voiced_by="lyrics")
    if context:
        fusion = replace(fusion, modalities=MODALITIES, context_reading=CONTEXT_READING_WIDTH)
    return SongModel(RepresentationReplacement(FEATURES, WIDTH, fusion), reading, FEATURES, music_model,
                     context=_ridge(rng) if context else None)


def test_a_linear_probe_reads_as_the_fitted_logistic_regression(rng):
    x, y = rng.normal(size=(200, 7)), rng.integers(0, 4, size=200)
    model = LogisticRegression(C=0.5, max_iter=1000).fit(x, y)
    probe = LinearProbe(np.zeros(7), np.ones(7), model.coef_, model.intercept_)
    assert np.allclose(probe.log_probabilities(x[:20]), np.log(model.predict_proba(x[:20])), atol=1e-9)


def test_a_track_without_lyrics_keeps_the_music_models_representation_and_lyrics_move_it(rng):
    song = tiny_song_model()
    h, features = rng.normal(size=WIDTH).astype(np.float32), rng.normal(size=(30, FEATURES)).astype(np.float32)
    assert song.represent(h, features, np.zeros((0, 384), np.float32)) is h
    sung = song.represent(h, features, rng.normal(size=(3, 384)).astype(np.float32))
    other = song.represent(h, features, rng.normal(size=(2, 384)).astype(np.float32))
    assert sung.shape == (WIDTH,) and not np.allclose(sung, h) and not np.allclose(sung, other)


def test_a_tri_modal_song_model_reads_the_title_and_artist_only_beside_lyrics(rng):
    song = tiny_song_model(context=True)
    assert song.reads_context and not tiny_song_model().reads_context
    h, features = rng.normal(size=WIDTH).astype(np.float32), rng.normal(size=(30, FEATURES)).astype(np.float32)
    lyrics, title = rng.normal(size=(3, 384)).astype(np.float32), rng.normal(size=384).astype(np.float32)
    assert song.represent(h, features, np.zeros((0, 384), np.float32), title) is h  # no lyrics: the music model's
    with_title, without = song.represent(h, features, lyrics, title), song.represent(h, features, lyrics)
    other_title = song.represent(h, features, lyrics, rng.normal(size=384).astype(np.float32))
    assert not np.allclose(with_title, without) and not np.allclose(with_title, other_title)
    audio_and_lyrics = tiny_song_model()  # a model without the context reads lyrics the same with a title or not
    assert np.array_equal(audio_and_lyrics.represent(h, features, lyrics, title),
                          audio_and_lyrics.represent(h, features, lyrics))


def test_a_song_model_reads_the_context_with_its_reading_or_not_at_all():
    song = tiny_song_model(context=True)
    with pytest.raises(ValueError, match="title and artist"):
        SongModel(song.replacement, song.reading, FEATURES, "music-test")  # the network reads context: no reading
    with pytest.raises(ValueError, match="title and artist"):
        SongModel(tiny_song_model().replacement, song.reading, FEATURES, "music-test", context=song.context)


def test_the_saved_file_reads_the_same_and_is_named_by_what_it_holds(tmp_path, rng):
    song = tiny_song_model()
    version = song.save(tmp_path / "a.pt")
    loaded = SongModel.load(tmp_path / "a.pt")
    assert loaded.version == version == song.version and version.startswith("song-")
    assert loaded.music_model == "music-test" and loaded.replacement.fusion.config == song.replacement.fusion.config
    h, features = rng.normal(size=WIDTH).astype(np.float32), rng.normal(size=(20, FEATURES)).astype(np.float32)
    lyrics = rng.normal(size=(2, 384)).astype(np.float32)
    assert np.array_equal(loaded.represent(h, features, lyrics), song.represent(h, features, lyrics))
    assert tiny_song_model().save(tmp_path / "b.pt") == version  # the same contents, the same name
    assert tiny_song_model(1).save(tmp_path / "c.pt") != version
    assert tiny_song_model(music_model="other").save(tmp_path / "d.pt") != version
    tri = tiny_song_model(context=True)
    tri.save(tmp_path / "e.pt")
    loaded, title = SongModel.load(tmp_path / "e.pt"), rng.normal(size=384).astype(np.float32)
    assert loaded.reads_context and loaded.version == tri.version != version
    assert np.array_equal(loaded.represent(h, features, lyrics, title), tri.represent(h, features, lyrics, title))


def test_a_file_that_is_not_a_song_model_is_refused(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="junk.pt is not a song model"):
        SongModel.load(tmp_path / "junk.pt")
    torch.save({"state": {}}, tmp_path / "partial.pt")
    with pytest.raises(ValueError, match="partial.pt is not a song model"):
        SongModel.load(tmp_path / "partial.pt")
