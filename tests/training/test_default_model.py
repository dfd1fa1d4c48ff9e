from pathlib import Path

from models.bundle import load_bundle
from models.config import ModelConfig
from training import default_model
from training.default_model import retrain_default
from training.train import TrainConfig


def test_retraining_without_shared_data_uses_the_built_in_corpus_and_says_so(tmp_path: Path, caplog, monkeypatch):
    monkeypatch.setattr(default_model, "ModelConfig", lambda: ModelConfig(d=4))
    bundle = retrain_default(shared=None, work=tmp_path / "work", out=tmp_path / "bundle", card=tmp_path / "CARD.md",
                             synth_size={"n": 20, "seconds": 3, "seed": 0},
                             train_config=TrainConfig(epochs=2, batch_size=8, crop_frames=3, patience=2))
    assert "training on the built-in corpus alone" in caplog.text
    loaded = load_bundle(tmp_path / "bundle")
    assert loaded.version == bundle.version and loaded.version.startswith("moodspace-default-")
    assert loaded.config.text is None
    evaluation = loaded.metrics["evaluation"]
    assert set(evaluation) == {"synth_test"} and evaluation["synth_test"]["n_test"] == 4
    card = (tmp_path / "CARD.md").read_text()
    assert "No text heads" in card and "built-in corpus, test split | 4 |" in card
    assert loaded.metrics["sources"]["vgmidi"] is None


def test_keeping_the_music_takes_another_bundles_encoders_and_drops_its_text_heads(tmp_path: Path):
    import torch

    from models.bundle import save_bundle
    from models.config import TextConfig
    from models.encoders import CrossModalModel
    from training.text import with_text_heads

    torch.manual_seed(3)
    source = with_text_heads(CrossModalModel(ModelConfig(d=4)), TextConfig(layers=(8,)))
    save_bundle(source, tmp_path / "source", metrics={"text": {"encoder": "old"}, "history": [1, 2]})
    kept = retrain_default(shared=None, work=tmp_path / "work", out=tmp_path / "bundle", card=None,
                           synth_size={"n": 20, "seconds": 3, "seed": 0}, music_from=tmp_path / "source")
    assert kept.config.text is None and "text" not in kept.metrics and kept.metrics["history"] == [1, 2]
    expected = {k: v for k, v in source.state_dict().items() if not k.startswith("text.")}
    got = load_bundle(tmp_path / "bundle").model.state_dict()
    assert got.keys() == expected.keys() and all(torch.equal(got[k], expected[k]) for k in expected)
