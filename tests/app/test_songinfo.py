"""Song context from tags, sidecars and the admin API, on audio and lyrics the project makes."""

import io
from pathlib import Path

import pytest
import soundfile as sf
from fastapi.testclient import TestClient
from mutagen.flac import FLAC
from mutagen.id3 import ID3, TIT2, TPE1, USLT
from mutagen.oggvorbis import OggVorbis
from mutagen.wave import WAVE

from app.songinfo import clean_lyrics, decode_lyrics, read_sidecar, read_tags
from models.text import MAX_LYRICS_CHARS
from tests.app.conftest import AUTH, add, song_model_for

LYRICS = "[00:01.00]Paper boats along the drain\n[00:04.50]we sail them out again"  # the project's own words


def encoded(wav: bytes, fmt: str) -> bytes:
    y, sr = sf.read(io.BytesIO(wav), dtype="float32")
    out = io.BytesIO()
    sf.write(out, y, sr, format=fmt)
    return out.getvalue()


def tagged(path: Path, wav: bytes, fmt: str, **tags: str) -> bytes:
    """``wav`` re-encoded as FLAC or OGG with Vorbis comments ``tags``, or as WAV with an ID3 block."""
    path.write_bytes(encoded(wav, fmt) if fmt != "WAV" else wav)
    if fmt == "WAV":
        audio = WAVE(path)
        audio.add_tags()
        assert isinstance(audio.tags, ID3)
        audio.tags.add(TIT2(encoding=3, text=tags["title"]))
        audio.tags.add(TPE1(encoding=3, text=tags["artist"]))
        audio.tags.add(USLT(encoding=3, lang="eng", desc="", text=tags["lyrics"]))
    else:
        audio = FLAC(path) if fmt == "FLAC" else OggVorbis(path)
        for key, value in tags.items():
            audio[key] = value
    audio.save()
    return path.read_bytes()


@pytest.mark.parametrize("fmt", ["FLAC", "OGG"])
def test_vorbis_comments_give_the_song_context(tmp_path: Path, wavs: list[bytes], fmt: str):
    data = tagged(tmp_path / f"a.{fmt.lower()}", wavs[0], fmt, title="Paper Boats", artist="The Drains",
                  album="Gutters", genre="Indie", date="2019-04-01", lyrics=LYRICS)
    info = read_tags(data, name="a")
    assert (info.title, info.artist, info.album, info.genre, info.year) == ("Paper Boats", "The Drains", "Gutters",
                                                                            "Indie", 2019)
    assert info.lyrics == "Paper boats along the drain\nwe sail them out again" and info.skipped == ()


def test_id3_in_a_wav_gives_title_artist_and_unsynced_lyrics(tmp_path: Path, wavs: list[bytes]):
    data = tagged(tmp_path / "a.wav", wavs[1], "WAV", title="Tin Roof", artist="Rain Choir", lyrics="drip drop")
    info = read_tags(data, name="a")
    assert (info.title, info.artist, info.lyrics) == ("Tin Roof", "Rain Choir", "drip drop")


def test_binary_junk_in_a_tag_is_left_out_with_the_reason(tmp_path: Path, wavs: list[bytes]):
    data = tagged(tmp_path / "a.flac", wavs[2], "FLAC", title="ok\x00\x01\x02junk", artist="Fine",
                  lyrics="x" * (MAX_LYRICS_CHARS + 1))
    info = read_tags(data, name="a")
    assert info.title == "" and info.artist == "Fine" and info.lyrics is None
    assert any(r.startswith("title") for r in info.skipped) and any(r.startswith("lyrics") for r in info.skipped)
    assert read_tags(b"not audio at all", name="b").title == ""  # untagged or unreadable: nothing, no error


def test_sidecar_lyrics_in_utf8_and_utf16_and_a_clear_skip_otherwise(tmp_path: Path):
    audio = tmp_path / "song.flac"
    (tmp_path / "song.lrc").write_text(LYRICS, encoding="utf-8")
    assert read_sidecar(audio) == ("Paper boats along the drain\nwe sail them out again", None)
    assert decode_lyrics("« Ça va » — 雨。".encode("utf-16"), name="x.txt") == ("« Ça va » — 雨。", None)
    lyrics, reason = decode_lyrics("café".encode("latin-1"), name="x.txt")
    assert lyrics is None and reason is not None and "UTF-8" in reason
    assert read_sidecar(tmp_path / "other.flac") == (None, None)
    assert clean_lyrics("[ar:Someone]\n[00:01.00]one\n\n\n\n[00:02]two") == "one\n\ntwo"


