import json
from pathlib import Path

import numpy as np
import pytest

from models.errors import ManifestError
from models.manifest import Clip, audio_path, read_manifest, write_manifest


def _clip(audio: str, **kwargs) -> Clip:
    curve = np.array([[0.0, 0.1, -0.2], [0.5, 0.2, -0.3]])
    return Clip(id=kwargs.pop("id", "a"), audio=audio, curve=curve, **kwargs)


def test_round_trip_keeps_every_field_and_relativises_audio(tmp_path: Path):
    audio = tmp_path / "media" / "a.flac"
    audio.parent.mkdir()
    audio.write_bytes(b"x")
    clip = _clip(str(audio), curve_std=np.array([[0.0, 0.1, 0.2], [0.5, 0.1, 0.2]]), tags=("sad",),
                 title="T", artist="A", split="test", label_type="static", extra={"synth": {"seed": 3}})
    manifest = write_manifest(tmp_path / "sets" / "m.jsonl", [clip])
    (back,) = read_manifest(manifest, check_audio=True)
    assert json.loads(manifest.read_text())["audio"] == "../media/a.flac"
    assert audio_path(manifest, back) == audio.resolve()
    np.testing.assert_allclose(back.curve, clip.curve)
    np.testing.assert_allclose(back.curve_std, clip.curve_std)
    assert (back.tags, back.title, back.artist, back.split, back.label_type) == (("sad",), "T", "A", "test", "static")
    assert back.extra == {"synth": {"seed": 3}}


BAD_LINES = {
    "not json": ("{nope", "not valid JSON"),
    "missing curve": ('{"id": "x", "audio": "a.wav"}', "missing required key 'curve'"),
    "empty curve": ('{"id": "x", "audio": "a.wav", "curve": []}', "empty"),
    "nan": ('{"id": "x", "audio": "a.wav", "curve": [[0, NaN, 0]]}', "NaN"),
    "out of range": ('{"id": "x", "audio": "a.wav", "curve": [[0, 1.5, 0]]}', "[-1, 1]"),
    "time goes back": ('{"id": "x", "audio": "a.wav", "curve": [[1, 0, 0], [0, 0, 0]]}', "non-decreasing"),
    "bad split": ('{"id": "x", "audio": "a.wav", "curve": [[0, 0, 0]], "split": "dev"}', "split"),
    "negative std": ('{"id": "x", "audio": "a.wav", "curve": [[0, 0, 0]], "curve_std": [[0, -1, 0]]}', "std"),
}


@pytest.mark.parametrize("case", sorted(BAD_LINES))
def test_bad_lines_name_file_line_and_problem(tmp_path: Path, case: str):
    line, message = BAD_LINES[case]
    path = tmp_path / "m.jsonl"
    path.write_text('{"id": "ok", "audio": "a.wav", "curve": [[0, 0, 0]]}\n' + line + "\n")
    with pytest.raises(ManifestError) as error:
        read_manifest(path)
    assert f"{path}:2" in str(error.value)
    assert message in str(error.value)


def test_duplicate_ids_and_missing_audio_are_rejected(tmp_path: Path):
    path = write_manifest(tmp_path / "m.jsonl", [_clip("a.wav"), _clip("b.wav", id="b")])
    with pytest.raises(ManifestError, match=r"clip 'a': audio file .*a.wav not found"):
        read_manifest(path, check_audio=True)
    path = write_manifest(tmp_path / "d.jsonl", [_clip("a.wav"), _clip("b.wav")])
    with pytest.raises(ManifestError, match="duplicate clip id 'a'"):
        read_manifest(path)


def test_missing_or_empty_manifest(tmp_path: Path):
    with pytest.raises(ManifestError, match="not found"):
        read_manifest(tmp_path / "none.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(ManifestError, match="no clips"):
        read_manifest(tmp_path / "empty.jsonl")


def test_group_is_the_artist_or_the_clip_itself():
    assert _clip("a.wav", artist="Nina").group == "Nina"
    assert [_clip("a.wav", id=i).group for i in ("x", "y")] == ["x", "y"]  # unknown artists never share a fold
