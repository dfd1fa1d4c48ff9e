"""The recipe experiment's summary over seeds."""

import pytest

from training.recipe_experiment import markdown, summarize


def test_seeds_are_summarized_as_mean_and_spread_per_set_and_score():
    runs = {"plain": [{"4q val": {"valence_auc": 0.8, "head_accuracy": 0.6}},
                      {"4q val": {"valence_auc": 0.9, "head_accuracy": 0.7}}]}
    summary = summarize(runs)
    assert summary["plain"]["4q val"]["valence_auc"] == pytest.approx([0.85, 0.05])
    table = markdown(summary, seeds=2)
    assert "| plain | 4q val | 0.850 (0.050) |  |  | 0.650 (0.050) |  |  |  |" in table



def test_each_run_is_written_before_the_next_starts(tmp_path, monkeypatch):
    import json

    import training.recipe_experiment as experiment

    monkeypatch.setattr(experiment, "prepare", lambda **_: None)
    monkeypatch.setattr(experiment, "teachers_of", lambda _: None)
    monkeypatch.setattr(experiment, "recipe", lambda *_, **__: None)
    done = []

    def run_variant(variant, *, seed, **_):
        if done:
            raise KeyboardInterrupt  # the experiment stopped during its second run
        done.append((variant, seed))
        return {"4q val": {"valence_auc": 0.9}}

    monkeypatch.setattr(experiment, "run_variant", run_variant)
    with pytest.raises(KeyboardInterrupt):
        experiment.recipe_experiment(shared=tmp_path, work=tmp_path, out=tmp_path / "out",
                                     variants=["key-distil-short", "distil-short"], seeds=2)
    kept = json.loads((tmp_path / "out" / "results.json").read_text())
    assert kept["runs"] == {"key-distil-short": [{"4q val": {"valence_auc": 0.9}}]}
    assert "| key-distil-short | 4q val | 0.900 (0.000) |" in (tmp_path / "out" / "results.md").read_text()


def test_stem_variants_branch_from_one_stem_per_seed(tmp_path, monkeypatch):
    from types import SimpleNamespace

    import training.recipe_experiment as experiment

    trained = []

    def train_music(chosen, *, out, train_config, teachers, init=None):
        out.mkdir(parents=True)
        (out / "config.json").write_text("{}")
        trained.append(SimpleNamespace(name=out.name, data=chosen, config=train_config, teachers=teachers, init=init))

    monkeypatch.setattr(experiment, "train_music", train_music)
    monkeypatch.setattr(experiment, "recipe", lambda data, **_: data)
    monkeypatch.setattr(experiment, "load_bundle", lambda path: SimpleNamespace(model=f"model of {path.name}"))
    monkeypatch.setattr(experiment, "judge", lambda bundle, data: {})
    given = {"sources": {False: "plain", True: "varied"}, "teachers": {False: "t-plain", True: "t-varied"},
             "out": tmp_path}
    for variant, seed in (("stem-distil-short", 0), ("stem-rendition-origheads-ema-distil-short", 0),
                          ("stem-distil-short", 1), ("distil-short", 1)):
        experiment.run_variant(variant, seed=seed, **given)
    assert [t.name for t in trained] == ["stem-seed0", "stem-distil-short-seed0",
                                         "stem-rendition-origheads-ema-distil-short-seed0", "stem-seed1",
                                         "stem-distil-short-seed1", "distil-short-seed1"]
    stems = [t for t in trained if t.name.startswith("stem-seed")]
    assert all(t.data == "plain" and t.teachers == "t-plain" and t.init is None for t in stems)
    assert [(t.config.seed, t.config.epochs) for t in stems] == [(seed, experiment.STEM_EPOCHS) for seed in (0, 1)]
    branches = {t.name: t for t in trained[1:3]}
    assert {t.init for t in branches.values()} == {"model of stem-seed0"}
    invariant = branches["stem-rendition-origheads-ema-distil-short-seed0"]
    assert invariant.data == "varied" and invariant.config.one_rendition and invariant.config.ema_decay > 0
    assert trained[-1].init is None  # without the prefix, fresh weights


def test_a_stem_variant_prepares_the_plain_sources_and_their_teachers_for_its_stem(tmp_path, monkeypatch):
    import training.recipe_experiment as experiment

    prepared, taught = [], []
    monkeypatch.setattr(experiment, "prepare", lambda *, augment, **_: prepared.append(augment) or augment)
    monkeypatch.setattr(experiment, "recipe", lambda data, **_: data)
    monkeypatch.setattr(experiment, "teachers_of", lambda chosen: taught.append(chosen) or chosen)
    monkeypatch.setattr(experiment, "run_variant", lambda variant, *, sources, teachers, **_: {
        "4q val": {"valence_auc": float(sources[False] is False and teachers[False] is False)}})
    summary = experiment.recipe_experiment(shared=tmp_path, work=tmp_path, out=tmp_path / "out",
                                           variants=["stem-rendition-origheads-ema-distil-short"], seeds=1)
    assert prepared == [False, True] and taught == [False, True]
    assert summary["stem-rendition-origheads-ema-distil-short"]["4q val"]["valence_auc"] == [1.0, 0.0]


def test_the_aligned_variant_trains_the_plain_sources_with_the_alignment_term(tmp_path, monkeypatch):
    from types import SimpleNamespace

    import training.recipe_experiment as experiment

    trained = []
    monkeypatch.setattr(experiment, "train_music", lambda chosen, *, train_config, teachers, **_: trained.append(
        SimpleNamespace(data=chosen, config=train_config, teachers=teachers)))
    monkeypatch.setattr(experiment, "recipe", lambda data, **_: data)
    monkeypatch.setattr(experiment, "judge", lambda bundle, data: {})
    given = {"sources": {False: "plain", True: "varied"}, "teachers": {False: "t-plain", True: "t-varied"},
             "out": tmp_path}
    for variant in ("aligned-distil-short", "distil-short"):
        experiment.run_variant(variant, seed=0, **given)
    aligned, plain = trained
    assert (aligned.data, aligned.teachers) == ("plain", "t-plain")
    assert aligned.config.kind_alignment == experiment.KIND_ALIGNMENT > 0
    assert aligned.config.crop_frames == plain.config.crop_frames and not aligned.config.one_rendition
    assert plain.config.kind_alignment == 0


def test_the_key_and_chords_variants_read_their_front_ends(tmp_path, monkeypatch):
    import training.recipe_experiment as experiment

    read = []
    monkeypatch.setattr(experiment, "train_music", lambda *_, **__: None)
    monkeypatch.setattr(experiment, "recipe", lambda data, *, frontend: read.append(frontend) or data)
    monkeypatch.setattr(experiment, "judge", lambda bundle, data: {})
    given = {"sources": {False: "plain", True: "varied"}, "teachers": {False: None, True: None}, "out": tmp_path}
    for variant in ("key-distil-short", "chords-distil-short", "tags-distil-short", "distil-short"):
        experiment.run_variant(variant, seed=0, **given)
    assert read == [experiment.KEY_FRONTEND, experiment.CHORD_FRONTEND, experiment.PRETRAINED_FRONTEND,
                    experiment.DEFAULT_FRONTEND]
    assert experiment.CHORD_FRONTEND == "musicnn-msd-tags-chords"
