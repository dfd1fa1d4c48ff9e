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


def test_keeping_the_music_takes_another_bundles_encoders_and_drops_its_text_heads(tmp_path: Path, monkeypatch):
    import torch

    from models.bundle import save_bundle
    from models.config import TextConfig
    from models.encoders import CrossModalModel
    from training.text import with_text_heads

    torch.manual_seed(3)
    source = with_text_heads(CrossModalModel(ModelConfig(d=4)), TextConfig(layers=(8,)))
    save_bundle(source, tmp_path / "source", metrics={"text": {"encoder": "old"}, "history": [1, 2]})
    prepared = []  # a kept music model is not souped: no varied renders are prepared for it
    prepare = default_model.prepare
    monkeypatch.setattr(default_model, "prepare", lambda **kw: prepared.append(kw["augment"]) or prepare(**kw))
    kept = retrain_default(shared=None, work=tmp_path / "work", out=tmp_path / "bundle", card=None,
                           synth_size={"n": 20, "seconds": 3, "seed": 0}, music_from=tmp_path / "source",
                           soup_alpha=0.75)
    assert prepared == [False]
    assert kept.config.text is None and "text" not in kept.metrics and kept.metrics["history"] == [1, 2]
    expected = {k: v for k, v in source.state_dict().items() if not k.startswith("text.")}
    got = load_bundle(tmp_path / "bundle").model.state_dict()
    assert got.keys() == expected.keys() and all(torch.equal(got[k], expected[k]) for k in expected)


def test_the_default_as_a_soup_joins_two_recipes_trained_from_one_seed(tmp_path: Path, monkeypatch):
    from dataclasses import replace

    import torch

    from training.corpus.generate import synth_corpus
    from training.default_model import EMA_DECAY, Sources, train_soup
    from training.soup import interpolate_weights

    monkeypatch.setattr(default_model, "ModelConfig", lambda: ModelConfig(d=4))

    def corpus(name: str, seed: int) -> Path:  # the same clip ids: the second corpus is a second rendition
        return synth_corpus(n=20, seconds=3, seed=seed, out=tmp_path / name, workers=1, progress=False)

    plain = Sources(corpus("synth", 0), None, None, None, None)
    varied = replace(plain, varied=(corpus("varied", 1),))
    config = TrainConfig(epochs=2, batch_size=8, crop_frames=3, patience=2, seed=5)
    bundle = train_soup(plain, varied, work=tmp_path / "work", out=tmp_path / "soup", train_config=config,
                        alpha=0.75, distil=False, frontend="logmel", workers=1)
    ends = [load_bundle(tmp_path / "work" / name) for name in ("bundle-default-recipe", "bundle-invariant-recipe")]
    runs = [end.metrics["train_config"] for end in ends]
    assert runs[0]["seed"] == runs[1]["seed"] == 5 and not runs[0]["one_rendition"]
    assert runs[1]["one_rendition"] and runs[1]["heads_from_first_rendition"] and runs[1]["ema_decay"] == EMA_DECAY
    assert len(ends[1].metrics["data"]) == 2 and len(ends[0].metrics["data"]) == 1  # only one heard the varied set
    expected = interpolate_weights(ends[0].model, ends[1].model, alpha=0.75)
    got = load_bundle(tmp_path / "soup").model.state_dict()
    refitted = [k for k in expected if ".align." in k or k == "readout_temperature"]  # fitted again after joining
    assert all(torch.allclose(got[k], expected[k]) for k in expected if k not in refitted)
    assert bundle.metrics["soup"]["alpha"] == 0.75
    assert [e["version"] for e in bundle.metrics["soup"]["ends"]] == [e.version for e in ends]


def test_the_teachers_read_the_teacher_front_end_whatever_the_students(tmp_path: Path, monkeypatch):
    from training.default_model import PRETRAINED_FRONTEND, Sources, recipe, teachers_of

    read = []
    monkeypatch.setattr(default_model, "teacher_logits",
                        lambda manifests, *, frontend: read.append((manifests, frontend.name)) or {})
    fourq = tmp_path / "4q.jsonl"
    sources = Sources(tmp_path / "synth.jsonl", None, None, None, None, fourq=fourq)
    student = recipe(sources, frontend="musicnn-msd-tags-chords")
    assert student.config.frontend.name == "musicnn-msd-tags-chords"
    assert teachers_of(student) == {} and read == [([fourq], PRETRAINED_FRONTEND)]
    assert student.config.frontend.name != PRETRAINED_FRONTEND
    assert teachers_of(recipe(Sources(tmp_path / "synth.jsonl", None, None, None, None))) is None  # nothing to teach


def test_the_card_probes_the_pretrained_front_end_and_the_models_own_where_it_reads_more(monkeypatch):
    from training.default_model import PRETRAINED_FRONTEND, probes

    monkeypatch.setattr(default_model, "probe_baseline", lambda manifest, *, frontend: f"{manifest.stem} {frontend}")
    real = [Path("w/4q.jsonl"), Path("w/mirex_mm.jsonl")]
    assert probes(PRETRAINED_FRONTEND, real) == {"probe": {"4q": f"4q {PRETRAINED_FRONTEND}",
                                                           "mirex_mm": f"mirex_mm {PRETRAINED_FRONTEND}"}}
    chords = probes("musicnn-msd-tags-chords", real)
    assert chords["probe"]["4q"] == f"4q {PRETRAINED_FRONTEND}"  # the baseline stays the pretrained features
    assert chords["probe_own_frontend"] == {"frontend": "musicnn-msd-tags-chords",
                                            "sets": {"4q": "4q musicnn-msd-tags-chords",
                                                     "mirex_mm": "mirex_mm musicnn-msd-tags-chords"}}


def test_the_default_reads_va_from_its_quadrant_head_with_the_grid_share_and_from_the_grid_without_the_head(
        tmp_path: Path):
    from training.default_model import CLASS_READING, GRID_SHARE, Sources, recipe

    with_head = recipe(Sources(tmp_path / "synth.jsonl", None, None, None, None, fourq=tmp_path / "4q.jsonl")).config
    assert (with_head.class_reading, with_head.grid_share) == (CLASS_READING, GRID_SHARE) != (None, (0.0, 0.0))
    built_in = recipe(Sources(tmp_path / "synth.jsonl", None, None, None, None)).config
    assert (built_in.class_reading, built_in.grid_share) == (None, (0.0, 0.0))  # no head: the grid reading alone
