"""4Q and MIREX readers, categorical labels in manifests, and the probe, on folders the tests write."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from models.errors import DatasetLayoutError, ManifestError
from models.manifest import clip_from_json, read_manifest, write_manifest
from training.corpus.render import import_dataset
from training.datasets import fourq, mirex_mm


def _ogg(path: Path, seed: int, seconds: float = 2.0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sf.write(path, 0.1 * rng.standard_normal(int(seconds * 16000)), 16000, format="OGG", subtype="VORBIS")


def _fourq(root: Path, rows: list[tuple[str, str, str]]) -> Path:
    lines = ["Song,Artist,Title,Quadrant,MoodsStr,GenresStr"]
    for k, (song, artist, quadrant) in enumerate(rows):
        lines.append(f"{song},{artist},Title {k},{quadrant},Happy; Nervous/Jittery,Pop/Rock; Jazz")
        _ogg(root / "audio" / f"{song}.ogg", k)
    (root / "metadata.csv").write_text("\n".join(lines) + "\n")
    return root


ARTISTS = [f"Artist {k}" for k in range(12)]


def test_4q_reads_quadrants_as_labels_tags_and_splits_by_artist(tmp_path: Path):
    rows = [(f"MT{k:04d}", ARTISTS[k % 12], f"Q{k % 4 + 1}") for k in range(36)]
    clips = fourq.read(_fourq(tmp_path / "4q", rows))
    assert len(clips) == 36 and clips[0].curve is None and clips[0].labels == {"quadrant": "Q1"}
    assert clips[0].tags == ("happy", "nervous/jittery") and clips[0].extra["genres"] == ["pop/rock", "jazz"]
    split_of_artist: dict[str, set[str]] = {}
    for clip in clips:
        split_of_artist.setdefault(clip.artist, set()).add(clip.split)
    assert all(len(s) == 1 for s in split_of_artist.values())  # no artist in two splits
    assert {c.split for c in clips} == {"train", "val", "test"}
    manifest = import_dataset(dataset="4q", root=tmp_path / "4q", out=tmp_path / "4q.jsonl")
    again = read_manifest(manifest, check_audio=True)
    assert [c.labels for c in again] == [c.labels for c in clips] and again[0].curve is None


def test_4q_names_the_row_of_a_label_outside_the_vocabulary(tmp_path: Path):
    root = _fourq(tmp_path / "4q", [("MT1", "A", "Q1"), ("MT2", "B", "Q5")])
    with pytest.raises(DatasetLayoutError, match=r"metadata.csv, row 3: quadrant 'Q5' is not one of Q1, Q2, Q3, Q4"):
        fourq.read(root)
    (root / "audio" / "MT2.ogg").unlink()
    (root / "metadata.csv").write_text("Song,Artist\nMT1,A\n")
    with pytest.raises(DatasetLayoutError, match="missing column"):
        fourq.read(root)


def test_mirex_reads_clusters_and_references_lyrics_and_midi(tmp_path: Path):
    root = tmp_path / "mirex"
    lines = ["song,artist,title,album,year,cluster,category,has_lyrics,has_midi"]
    for k in range(10):
        lines.append(f"{k:03d},Band {k % 5},Song {k},Album,1999,{k % 5 + 1},Wistful,{k % 2},0")
        _ogg(root / "audio" / f"{k:03d}.ogg", k)
        if k % 2:
            (root / "lyrics").mkdir(parents=True, exist_ok=True)
            (root / "lyrics" / f"{k:03d}.txt").write_text("words the test wrote\n")
    (root / "metadata.csv").write_text("\n".join(lines) + "\n")
    clips = mirex_mm.read(root)
    assert [c.labels["mirex_cluster"] for c in clips[:5]] == ["1", "2", "3", "4", "5"]
    assert "lyrics" in clips[1].extra and "lyrics" not in clips[0].extra and clips[0].tags == ("wistful",)
    lines[3] = lines[3].replace(",3,Wistful", ",7,Wistful")
    (root / "metadata.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetLayoutError, match="row 4: mirex cluster '7' is not one of 1, 2, 3, 4, 5"):
        mirex_mm.read(root)


@pytest.mark.parametrize(("record", "message"), [
    ({"id": "a", "audio": "x.wav"}, "missing required key 'curve' (or categorical 'labels')"),
    ({"id": "a", "audio": "x.wav", "labels": {"colour": "red"}}, "unknown label taxonomy 'colour'"),
    ({"id": "a", "audio": "x.wav", "labels": {"quadrant": "Q9"}}, "quadrant label 'Q9' is not one of"),
    ({"id": "a", "audio": "x.wav", "labels": ["Q1"]}, "labels must be an object"),
])
def test_manifest_labels_are_checked_against_their_taxonomy(record: dict, message: str):
    with pytest.raises(ManifestError) as error:
        clip_from_json(record, where="m.jsonl line 1")
    assert message in str(error.value) and str(error.value).startswith("m.jsonl line 1")


def test_a_clip_may_carry_both_a_curve_and_labels(tmp_path: Path):
    clip = clip_from_json({"id": "a", "audio": "x.wav", "curve": [[0, 0.5, 0.5]], "labels": {"quadrant": "Q1"}})
    write_manifest(tmp_path / "m.jsonl", [clip])
    (again,) = read_manifest(tmp_path / "m.jsonl")
    assert again.labels == {"quadrant": "Q1"} and again.curve is not None


def test_the_probe_learns_separable_quadrants_and_lists_a_corrupt_clip(tmp_path: Path):
    from training.probe import probe

    # Quadrant k is a tone at its own pitch: a linear probe on log-mel means separates them.
    clips, folder = [], tmp_path / "set"
    for k in range(48):
        quadrant = k % 4
        path = folder / "audio" / f"{k}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        t = np.arange(32000) / 16000
        noise = np.random.default_rng(k).standard_normal(t.size)
        sf.write(path, 0.3 * np.sin(2 * np.pi * 220 * 2 ** quadrant * t) + 0.01 * noise, 16000)
        split = "train" if k < 32 else "val" if k < 40 else "test"
        clips.append(clip_from_json({"id": f"c{k}", "audio": f"audio/{k}.wav", "split": split,
                                     "labels": {"quadrant": f"Q{quadrant + 1}"}, "label_type": "categorical"}))
    (folder / "audio" / "47.wav").write_bytes(b"RIFF not really audio")
    manifest = write_manifest(folder / "manifest.jsonl", clips)
    result = probe(manifest, frontend="logmel", workers=1)
    assert result.n_train == 32 and [s.id for s in result.skipped] == ["c47"]
    assert "cannot decode" in result.skipped[0].reason
    val = result.metrics["val"]
    # chance: accuracy 0.25, AUC 0.5
    assert val.n == 8 and val.accuracy >= 0.75 and val.valence_auc >= 0.9 and val.arousal_auc >= 0.9
    assert result.metrics["test"].n == 7


def test_eval_real_reads_tracks_and_the_head(tmp_path: Path):
    import torch
    from typer.testing import CliRunner

    from models.bundle import save_bundle
    from models.config import EncoderConfig, ModelConfig
    from models.encoders import CrossModalModel
    from moodspace import cli

    torch.manual_seed(0)
    config = ModelConfig(music=EncoderConfig(kind="bigru", hidden=8, layers=(16,)),
                         emotion=EncoderConfig(kind="bigru", hidden=8, layers=(16,)), d=4, taxonomies=("quadrant",))
    save_bundle(CrossModalModel(config).eval(), tmp_path / "bundle")
    clips = []
    for k in range(8):
        _ogg(tmp_path / "set" / "audio" / f"{k}.ogg", k, seconds=3.0)
        clips.append(clip_from_json({"id": f"c{k}", "audio": f"audio/{k}.ogg", "split": "val",
                                     "labels": {"quadrant": f"Q{k % 4 + 1}"}}))
    manifest = write_manifest(tmp_path / "set" / "manifest.jsonl", clips)
    result = CliRunner().invoke(cli.cli, ["eval-real", "--bundle", str(tmp_path / "bundle"), "--data", str(manifest),
                                          "--json", str(tmp_path / "out.json")])
    assert result.exit_code == 0, result.output
    assert "manifest.jsonl val (8): valence AUC" in result.output and "head acc." in result.output
    (row,) = __import__("json").loads((tmp_path / "out.json").read_text())
    assert row["n"] == 8 and 0 <= row["valence_auc"] <= 1 and row["head"]["taxonomy"] == "quadrant"
