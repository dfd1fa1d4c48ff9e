"""The fusion trainer learns from the modality that carries the label, and early-stops on val."""

from dataclasses import replace

import numpy as np

from models.fusion import FusionConfig
from training.fusion_experiment import FusionTrainConfig, Song, evaluate, train_fusion


def _songs(n: int, rng: np.random.Generator, directions: np.ndarray) -> list[Song]:
    out = []
    for k in range(n):
        label = k % 5
        lyrics = directions[label] + 0.3 * rng.normal(size=(2, 384))
        out.append(Song(rng.normal(size=(5, 6)).astype(np.float32), lyrics.astype(np.float32),
                        rng.normal(size=(1, 384)).astype(np.float32), label))
    return out


def test_the_lyrics_branch_learns_what_the_audio_cannot_tell():
    rng = np.random.default_rng(0)
    directions = rng.normal(size=(5, 384))
    songs = {"train": _songs(150, rng, directions), "val": _songs(50, rng, directions),
             "test": _songs(50, rng, directions)}
    config = FusionTrainConfig(epochs=25, patience=25, batch_size=25,
                               fusion=FusionConfig(dim=16, heads=8, dropout=0.0, modality_dropout=0.2))
    fused = train_fusion(songs, "mirex_cluster", config)
    assert evaluate(fused, songs["test"], "mirex_cluster").macro_f1 > 0.9
    assert evaluate(fused, songs["test"], "mirex_cluster", without=("lyrics",)).macro_f1 < 0.5
    audio = train_fusion(songs, "mirex_cluster", FusionTrainConfig(
        epochs=25, patience=25, batch_size=25, fusion=FusionConfig(dim=16, heads=8, modalities=("audio",))))
    assert evaluate(audio, songs["test"], "mirex_cluster").macro_f1 < 0.5


def test_a_lyrics_reading_is_learnt_from_where_the_lyrics_segments_say_nothing():
    rng = np.random.default_rng(1)

    def songs(n: int) -> list[Song]:
        out = []
        for song in _songs(n, rng, np.zeros((5, 384))):  # segments are noise: only the reading knows the label
            reading = np.full(6, -3.0, np.float32)
            reading[song.label] = 3.0
            out.append(replace(song, lyrics_reading=reading + 0.3 * rng.normal(size=6).astype(np.float32)))
        return out

    data = {"train": songs(150), "val": songs(50), "test": songs(50)}
    base = dict(epochs=25, patience=25, batch_size=25)
    fusion = FusionConfig(dim=16, heads=8, dropout=0.0, modality_dropout=0.2)
    reads = train_fusion(data, "mirex_cluster", FusionTrainConfig(**base, fusion=replace(fusion, lyrics_reading=6)))
    plain = train_fusion(data, "mirex_cluster", FusionTrainConfig(**base, fusion=fusion))
    assert evaluate(reads, data["test"], "mirex_cluster").macro_f1 > 0.9
    assert evaluate(plain, data["test"], "mirex_cluster").macro_f1 < 0.5
