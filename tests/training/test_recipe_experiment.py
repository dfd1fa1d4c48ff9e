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

