"""Tuning the sentence encoder's top layers: the split forward pass, a tiny tuning run, and what ships."""

import csv
import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from models.bundle import load_bundle
from models.default import resolve_bundle
from models.inference import Embedder
from models.songtext import SONG_TEXT_PATH, SongTextModel
from models.text import BASE_VERSION, SentenceEncoder, TextTuning, apply_tuning, shipped_version, top_layer_names
from moodspace import cli
from tests.training.test_text import MOODS
from training.text_tuning import Rated, TuneConfig, Upper, _as_tuning, lower_batches, tune, upper_vectors

HAPPY = ["We laughed all afternoon in the sun.", "She won the prize and hugged everyone.",
         "What a wonderful, joyful party!", "The puppy wagged its tail and licked my hand.",
         "They danced until dawn, grinning.", "I am so proud of you, this is perfect.",
         "Warm bread, old friends and a song.", "He finally came home safe and smiling."]
SAD = ["The funeral was grey and silent.", "She cried alone in the empty kitchen.",
       "Nobody came to his last birthday.", "The letter said the farm was lost.",
       "I miss her every single night.", "The dog died in the cold shed.",
       "He failed again and gave up hope.", "Rain fell on the abandoned graves."]


def _rated(texts_up: list[str], texts_down: list[str], name: str) -> Rated:
    va = np.array([[0.8, 0.4]] * len(texts_up) + [[-0.8, -0.3]] * len(texts_down))
    return Rated(name, texts_up + texts_down, va + np.random.default_rng(0).normal(0, 0.05, va.shape))


@pytest.fixture(scope="module")
def encoder() -> SentenceEncoder:
    return SentenceEncoder()


def test_the_split_forward_pass_gives_the_encoders_own_vectors(encoder: SentenceEncoder):
    """Frozen layers once, then the copied top layers: the same vectors as the whole encoder (batch order)."""
    rated = _rated(HAPPY, SAD, "tiny")
    batches = lower_batches(encoder, [rated], layers=2, batch_size=5, progress=False)
    vectors = upper_vectors(Upper(encoder, 2), batches)
    order = np.argsort([len(encoder.tokenizer(t)["input_ids"]) for t in rated.texts], kind="stable")
    np.testing.assert_allclose(vectors, encoder.encode([rated.texts[i] for i in order]), atol=1e-5)


def test_a_tiny_tuning_moves_the_top_layers_and_reads_the_held_apart_texts_better(encoder: SentenceEncoder):
    train = _rated(HAPPY[:6], SAD[:6], "tiny")
    val = _rated(HAPPY[6:], SAD[6:], "tiny")
    tuning, history = tune(encoder, [train], val, TuneConfig(layers=1, epochs=3, patience=3, lr=1e-4),
                           progress=False)
    assert set(tuning.state) == set(top_layer_names(encoder.model, 1))
    assert max(h["val_r"] for h in history[1:]) >= history[0]["val_r"]
    tuned = SentenceEncoder(tuning=tuning)
    assert tuned.version.startswith(f"{BASE_VERSION}+tuned-") and tuned.version == tuning.version
    before, after = encoder.encode(HAPPY[6:]), tuned.encode(HAPPY[6:])
    assert not np.allclose(before, after, atol=1e-4)  # the tuned layers are the ones that run


def test_a_tuning_round_trips_in_half_precision_and_names_its_version(tmp_path, encoder: SentenceEncoder):
    names = top_layer_names(encoder.model, 1)
    params = dict(encoder.model.named_parameters())
    state = {name: params[name].detach() + 0.01 for name in names}
    tuning = TextTuning(1, state, ("tiny",))
    tuning.save(tmp_path / "tuning.pt")
    loaded = TextTuning.load(tmp_path / "tuning.pt")
    assert loaded.version == tuning.version and loaded.trained_on == ("tiny",)
    assert all(t.dtype == torch.float16 for t in loaded.state.values())
    other = TextTuning(1, {n: t + 0.01 for n, t in state.items()})
    assert other.version != tuning.version
    assert shipped_version(tmp_path / "tuning.pt") == tuning.version
    assert shipped_version(tmp_path / "none.pt") == BASE_VERSION


