from pathlib import Path

import pytest
from typer.testing import CliRunner

from models.manifest import read_manifest
from moodspace import cli

runner = CliRunner()


def test_corpus_synth_writes_a_manifest(tmp_path: Path):
    result = runner.invoke(cli.cli, ["corpus", "synth", "--n", "2", "--seconds", "2", "--out", str(tmp_path / "c"),
                                     "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert len(read_manifest(tmp_path / "c" / "manifest.jsonl", check_audio=True)) == 2


def test_domain_errors_exit_2_with_the_message(tmp_path: Path, monkeypatch, capsys):
    (tmp_path / "c").mkdir()
    monkeypatch.setattr("sys.argv", ["moodspace", "corpus", "synth", "--n", "2", "--out", str(tmp_path / "c")])
    with pytest.raises(SystemExit) as stop:
        cli.main()
    assert stop.value.code == 2
    assert "already exists" in capsys.readouterr().err


def test_render_rejects_an_unknown_dataset(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", ["moodspace", "corpus", "render", "--dataset", "deam", "--root", str(tmp_path),
                                     "--out", str(tmp_path / "o")])
    with pytest.raises(SystemExit) as stop:
        cli.main()
    assert stop.value.code == 2
    assert "'deam' is not one of 'vgmidi', 'emopia'" in capsys.readouterr().err