def test_an_upload_takes_its_song_context_from_its_tags_under_the_form_fields(client: TestClient, tmp_path: Path,
                                                                              wavs: list[bytes]):
    data = tagged(tmp_path / "a.flac", wavs[3], "FLAC", title="Tagged Title", artist="Tagged Artist",
                  album="An Album", genre="Folk", date="2001", lyrics=LYRICS)
    response = client.post("/v1/admin/tracks", headers=AUTH, files={"file": ("a.flac", data)},
                           data={"artist": "Form Artist"})
    assert response.status_code == 201, response.text
    track = response.json()["track"]
    assert (track["title"], track["artist"], track["album"], track["genre"], track["year"]) == (
        "Tagged Title", "Form Artist", "An Album", "Folk", 2001)
    assert track["has_lyrics"] and track["lyrics"].startswith("Paper boats")
    listed = client.get("/v1/tracks").json()["items"][0]
    assert listed["has_lyrics"] and listed["lyrics"] is None  # lists stay small


def test_an_upload_without_a_title_anywhere_is_refused_naming_it(client: TestClient, wavs: list[bytes]):
    response = client.post("/v1/admin/tracks", headers=AUTH, files={"file": ("a.wav", wavs[4])})
    assert response.status_code == 422 and "title" in response.json()["detail"]
    assert client.get("/v1/tracks").json()["total"] == 0


def test_the_admin_api_sets_replaces_and_removes_lyrics(client: TestClient, wavs: list[bytes]):
    track_id = add(client, wavs[5], "plain")["track"]["id"]
    assert client.get(f"/v1/tracks/{track_id}").json()["has_lyrics"] is False
    put = client.put(f"/v1/admin/tracks/{track_id}/lyrics", headers=AUTH, json={"lyrics": LYRICS})
    assert put.status_code == 200 and put.json()["lyrics"] == clean_lyrics(LYRICS)
    client.put(f"/v1/admin/tracks/{track_id}/lyrics", headers=AUTH, json={"lyrics": "second words"})
    assert client.get(f"/v1/tracks/{track_id}").json()["lyrics"] == "second words"
    for bad, status in (({"lyrics": "x" * (MAX_LYRICS_CHARS + 1)}, 422), ({"lyrics": "a\x00b"}, 422),
                        ({"words": "x"}, 422)):
        response = client.put(f"/v1/admin/tracks/{track_id}/lyrics", headers=AUTH, json=bad)
        assert response.status_code == status and "lyrics" in str(response.json()["detail"])
    assert client.get(f"/v1/tracks/{track_id}").json()["lyrics"] == "second words"  # nothing half-written
    client.put(f"/v1/admin/tracks/{track_id}/lyrics", headers=AUTH, json={"lyrics": "  "})
    assert client.get(f"/v1/tracks/{track_id}").json()["has_lyrics"] is False
    assert client.put("/v1/admin/tracks/999/lyrics", headers=AUTH, json={"lyrics": "x"}).status_code == 404
    assert client.put(f"/v1/admin/tracks/{track_id}/lyrics", json={"lyrics": "x"}).status_code == 401


def test_cli_ingest_reads_tags_and_sidecar_lyrics(tmp_path: Path, bundle_dir: Path, wavs: list[bytes], monkeypatch):
    from sqlalchemy import select
    from sqlalchemy.orm import Session
    from typer.testing import CliRunner

    from app.db import make_engine
    from app.settings import Settings
    from app.tables import Track
    from moodspace import cli

    folder = tmp_path / "music"
    folder.mkdir()
    tagged(folder / "one.flac", wavs[0], "FLAC", title="From Tags", artist="Tagger", genre="Jazz")
    (folder / "two.wav").write_bytes(wavs[1])
    (folder / "two.txt").write_text("words beside the file\n", encoding="utf-8")
    (folder / "three.wav").write_bytes(wavs[2])
    (folder / "three.lrc").write_bytes("caf\xe9".encode("latin-1"))
    monkeypatch.setenv("MOODSPACE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MOODSPACE_BUNDLE", str(bundle_dir))
    song = song_model_for(bundle_dir, tmp_path / "song.pt")
    monkeypatch.setenv("MOODSPACE_SONG_MODEL", str(tmp_path / "song.pt"))
    result = CliRunner().invoke(cli.cli, ["ingest", str(folder)])
    assert result.exit_code == 0 and "added 3" in result.output, result.output
    assert "three.wav: lyrics left out" in result.output and "UTF-8" in result.output
    with Session(make_engine(Settings().db_url)) as session:
        tracks = {t.title: t for t in session.scalars(select(Track))}
        fused_by = {t.title: [e.song_model for e in t.embeddings] for t in tracks.values()}
    assert set(tracks) == {"From Tags", "two", "three"}
    assert tracks["From Tags"].artist == "Tagger" and tracks["From Tags"].genre == "Jazz"
    assert tracks["two"].lyrics == "words beside the file" and tracks["three"].lyrics is None
    assert fused_by == {"From Tags": [None], "two": [song.version], "three": [None]}  # the lyrics read into it