def test_a_low_rank_tuning_ships_small_and_the_encoder_it_makes_is_the_one_that_trained(tmp_path,
                                                                                         encoder: SentenceEncoder):
    """Rank-2 updates of the top 2 layers' matrices: the encoder with them added gives the vectors the training
    pass gave (each update lands on the right weight), in a file a fraction of the replaced layers' size."""
    rated = _rated(HAPPY, SAD, "tiny")
    batches = lower_batches(encoder, [rated], layers=2, batch_size=5, progress=False)
    upper = Upper(encoder, 2, rank=2)
    assert not any(p.requires_grad for m in upper.low_rank().values() for p in m.base.parameters())
    torch.manual_seed(0)
    for module in upper.low_rank().values():
        torch.nn.init.normal_(module.b, std=0.05)
    tuning = _as_tuning(encoder, upper, TuneConfig(layers=2, rank=2), ["tiny"])
    assert not tuning.state and len(tuning.low_rank) == 12  # 6 linear maps a layer
    assert set(tuning.low_rank) <= set(top_layer_names(encoder.model, 2))
    tuning.save(tmp_path / "low.pt")
    TextTuning(2, {name: p.detach() for name, p in encoder.model.named_parameters()
                   if name in top_layer_names(encoder.model, 2)}).save(tmp_path / "whole.pt")
    assert (tmp_path / "low.pt").stat().st_size < 0.05 * (tmp_path / "whole.pt").stat().st_size
    loaded = TextTuning.load(tmp_path / "low.pt")
    assert loaded.version == tuning.version != BASE_VERSION
    order = np.argsort([len(encoder.tokenizer(t)["input_ids"]) for t in rated.texts], kind="stable")
    tuned = SentenceEncoder(tuning=loaded).encode([rated.texts[i] for i in order])
    np.testing.assert_allclose(tuned, upper_vectors(upper, batches), atol=2e-3)  # float16 factors
    assert not np.allclose(tuned, encoder.encode([rated.texts[i] for i in order]), atol=1e-2)


def test_a_tuning_of_other_layers_is_refused(encoder: SentenceEncoder):
    names = top_layer_names(encoder.model, 2)
    params = dict(encoder.model.named_parameters())
    wrong = TextTuning(1, {name: params[name].detach() for name in names})
    with pytest.raises(ValueError, match="top 1 layers"):
        apply_tuning(SentenceEncoder().model, wrong)



def test_the_shipped_text_heads_and_song_readings_read_the_shipped_encoder():
    """A new tuning (`moodspace tune-text`) calls for `moodspace retrain-default --keep-music`."""
    version = shipped_version()
    assert load_bundle(resolve_bundle("default")).metrics["text"]["encoder"] == version
    assert SongTextModel.load(SONG_TEXT_PATH).text_encoder == version


def test_the_shipped_model_reads_the_feeling_of_sentences_it_never_saw():
    """Sentences the project wrote: joy above grief in valence, panic above a doze in arousal (the frozen encoder
    with its heads read the giggling children at +0.09)."""
    embedder = Embedder.from_bundle(load_bundle(resolve_bundle("default")))
    va = embedder.text_va(["The children giggled and chased each other across the lawn.",
                           "We won! We actually won the final!",
                           "Everyone stood in silence at the funeral.",
                           "She laid the flowers on her father's grave and wept.",
                           "The crowd screamed and ran from the fire.",
                           "She dozed by the quiet fire with a cup of tea."])
    assert min(va[:2, 0]) > 0.3 > -0.3 > max(va[2:4, 0])
    assert va[4, 1] - va[5, 1] > 0.8


def test_the_tune_text_command_writes_a_loadable_tuning_and_compares_it_with_the_frozen_encoder(tmp_path):
    emobank_root, words_root = tmp_path / "emobank", tmp_path / "warriner"
    emobank_root.mkdir()
    words_root.mkdir()
    with (emobank_root / "emobank.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "split", "V", "A", "D", "text"])
        for mood, (v, a, texts) in MOODS.items():
            writer.writerows([f"{mood}{i}", "dev" if i >= 8 else "train", v, a, 3.0, t] for i, t in enumerate(texts))
    (words_root / "Ratings_Warriner_et_al.csv").write_text(
        "Word,V.Mean.Sum,A.Mean.Sum\nhappy,8.5,6.0\nfuneral,1.6,4.0\ncalm,6.9,1.7\nrage,2.4,7.7\n")
    result = CliRunner().invoke(cli.cli, ["tune-text", "--emobank", str(emobank_root), "--warriner", str(words_root),
                                          "--out", str(tmp_path / "t.pt"), "--layers", "1", "--epochs", "1",
                                          "--json", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    tuning = TextTuning.load(tmp_path / "t.pt")
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["version"] == tuning.version and tuning.version in result.output
    assert tuning.layers == 1 and tuning.trained_on == ("emobank", "warriner")
    assert set(report["emobank_dev"]) == {"frozen", "tuned"} and "frozen  EmoBank dev" in result.output
