import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from models.bundle import load_bundle
from models.errors import ManifestError
from moodspace import cli

runner = CliRunner()
TINY = ["--d", "4", "--epochs", "2", "--batch-size", "8", "--crop-frames", "3", "--workers", "1"]


def _invoke(*args: str):
    result = runner.invoke(cli.cli, [str(a) for a in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return result


def test_train_then_eval_writes_a_bundle_and_metrics(tiny_corpus: Path, tmp_path: Path):
    _invoke("train", "--data", tiny_corpus, "--out", tmp_path / "bundle", *TINY)
    bundle = load_bundle(tmp_path / "bundle")
    assert bundle.metrics["n_train"] == 21 and bundle.metrics["n_val"] == 3
    assert (tmp_path / "bundle" / "training.png").stat().st_size > 1000
    assert (tmp_path / "bundle" / "va_validation.png").stat().st_size > 1000
    result = _invoke("eval", "--bundle", tmp_path / "bundle", "--data", tiny_corpus, "--json", tmp_path / "m.json",
                     "--workers", "1")
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["n_test"] == 6 and set(metrics["m2e"]) == {"mrr", "ar", "top5_cosine", "mrr_interval"}
    assert 1 / 6 <= metrics["e2m"]["mrr"] <= 1 and 1 <= metrics["m2e"]["ar"] <= 6
    low, high = metrics["e2m"]["mrr_interval"]
    assert low <= metrics["e2m"]["mrr"] <= high
    assert "M2E: MRR" in result.output and "over the queries" in result.output


def test_experiment_writes_tables_and_sweep_plot(tiny_corpus: Path, tmp_path: Path):
    out = tmp_path / "exp"
    _invoke("experiment", "--train", tiny_corpus, "--test", tiny_corpus, "--out", out, "--seeds", "2",
            "--sweep-lam", "0,1", *TINY)
    results = json.loads((out / "results.json").read_text())
    assert set(results) == {"composite", "cca_only", "kl_only", "reg_mlp", "reg_bigru"}
    for method in results.values():
        assert method["n_test"] == 6 and method["seeds"] == 2
        assert {"mrr", "mrr_std", "ar", "ar_std"} <= set(method["m2e"]) and method["e2m"]["ar"] >= 1
    assert "| composite |" in (out / "results.md").read_text()
    assert (out / "sweep_lam.png").stat().st_size > 1000
    assert all((out / f"va_{method}.png").stat().st_size > 1000 for method in results)
    assert set(json.loads((out / "sweep_lam.json").read_text())) == {"0.0", "1.0"}


def _corrupt(manifest: Path, tmp_path: Path, change) -> Path:
    lines = [json.loads(line) for line in manifest.read_text().splitlines()]
    change(lines)
    out = manifest.parent / f"bad-{tmp_path.name}.jsonl"
    out.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return out


def test_bad_items_fail_before_training_and_name_the_item(tiny_corpus: Path, tmp_path: Path):
    def out_of_range(lines):
        lines[5]["curve"][2][1] = 1.7

    bad = _corrupt(tiny_corpus, tmp_path, out_of_range)
    with pytest.raises(ManifestError, match="clip 'synth-00005' curve: valence and arousal must lie on"):
        _invoke("train", "--data", bad, "--out", tmp_path / "b", *TINY)

    def missing_audio(lines):
        lines[7]["audio"] = "audio/nowhere.flac"

    bad = _corrupt(tiny_corpus, tmp_path, missing_audio)
    with pytest.raises(ManifestError, match="clip 'synth-00007': audio file .*nowhere.flac not found"):
        _invoke("train", "--data", bad, "--out", tmp_path / "b", *TINY)
    assert not (tmp_path / "b").exists()


def test_undecodable_audio_is_skipped_and_listed_in_the_report(tiny_corpus: Path, tmp_path: Path):
    broken = tiny_corpus.parent / "audio" / f"broken-{tmp_path.name}.flac"
    broken.write_bytes(b"fLaC" + bytes(100))

    def point_at_broken(lines):
        lines[4]["audio"] = f"audio/{broken.name}"

    bad = _corrupt(tiny_corpus, tmp_path, point_at_broken)
    result = _invoke("train", "--data", bad, "--out", tmp_path / "b", *TINY)
    assert "skipped synth-00004:" in result.output and "cannot decode" in result.output
    metrics = load_bundle(tmp_path / "b").metrics
    assert [s["id"] for s in metrics["skipped"]] == ["synth-00004"] and metrics["n_train"] == 20


def test_train_on_several_manifests_with_a_validation_manifest(tiny_corpus: Path, tmp_path: Path):
    from training.corpus.generate import synth_corpus

    other = synth_corpus(n=10, seconds=4, seed=9, out=tmp_path / "other", workers=1, progress=False)
    _invoke("train", "--data", tiny_corpus, "--data", other, "--val", other, "--out", tmp_path / "b", *TINY)
    metrics = load_bundle(tmp_path / "b").metrics
    assert metrics["n_train"] == 21 + 7  # both manifests' train clips
    assert metrics["n_val"] == 1  # only the validation manifest's val clips
    assert metrics["val_data"] == [str(other)]
