import csv
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from models.bundle import load_bundle, save_bundle
from models.config import TextConfig
from models.encoders import CrossModalModel
from moodspace import cli
from tests.training.conftest import TINY_MODEL
from training.run_text import emobank_sets
from training.text import (
    TextTrainConfig,
    distance_weighted_negatives,
    relevance_metrics,
    text_va,
    train_va_bridge,
    with_text_heads,
)

# (text, valence, arousal) on EmoBank's 1-5 scale: four clearly different moods.
MOODS = {
    "joy": (4.6, 4.2, ["We won the championship and everyone is cheering!", "I just got the job, I'm thrilled!",
                       "The party was amazing, we danced all night!", "She said yes, I am so excited!",
                       "Best birthday ever, what a fantastic surprise!", "Hooray, the vacation starts today!",
                       "The crowd roared with delight at the goal.", "I laughed so hard, it was wonderful!",
                       "Our team scored in the last second, incredible!", "Fireworks lit the sky as we celebrated."]),
    "calm": (4.2, 1.8, ["I relaxed by the quiet lake this evening.", "A gentle breeze, a cup of tea, pure peace.",
                        "The garden was calm and pleasant at dusk.", "We rested comfortably on the soft sofa.",
                        "Sunday morning was slow and content.", "The warm bath felt soothing and serene.",
                        "She smiled softly while reading by the fire.", "The meadow lay still under a mild sun.",
                        "Everything felt safe, warm and quiet.", "He dozed peacefully in the hammock."]),
    "grief": (1.4, 1.9, ["My grandmother passed away last night.", "I feel empty and alone since she left.",
                         "The funeral was grey, silent and sad.", "Nobody came to visit; I cried all day.",
                         "I lost my job and feel hopeless.", "The old dog died and the house is so quiet.",
                         "Tears fell as we said goodbye forever.", "Everything feels heavy and meaningless now.",
                         "He sat alone in the dark, grieving.", "The letter brought only sorrow."]),
    "rage": (1.5, 4.6, ["I am furious, they lied to my face!", "He screamed and smashed the window in anger.",
                        "The attacker chased us with a knife!", "Get out of my house right now, I hate you!",
                        "Terrified, we ran from the burning building.", "The mob stormed the gates, shouting threats.",
                        "She slammed the door, shaking with rage.", "A gunshot rang out and people panicked.",
                        "I'm so angry I could explode!", "The monster lunged at us from the darkness."]),
}


@pytest.fixture(scope="module")
def emobank_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("emobank")
    with (root / "emobank.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "split", "V", "A", "D", "text"])
        for mood, (v, a, texts) in MOODS.items():
            for i, text in enumerate(texts):
                writer.writerow([f"{mood}{i}", "dev" if i >= 8 else "train", v, a, 3.0, text])
    return root


def _text_model() -> CrossModalModel:
    torch.manual_seed(0)
    return with_text_heads(CrossModalModel(TINY_MODEL), TextConfig(layers=(32,)))


def test_va_bridge_learns_sentiment_that_generalises(emobank_root: Path):
    sets = emobank_sets(emobank_root)
    model = _text_model()
    metrics = train_va_bridge(model, sets["train"], sets["dev"], TextTrainConfig(epochs=200, patience=200))
    estimated = text_va(model, sets["dev"].vectors)
    assert (np.sign(estimated) == np.sign(sets["dev"].va)).mean() >= 0.75
    assert metrics.valence_r > 0.6


def test_with_text_heads_keeps_every_other_weight():
    base = CrossModalModel(TINY_MODEL).eval()
    grown = with_text_heads(base, TextConfig(layers=(8,)))
    for name, tensor in base.state_dict().items():
        assert torch.equal(tensor, grown.state_dict()[name]), name
    assert grown.text is not None and base.text is None


def test_distance_weighted_sampling_only_picks_allowed_negatives():
    generator = torch.Generator().manual_seed(0)
    anchors, candidates = torch.randn(50, 8), torch.randn(40, 8)
    allowed = torch.rand(50, 40) > 0.5
    allowed[:, 0] = True
    picks = distance_weighted_negatives(anchors, candidates, allowed, generator)
    assert allowed[torch.arange(50), picks].all()


def test_relevance_metrics_on_a_constructed_case():
    # Two queries of class 0 and 1; items of classes [0, 1, 0, 1].
    scores = np.array([[0.9, 0.8, 0.1, 0.0], [0.9, 0.1, 0.2, 0.8]])
    metrics = relevance_metrics(scores, np.array([0, 1]), np.array([0, 1, 0, 1]), k=2)
    assert metrics.precision == pytest.approx((0.5 + 0.5) / 2) and metrics.to_dict()["p@2"] == metrics.precision
    assert metrics.mrr == pytest.approx((1.0 + 0.5) / 2)


def test_train_text_and_eval_text_commands(emobank_root: Path, tiny_corpus: Path, tmp_path: Path):
    model = CrossModalModel(replace(TINY_MODEL, n_features=192)).eval()
    save_bundle(model, tmp_path / "base")
    runner = CliRunner()
    result = runner.invoke(cli.cli, ["train-text", "--bundle", str(tmp_path / "base"), "--out", str(tmp_path / "text"),
                                     "--emobank", str(emobank_root), "--music", str(tiny_corpus), "--epochs", "3"])
    assert result.exit_code == 0, result.output
    bundle = load_bundle(tmp_path / "text")
    assert bundle.config.text is not None and "text" in bundle.metrics
    result = runner.invoke(cli.cli, ["eval-text", "--bundle", str(tmp_path / "text"), "--emobank", str(emobank_root),
                                     "--music-test", f"{tiny_corpus}:test", "--music-train", str(tiny_corpus),
                                     "--json", str(tmp_path / "t.json")])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "t.json").read_text())
    assert metrics["n_queries"] == 8 and metrics["n_music"] == 6
    for name in ("va_bridge", "metric_bridge", "classification"):
        assert 0 <= metrics[name]["p@5"] <= 1 and 0 < metrics[name]["mrr"] <= 1
    assert set(metrics["text_va_dev"]) == {"valence_r", "valence_r2", "arousal_r", "arousal_r2"}
