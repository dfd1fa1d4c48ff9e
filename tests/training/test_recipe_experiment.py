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
