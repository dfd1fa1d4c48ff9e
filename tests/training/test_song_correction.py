"""The correction learns what the words add through a music model's fixed heads, and leaves silent tracks alone."""

from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from models.fusion import FusionConfig, RepresentationChange, RepresentationReplacement
from training.fusion_experiment import Song, inputs
from training.lyrics_reader import READING_WIDTH
from training.song_correction import (
    CorrectionTrainConfig,
    SongSet,
    anchor_term,
    evaluate,
    lyrics_probe_sets,
    own_stack_variants,
    probabilities,
    replacement_variants,
    song_correction_experiment,
    train_correction,
)

WIDTH = 12


def _set(rng: np.random.Generator, directions: np.ndarray) -> SongSet:
    def songs(n: int) -> list[Song]:
        out = []
        for k in range(n):
            label = k % 5
            lyrics = directions[label] + 0.3 * rng.normal(size=(2, 384))
            out.append(Song(rng.normal(size=(4, WIDTH)).astype(np.float32), lyrics.astype(np.float32),
                            rng.normal(size=(1, 384)).astype(np.float32), label,
                            track=rng.normal(size=WIDTH).astype(np.float32)))
        return out

    return SongSet.of("mirex_mm", "mirex_cluster", {"train": songs(150), "val": songs(50), "test": songs(50)})


def test_the_correction_reads_the_lyrics_through_fixed_heads_and_silent_tracks_keep_their_reading():
    rng = np.random.default_rng(0)
    data = _set(rng, rng.normal(size=(5, 384)))
    torch.manual_seed(0)
    heads = nn.ModuleDict({"mirex_cluster": nn.Linear(WIDTH, 5)}).requires_grad_(False)
    before = [p.clone() for p in heads.parameters()]
    config = CorrectionTrainConfig(epochs=30, patience=30, batch_size=25,
                                   fusion=FusionConfig(dim=16, heads=8, dropout=0.0, modality_dropout=0.2))
    correction = train_correction([data], heads, config)
    assert evaluate(heads, data, "test", None).macro_f1 < 0.5  # the audio (random here) cannot tell
    assert evaluate(heads, data, "test", correction).macro_f1 > 0.9
    assert all(torch.equal(a, b) for a, b in zip(before, heads.parameters(), strict=True))
    silent = probabilities(heads, data, "test", correction, without=("lyrics", "context"))
    assert np.array_equal(silent, probabilities(heads, data, "test", None))


def test_a_set_without_the_music_models_representation_is_refused():
    song = Song(np.zeros((4, WIDTH), np.float32), np.zeros((0, 384), np.float32), np.zeros((1, 384), np.float32), 0)
    with pytest.raises(ValueError, match="music model"):
        SongSet.of("4q", "quadrant", {"train": [song]})


def test_a_lyrics_only_correction_leaves_tracks_without_lyrics_exactly_as_they_were():
    rng = np.random.default_rng(1)
    data = _set(rng, rng.normal(size=(5, 384)))
    torch.manual_seed(0)
    heads = nn.ModuleDict({"mirex_cluster": nn.Linear(WIDTH, 5)}).requires_grad_(False)
    config = CorrectionTrainConfig(epochs=3, patience=3, batch_size=25,
                                   fusion=FusionConfig(dim=16, heads=8, modalities=("audio", "lyrics")))
    correction = train_correction([data], heads, config)
    with_context_only = probabilities(heads, data, "test", correction, without=("lyrics",))
    assert np.array_equal(with_context_only, probabilities(heads, data, "test", None))
    assert not np.array_equal(probabilities(heads, data, "test", correction), with_context_only)


def _silent(data: SongSet, name: str, taxonomy: str) -> SongSet:
    """``data``'s songs without lyrics, as another set (4Q's clips have none)."""
    return replace(data, name=name, taxonomy=taxonomy, songs={
        split: [replace(s, lyrics=np.zeros((0, 384), np.float32), label=s.label % 4) for s in rows]
        for split, rows in data.songs.items()})


def test_the_own_probe_of_the_set_with_lyrics_reads_its_songs_and_pads_the_silent_set():
    rng = np.random.default_rng(2)
    voiced = _set(rng, 3.0 * rng.normal(size=(5, 384)))
    words = ["rain", "road", "night", "home", "light", "river"]
    voiced = replace(voiced, songs={split: [replace(s, artist=f"{split} {k // 3}", lyrics_text=" ".join(
        [*rng.choice(words, 8).tolist(), f"word{s.label}"])) for k, s in enumerate(rows)]
        for split, rows in voiced.songs.items()})
    silent = _silent(_set(rng, rng.normal(size=(5, 384))), "4q", "quadrant")
    probed, padded = lyrics_probe_sets([voiced, silent])
    for split, rows in probed.songs.items():
        extra = np.stack([s.lyrics_reading[READING_WIDTH:] for s in rows])
        assert extra.shape == (len(rows), 5) and np.all(extra < 0.0)  # log-probabilities of the 5 clusters
        labels = np.array([s.label for s in rows])
        assert np.mean(extra.argmax(axis=1) == labels) > 0.9, split  # read out of fold on train too
    assert all(np.array_equal(s.lyrics_reading, np.zeros(READING_WIDTH + 5)) for rows in padded.songs.values()
               for s in rows)
    assert all(c.lyrics_reading == READING_WIDTH + 5 for c in own_stack_variants([voiced, silent]).values())


