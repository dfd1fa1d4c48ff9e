import pytest

from models.atomic import atomic_directory, atomic_file
from models.errors import OutputExistsError


def test_atomic_file_replaces_the_target_only_on_success(tmp_path):
    target = tmp_path / "sub" / "pointer.json"
    with atomic_file(target, mode="w", fsync=True) as out:
        out.write("first")
    assert target.read_text() == "first"
    with pytest.raises(RuntimeError), atomic_file(target, mode="w") as out:
        out.write("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "first"
    assert [p.name for p in target.parent.iterdir()] == ["pointer.json"]  # no temporary left behind


def test_atomic_directory_refuses_or_replaces_an_existing_output(tmp_path):
    out = tmp_path / "bundle"
    with atomic_directory(out) as folder:
        (folder / "a").write_text("1")
    with pytest.raises(OutputExistsError):
        atomic_directory(out).__enter__()
    with pytest.raises(ValueError), atomic_directory(out, overwrite=True) as folder:
        (folder / "b").write_text("2")
        raise ValueError("failed build")
    assert sorted(p.name for p in out.iterdir()) == ["a"]
    with atomic_directory(out, overwrite=True) as folder:
        (folder / "b").write_text("2")
    assert sorted(p.name for p in out.iterdir()) == ["b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]
