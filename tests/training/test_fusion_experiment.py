"""The fusion trainer learns from the modality that carries the label, and early-stops on val."""

from dataclasses import replace

import numpy as np
import torch

from models.fusion import FusionConfig, audio_path
from training.fusion_experiment import (
    FusionTrainConfig,
    Song,
    evaluate,
    inputs,
    modality_dropout,
    own_probe_variants,
    train_fusion,
    with_own_probe,
)
from training.lyrics_reader import READING_WIDTH


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


def test_the_own_probe_reads_each_voiced_song_and_leaves_the_silent_ones_at_zero():
    rng = np.random.default_rng(2)
    directions = rng.normal(size=(5, 384))
    words = ["rain", "road", "night", "home", "light", "river"]
    data = {split: [replace(song, artist=f"{split} {k // 3}",
                            lyrics_text=" ".join([*rng.choice(words, 8).tolist(), f"word{song.label}"]))
                    for k, song in enumerate(_songs(n, rng, directions))]
            for split, n in (("train", 150), ("val", 50), ("test", 50))}
    data["val"][0] = replace(data["val"][0], lyrics=np.zeros((0, 384), np.float32))  # a song without lyrics
    for probe in ("vectors", "stack"):
        out, folds_accuracy = with_own_probe(data, "mirex_cluster", probe)
        assert folds_accuracy > 0.9
        _reads_each_voiced_song(data, out)
    assert all(c.lyrics_reading == READING_WIDTH + 5 for c in own_probe_variants(5, "stack").values())


def _reads_each_voiced_song(data: dict[str, list[Song]], out: dict[str, list[Song]]) -> None:
    for split in data:
        assert [s.label for s in out[split]] == [s.label for s in data[split]]
        extra = np.stack([s.lyrics_reading[READING_WIDTH:] for s in out[split]])
        assert extra.shape == (len(data[split]), 5)
        np.testing.assert_array_equal(np.stack([s.lyrics_reading[:READING_WIDTH] for s in out[split]]), 0.0)
        voiced = np.array([s.lyrics.shape[0] > 0 for s in out[split]])
        assert np.all(extra[~voiced] == 0.0) and np.all(extra[voiced] < 0.0)
        labels = np.array([s.label for s in out[split]])
        assert np.mean(extra[voiced].argmax(axis=1) == labels[voiced]) > 0.9  # the lyrics carry the label


def test_text_dropout_hides_all_of_a_tracks_text_and_leaves_other_runs_as_they_were():
    rng = np.random.default_rng(3)
    batch = inputs(_songs(40, rng, rng.normal(size=(5, 384))))

    def hidden(together: float) -> tuple[torch.Tensor, torch.Tensor]:
        out = modality_dropout(batch, 0.3, torch.Generator().manual_seed(0), together=together)
        return out.lyrics_lengths == 0, out.context_lengths == 0

    lyrics, context = hidden(0.0)
    assert 0 < lyrics.sum() < 40 and not torch.equal(lyrics, context)  # apart, as before
    plain = modality_dropout(batch, 0.3, torch.Generator().manual_seed(0))
    assert torch.equal(plain.lyrics_lengths == 0, lyrics) and torch.equal(plain.context_lengths == 0, context)
    everything = hidden(1.0)
    assert everything[0].all() and everything[1].all()
    some = hidden(0.5)
    assert (some[0] & some[1]).sum() > (lyrics & context).sum()


def test_a_routed_model_reads_the_lyrics_and_without_text_is_the_audio_only_model():
    rng = np.random.default_rng(3)
    directions = rng.normal(size=(5, 384))
    songs = {"train": _songs(150, rng, directions), "val": _songs(50, rng, directions),
             "test": _songs(50, rng, directions)}
    fusion = FusionConfig(dim=16, heads=8, dropout=0.1, modality_dropout=0.2)
    base = dict(epochs=25, patience=25, batch_size=25)
    routed = train_fusion(songs, "mirex_cluster", FusionTrainConfig(**base, fusion=replace(fusion, routed=True)))
    audio = train_fusion(songs, "mirex_cluster", FusionTrainConfig(**base, fusion=audio_path(fusion)))
    assert evaluate(routed, songs["test"], "mirex_cluster").macro_f1 > 0.9
    silent = inputs(songs["test"]).without("lyrics", "context")
    with torch.no_grad():
        assert torch.equal(routed(silent, "mirex_cluster"), audio(silent, "mirex_cluster"))
