from dataclasses import replace
from pathlib import Path

import pytest

from models.bundle import load_bundle, save_bundle
from models.config import EncoderConfig, ModelConfig
from models.encoders import CrossModalModel
from models.frontend import frontend_config
from tests.models.test_song_model import tiny_song_model
from training.model_card import render

EVALUATION = {"synth_test": {"n_test": 200, "lam": 0.98, "m2e": {"mrr": 0.25, "ar": 12.5},
                             "e2m": {"mrr": 0.2, "ar": 14.0},
                             "va_agreement": {"k": 10, "top_k_distance": 0.3, "nearest_distance": 0.2}},
              "vgmidi_val_fluidsynth": {"n_test": 30, "lam": 0.75, "m2e": {"mrr": 0.234, "ar": 9.2,
                                                                           "mrr_interval": [0.161, 0.318]},
                                        "e2m": {"mrr": 0.247, "ar": 10.3, "mrr_interval": [0.17, 0.335]}},
              "real_audio": [{"manifest": "w/4q.jsonl", "split": "val", "n": 95, "valence_auc": 0.9,
                              "arousal_auc": 0.95, "reading_accuracy": 0.7,
                              "head": {"accuracy": 0.75, "macro_f1": 0.74}}],
              "probe": {"4q": {"val": {"accuracy": 0.76, "macro_f1": 0.75, "valence_auc": 0.92,
                                       "arousal_auc": 0.95}}}}


@pytest.mark.parametrize("frontend", ["logmel", "musicnn-msd"])
def test_card_describes_the_bundle_it_was_written_from(tmp_path: Path, frontend: str):
    config = ModelConfig(music=EncoderConfig(kind="mlp", hidden=8, layers=(16, 8)), d=4)
    config = replace(config, frontend=frontend_config(frontend))
    saved = save_bundle(CrossModalModel(config).eval(), tmp_path / "b", metrics={"evaluation": EVALUATION})
    card = render(load_bundle(saved.path))
    assert f"Version `{saved.version}`" in card and f"over `{frontend}` frames of" in card
    assert "| built-in corpus, test split | 200 | 0.250 | 12.5 | 0.200 | 14.0 | 0.300 (0.200) | 0.98 |" in card
    val_series = "| VGMIDI, val series, rendered by FluidSynth (never trained on) | 30 | 0.234 (0.16-0.32) | 9.2 | "
    assert val_series + "0.247 (0.17-0.34) | 10.3 |  | 0.75 |" in card  # a figure with its interval
    real = "| 4q | val | 95 | 0.900 | 0.950 | 0.700 | 0.750 | 0.740 | 0.760 | 0.750 | 0.920 | 0.950 |"
    assert real in card and card.index(real) < card.index("built-in corpus, test split")  # real recordings first
    pretrained = "musicnn MSD weights" in card and "ISC" in card
    assert pretrained == (frontend == "musicnn-msd")
    assert ("trained on real recordings" in card) == (frontend == "musicnn-msd")


def _split(head: float, space: float, retrieval: float) -> dict:
    return {"head": {"macro_f1": head}, "shared space": {"macro_f1": space}, "emotion -> music": {"map": retrieval}}


def test_the_card_shows_the_song_model_fitted_with_its_bundle_and_only_that_one(tmp_path: Path):
    config = ModelConfig(music=EncoderConfig(kind="mlp", hidden=8, layers=(16, 8)), d=4)
    bundle = load_bundle(save_bundle(CrossModalModel(config).eval(), tmp_path / "b",
                                     metrics={"evaluation": EVALUATION}).path)
    song = tiny_song_model(music_model=bundle.version)
    song.metrics = {"seed": 4, "anchor": 0.3, "counts": {"mirex_mm": {"val": {"songs": 96, "with_lyrics": 80}}},
                    "music model alone": {"mirex_mm": {"val": _split(0.449, 0.481, 0.5)}},
                    "song model": {"mirex_mm": {"val": _split(0.563, 0.575, 0.549)}}}
    version = song.save(tmp_path / "song.pt")
    assert song.save(tmp_path / "again.pt") == version == tiny_song_model(music_model=bundle.version).save(
        tmp_path / "bare.pt")  # the figures are not part of the version
    card = render(bundle, type(song).load(tmp_path / "song.pt"))
    assert f"Song model `{version}`" in card
    assert "| mirex_mm | val | 96 (80) | 0.449 | 0.563 | 0.481 | 0.575 | 0.500 | 0.549 |" in card
    assert "Song model" not in render(bundle, tiny_song_model(music_model="another"))


def test_a_souped_default_names_both_recipes_it_joins_and_where(tmp_path: Path):
    config = ModelConfig(music=EncoderConfig(kind="mlp", hidden=8, layers=(16, 8)), d=4)
    soup = {"alpha": 0.75, "ends": [{"version": "moodspace-default-aaa", "train_config": {"seed": 1}},
                                    {"version": "moodspace-default-bbb", "train_config": {"seed": 1}}]}
    model = CrossModalModel(config).eval()
    souped = render(load_bundle(save_bundle(model, tmp_path / "s", metrics={"soup": soup}).path))
    assert "recipe (`moodspace-default-aaa`)" in souped and "renderers (`moodspace-default-bbb`)" in souped
    assert "(seed 1) and joined at 0.75 of the latter" in souped
    assert "soup" not in render(load_bundle(save_bundle(model, tmp_path / "p").path))


def test_the_card_adds_the_probe_over_the_models_own_front_end_where_it_reads_more(tmp_path: Path):
    config = ModelConfig(music=EncoderConfig(kind="mlp", hidden=8, layers=(16, 8)), d=4)
    own = {"frontend": "musicnn-msd-tags-chords",
           "sets": {"4q": {"val": {"accuracy": 0.79, "macro_f1": 0.78, "valence_auc": 0.94, "arousal_auc": 0.976}}}}
    model = CrossModalModel(config).eval()
    card = render(load_bundle(save_bundle(model, tmp_path / "b", metrics={
        "evaluation": {**EVALUATION, "probe_own_frontend": own}}).path))
    assert "over the model's own front end (`musicnn-msd-tags-chords`)" in card
    assert "| 4q | val | 0.790 | 0.780 | 0.940 | 0.976 |" in card
    assert card.index("| 4q | val | 95 |") < card.index("| 4q | val | 0.790 |")  # after the model and its baseline
    plain = render(load_bundle(save_bundle(model, tmp_path / "p", metrics={"evaluation": EVALUATION}).path))
    assert "own front end" not in plain


def test_the_card_says_where_the_va_reading_comes_from(tmp_path: Path):
    config = ModelConfig(music=EncoderConfig(kind="mlp", hidden=8, layers=(16, 8)), d=4)
    grid = render(save_bundle(CrossModalModel(config).eval(), tmp_path / "grid"))
    assert "The VA reading: retrieval over the VA grid" in grid
    mixed = replace(config, taxonomies=("quadrant",), class_reading="quadrant", grid_share=(0.6, 0.0))
    card = render(save_bundle(CrossModalModel(mixed).eval(), tmp_path / "mixed"))
    assert "the quadrant head's expected class placement per window, with 0.6 of the retrieval over the VA grid " \
           "mixed into valence and 0 into arousal" in card
