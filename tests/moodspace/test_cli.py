"""The top-level command: one app over the service and training commands, one-line errors, lazy sub-apps."""

import subprocess
import sys
from pathlib import Path

import pytest

from moodspace import cli


def test_every_command_of_both_sub_apps_is_listed():
    names = set(cli.Commands(name="moodspace").list_commands(None))  # type: ignore[arg-type]
    assert {"serve", "ingest", "reindex", "corpus", "train", "eval", "experiment", "train-text", "eval-text",
            "retrain-default"} <= names


def test_the_service_starts_without_importing_training():
    # A fresh interpreter: resolve `serve` through the top-level command and build the app, as `moodspace serve`
    # does, then list which of the project's packages were imported.
    code = """
import sys
from moodspace import cli
group = cli.typer.main.get_command(cli.cli)
assert group.get_command(None, "serve") is not None
from app.main import create_app
create_app()
print(sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0] in ('app', 'models', 'training')}))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "['app', 'models']", result.stdout + result.stderr


@pytest.mark.parametrize(("argv", "message"), [
    (["train", "--data", "{manifest}", "--out", "o", "--frontend", "mfcc"],
     "'mfcc' is not one of 'logmel', 'musicnn-msd', 'musicnn-msd-pool'"),
    (["train", "--data", "{manifest}", "--out", "o", "--music-encoder", "lstm"], "'lstm' is not one of 'bigru', 'mlp'"),
    (["train", "--data", "missing.jsonl", "--out", "o"], "'missing.jsonl' does not exist"),
    (["eval", "--bundle", "{folder}", "--data", "{manifest}"], "not a model bundle (config.json missing)"),
    (["eval", "--bundle", "{folder}", "--data", "{manifest}", "--split", "dev"], "'dev' is not one of"),
    (["corpus", "import", "--dataset", "deam", "--root", "missing", "--out", "o.jsonl"], "'missing' does not exist"),
    (["serve", "--log-level", "loud"], "'loud' is not one of"),
    (["experiment", "--train", "{manifest}", "--test", "{manifest}", "--out", "o", "--sweep-lam", "a,b"],
     "give numbers separated by commas"),
    (["recipe-experiment", "--out", "o", "--variant", "bigger"], "choose from plain, distil, augment, augment-distil"),
    (["soup-experiment", "--runs", "{folder}", "--out", "o", "--a", "bigger"], "choose from plain, distil, augment"),
    (["soup-experiment", "--runs", "{folder}", "--out", "o", "--alpha", "1.5"],
     "Invalid value for '--alpha': Input should be less than or equal to 1"),
    (["soup-experiment", "--runs", "{folder}", "--out", "o"],
     "distil-short-seed0: not a model bundle (config.json missing)"),
    (["retrain-default", "--soup-alpha", "1.5"],
     "Invalid value for '--soup-alpha': Input should be less than or equal to 1"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, monkeypatch, capsys, argv: list[str], message: str):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("")
    monkeypatch.chdir(tmp_path)
    args = [a.format(manifest=manifest, folder=tmp_path) for a in argv]
    with pytest.raises(SystemExit) as stop:
        cli.main(args)
    err = capsys.readouterr().err
    assert stop.value.code == 2
    assert message in err and err.count("\n") == 1 and err.startswith("error: "), err
