import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from typer.testing import CliRunner

from models.text import shipped_version
from moodspace import cli
from tests.app.servers import start_server
from training.corpus.generate import synth_corpus

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, bundle_dir: Path, monkeypatch) -> dict[str, str]:
    values = {"MOODSPACE_DATA_DIR": str(tmp_path / "data"), "MOODSPACE_BUNDLE": str(bundle_dir)}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


def test_ingest_is_idempotent_and_indexes(tmp_path: Path, env):
    manifest = synth_corpus(n=4, seconds=2, seed=3, out=tmp_path / "corpus", workers=1, progress=False)
    first = runner.invoke(cli.cli, ["ingest", str(manifest)])
    assert first.exit_code == 0, first.output
    assert "added 4, already present 0, failed 0" in first.output and "index of 4 tracks built" in first.output
    assert f"data folder: {Path(env['MOODSPACE_DATA_DIR']).resolve()}" in first.output
    second = runner.invoke(cli.cli, ["ingest", str(tmp_path / "corpus" / "audio")])
    assert second.exit_code == 0 and "added 0, already present 4, failed 0" in second.output
    again = runner.invoke(cli.cli, ["reindex"])
    assert again.exit_code == 0 and "reindex succeeded" in again.output


def test_a_relative_data_folder_is_resolved_once_where_the_command_starts(tmp_path: Path, env, monkeypatch):
    from app.settings import Settings

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MOODSPACE_DATA_DIR", "here")
    settings = Settings()
    monkeypatch.chdir("/")
    assert settings.data_dir == tmp_path / "here" and settings.db_url == f"sqlite:///{tmp_path / 'here'}/moodspace.db"
    assert settings.index_dir == tmp_path / "here" / "indexes"


def test_a_running_service_swaps_to_an_index_the_command_line_built(tmp_path: Path, env):
    from fastapi.testclient import TestClient

    from app.main import create_app
    from app.settings import Settings

    first = synth_corpus(n=2, seconds=2, seed=3, out=tmp_path / "one", workers=1, progress=False)
    second = synth_corpus(n=3, seconds=2, seed=4, out=tmp_path / "two", workers=1, progress=False)
    assert runner.invoke(cli.cli, ["ingest", str(first)]).exit_code == 0
    query = {"point": {"valence": 0.0, "arousal": 0.0}, "k": 10}
    with TestClient(create_app(Settings())) as client:
        assert len(client.post("/v1/emotion-to-music", json=query).json()["results"]) == 2
        added = runner.invoke(cli.cli, ["ingest", str(second)])  # another process, as far as the service knows
        assert added.exit_code == 0 and "index of 5 tracks built" in added.output
        deadline = time.monotonic() + 3.0
        while len(client.post("/v1/emotion-to-music", json=query).json()["results"]) != 5:
            assert time.monotonic() < deadline, "the service kept serving the old index"
            time.sleep(0.1)


def test_ingest_reports_bad_files_and_keeps_going(tmp_path: Path, env):
    folder = tmp_path / "in"
    synth_corpus(n=2, seconds=2, seed=3, out=folder, workers=1, progress=False)
    (folder / "audio" / "broken.wav").write_bytes(b"RIFF....WAVE")
    result = runner.invoke(cli.cli, ["ingest", str(folder / "audio"), "--no-reindex"])
    assert result.exit_code == 1
    assert "skipped" in result.output and "broken.wav" in result.output and "added 2" in result.output


def test_serve_answers_over_real_http(env):
    process, url = start_server(env, timeout_s=30)
    try:
        response = httpx.post(f"{url}/v1/emotion-to-music", json={"emotion": "calm"})
        assert response.status_code == 200 and response.json()["results"] == []
    finally:
        process.terminate()
        process.wait(10)


def test_ingest_with_a_text_model_never_loads_the_sentence_encoder(tmp_path: Path, story_bundle_dir: Path,
                                                                     monkeypatch):
    """Ingest and reindex never read text: loading MiniLM there cost seconds of start-up for nothing."""
    from app import services

    loads: list[str] = []
    monkeypatch.setattr(services, "sentence_encoder",
                        lambda: loads.append("loaded") or SimpleNamespace(keep_recent=lambda size: None,
                                                                          version=shipped_version()))
    monkeypatch.setenv("MOODSPACE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MOODSPACE_BUNDLE", str(story_bundle_dir))
    manifest = synth_corpus(n=2, seconds=2, seed=5, out=tmp_path / "corpus", workers=1, progress=False)
    for command in (["ingest", str(manifest)], ["reindex"]):
        result = runner.invoke(cli.cli, command)
        assert result.exit_code == 0, result.output
    assert loads == []
    services.Services.start(services.Settings(), text=True).close()  # the service itself does load it
    assert loads == ["loaded"]