def test_an_own_probe_needs_exactly_one_set_with_lyrics():
    rng = np.random.default_rng(3)
    voiced = _set(rng, rng.normal(size=(5, 384)))
    with pytest.raises(ValueError, match="exactly one set"):
        lyrics_probe_sets([voiced, replace(voiced, name="other")])
    with pytest.raises(ValueError, match="exactly one set"):
        lyrics_probe_sets([_silent(voiced, "4q", "quadrant")])


def _replacement(data: SongSet, anchor: float) -> tuple[RepresentationChange, nn.ModuleDict]:
    torch.manual_seed(0)
    heads = nn.ModuleDict({"mirex_cluster": nn.Linear(WIDTH, 5)}).requires_grad_(False)
    config = CorrectionTrainConfig(epochs=20, patience=20, batch_size=25, replacement=True, anchor=anchor,
                                   fusion=FusionConfig(dim=16, heads=8, dropout=0.0, modality_dropout=0.2))
    return train_correction([data], heads, config), heads


def _distance(model: RepresentationChange, data: SongSet) -> float:
    model.eval()
    with torch.no_grad():
        h = data.tracks["test"]
        return float(((model(h, inputs(data.songs["test"])) - h) ** 2).sum(dim=1).mean() / h.var(dim=0).sum())


def test_the_replacement_reads_the_lyrics_through_fixed_heads_and_the_anchor_keeps_it_near_the_music_model():
    rng = np.random.default_rng(4)
    data = _set(rng, rng.normal(size=(5, 384)))
    data = replace(data, songs={split: [replace(s, features=np.tile(s.track, (4, 1))) for s in rows]  # type: ignore[arg-type]
                                for split, rows in data.songs.items()})  # the audio can tell where h lies
    free, heads = _replacement(data, 0.0)
    anchored, _ = _replacement(data, 3.0)
    assert isinstance(free, RepresentationReplacement)
    assert evaluate(heads, data, "test", free).macro_f1 > 0.9
    assert evaluate(heads, data, "test", anchored).macro_f1 > 0.7  # the lyrics still decide (the audio: < 0.5)
    assert _distance(anchored, data) < 0.75 * _distance(free, data)
    silent = probabilities(heads, data, "test", free, without=("lyrics", "context"))
    assert np.array_equal(silent, probabilities(heads, data, "test", None))


def test_the_anchor_term_is_zero_for_the_music_models_own_representation_and_blind_to_its_scale():
    rng = np.random.default_rng(5)
    h, fused = torch.from_numpy(rng.normal(size=(40, WIDTH))), torch.from_numpy(rng.normal(size=(40, WIDTH)))
    assert float(anchor_term(h, h, 1.0)) == 0.0
    spread = float(h.var(dim=0).sum())
    assert float(anchor_term(10 * fused, 10 * h, 100 * spread)) == pytest.approx(float(anchor_term(fused, h, spread)))


def test_replacement_variants_are_named_by_anchor_and_reading_and_an_unknown_reading_is_refused():
    rng = np.random.default_rng(6)
    voiced = _set(rng, rng.normal(size=(5, 384)))
    plain = replacement_variants([voiced], (0.3, 1.0), "none")
    assert list(plain[0.3]) == ["replacement (anchor 0.3)", "replacement (anchor 0.3), lyrics only"]
    assert all(config.lyrics_reading == 0 for config in plain[1.0].values())
    for reading, suffix in (("stack", "own stack"), ("vectors", "own probe")):
        read = replacement_variants([voiced], (1.0,), reading)[1.0]
        assert all(name.endswith(suffix) and config.lyrics_reading == READING_WIDTH + 5
                   for name, config in read.items()), reading
    with pytest.raises(ValueError, match="unknown replacement reading"):
        replacement_variants([voiced], (1.0,), "ngrams")


@pytest.mark.parametrize(("anchors", "readings", "lyrics_sets", "message"), [
    ((1.0,), ("stack", "ngrams"), "sets", "unknown replacement reading 'ngrams'"),
    ((1.0,), ("stack",), None, "give lyrics_sets"),
    ((0.3, -1.0), ("vectors",), "sets", "0 or more, not -1"),
])
def test_replacements_asked_wrongly_are_refused_before_any_data_is_read(tmp_path, anchors, readings, lyrics_sets,
                                                                        message):
    with pytest.raises(ValueError, match=message):
        song_correction_experiment([tmp_path / "missing.jsonl"], out=tmp_path / "out", seeds=1, music=tmp_path / "none",
                                   lyrics_sets=tmp_path if lyrics_sets else None, replacement_anchors=anchors,
                                   replacement_readings=readings)
    assert not (tmp_path / "out").exists()
