"""moodspace span-experiment on a tiny corpus: cuts of the pieces' own curves, span search against whole-track
retrieval; the cut and cover rules it rests on."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from models.bundle import save_bundle
from models.encoders import CrossModalModel
from models.manifest import Clip
from moodspace import cli
from tests.training.conftest import TINY_MODEL
from training.span_experiment import covers, cut, panel_curve, second_panel


def test_a_cut_is_the_stretch_of_the_curve_timed_from_zero():
    curve = np.array([[0.0, -1.0, 0.0], [10.0, 1.0, 0.5]])
    stretch = cut(curve, 2.0, 4.0, step=1.0)
    assert stretch[:, 0].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    np.testing.assert_allclose(stretch[:, 1], [-0.6, -0.4, -0.2, 0.0, 0.2])
    np.testing.assert_allclose(stretch[:, 2], [0.1, 0.15, 0.2, 0.25, 0.3])


def test_a_run_covers_a_cut_when_it_holds_half_of_it():
    assert covers(0.0, 10.0, 5.0, 10.0) and not covers(0.0, 10.0, 5.1, 10.0)
    assert covers(12.0, 30.0, 10.0, 20.0) and not covers(30.0, 40.0, 10.0, 20.0)


def test_span_experiment_reports_each_length_against_whole_track_retrieval(tiny_corpus: Path, tmp_path: Path):
    torch.manual_seed(0)
    bundle = save_bundle(CrossModalModel(TINY_MODEL).eval(), tmp_path / "tiny").path  # type: ignore[attr-defined]
    result = CliRunner().invoke(cli.cli, ["span-experiment", "--data", str(tiny_corpus),
                                          "--bundle", str(bundle), "--seconds", "2", "--seconds", "3.5",
                                          "--per-piece", "2", "--json", str(tmp_path / "spans.json"),
                                          "--workers", "1", "--panel", "1000000000000"])
    assert result.exit_code == 0, result.output
    assert "MRR whole-track" in result.output
    written = json.loads((tmp_path / "spans.json").read_text())
    rows, whole = written["lengths"], written["whole_curve"]
    assert whole["queries"] == 6 and 0 < whole["aligned_mrr"] <= 1
    assert whole["track_mrr"] <= whole["track_mrr_as_long"]  # fewer pieces to rank against: never a worse rank
    assert [r["seconds"] for r in rows] == [2.0, 3.5] and all(r["queries"] == 6 * 2 for r in rows)
    for row in rows:
        assert row["random_mrr"] == pytest.approx(np.mean(1 / np.arange(1, 7)))
        assert row["located_top1"] <= row["located_within"]  # a top span that covers the cut is the piece's best
        assert all(0 <= row[name] <= 1 for name in ("located_within", "chance_within", "span_mrr", "track_mrr",
                                                    "labels_top1", "panel_within"))
        # a panel of 10^12 annotators labels as the labels do: its reader is the labels' reader
        assert row["panel_top1"] == row["labels_top1"]
    assert "a second panel" in result.output


def _clip(std: float) -> Clip:
    t = np.arange(200.0)
    curve = np.column_stack([t, np.full(200, 0.5), np.full(200, 0.99)])
    return Clip(id="c", audio="c.wav", curve=curve, curve_std=np.column_stack([t, np.full(200, std),
                                                                                np.full(200, 2 * std)]))


def test_a_second_panel_moves_each_point_by_its_spread_over_the_root_of_the_panel():
    rng = np.random.default_rng(0)
    draws = np.stack([second_panel(_clip(0.3), 9, rng).curve for _ in range(200)])  # type: ignore[misc]
    moved = draws[:, :, 1] - 0.5
    assert moved.std() == pytest.approx(0.3 / 3, rel=0.05) and abs(moved.mean()) < 0.005
    assert abs(np.corrcoef(moved[:, :-1].ravel(), moved[:, 1:].ravel())[0, 1]) < 0.05  # point by point
    assert draws[:, :, 2].max() <= 1.0  # clipped to the plane
    assert (draws[:, :, 0] == np.arange(200.0)).all()


def test_a_second_panel_needs_the_annotators_spread():
    with pytest.raises(ValueError, match="curve_std"):
        second_panel(Clip(id="c", audio="c.wav", curve=np.zeros((3, 3))), 30, np.random.default_rng(0))


def test_a_panels_change_is_read_at_the_pieces_frames_counted_from_its_first_label():
    clip = Clip(id="c", audio="c.wav", curve=np.array([[1.0, 0.0, 0.0], [11.0, 0.0, 0.0]]))
    noisy = Clip(id="c", audio="c.wav", curve=np.array([[1.0, 0.1, 0.0], [11.0, 0.6, -0.5]]))
    curve = np.column_stack([np.array([0.5, 2.5, 4.5]), np.full(3, 0.2), np.full(3, -0.1)])  # frames of 2 s
    moved = panel_curve(clip, curve, noisy)
    np.testing.assert_allclose(moved[:, 0], curve[:, 0])
    np.testing.assert_allclose(moved[:, 1], 0.2 + 0.1 + 0.05 * np.array([0.5, 2.5, 4.5]))  # at 1.5, 3.5, 5.5 s
    np.testing.assert_allclose(moved[:, 2], -0.1 - 0.05 * np.array([0.5, 2.5, 4.5]))
    assert curve[0, 1] == 0.2  # the piece's own curve is left as it was
