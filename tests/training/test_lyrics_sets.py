"""Lyrics and context set readers, on files the tests write (lyrics the project makes up)."""

import csv
from pathlib import Path

import pytest

from models.errors import DatasetLayoutError
from models.text import MAX_LYRICS_CHARS
from training.datasets.lyrics import clean_genius, read_deezer, read_moodylyrics4q, read_muse

MOODS = ("happy", "angry", "sad", "relaxed")


def _csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path.parent


def _moody(tmp_path: Path, rows: list[list[str]]) -> Path:
    return _csv(tmp_path / "moody" / "lyrics.csv", ["id", "artist", "title", "mood", "language", "lyrics"], rows)


def test_moodylyrics_reads_moods_as_quadrants_cleans_genius_pages_and_splits_by_artist(tmp_path: Path):
    rows = [[f"ML{k}", f"Artist {k % 10}", f"Song {k}", MOODS[k % 4], "en",
             f"Song {k} Lyrics[Verse 1]\nsunlight on the water {k}\n\n[Chorus]\nwe dance all night"]
            for k in range(40)]
    data = read_moodylyrics4q(_moody(tmp_path, rows))
    assert [r.quadrant for r in data.rows[:4]] == ["Q1", "Q2", "Q3", "Q4"]
    assert data.rows[0].text == "sunlight on the water 0\n\nwe dance all night"
    splits: dict[str, set[str]] = {}
    for row in data.rows:
        splits.setdefault(row.artist, set()).add(row.split)
    assert all(len(s) == 1 for s in splits.values()) and {r.split for r in data.rows} == {"train", "val", "test"}


def test_a_scraping_accident_is_skipped_with_its_reason_and_a_bad_mood_names_the_row(tmp_path: Path):
    rows = [["1", "A", "T", "happy", "en", "la " * MAX_LYRICS_CHARS], ["2", "B", "U", "sad", "en", "[Intro]"],
            ["3", "C", "V", "sad", "en", "rain again"]]
    data = read_moodylyrics4q(_moody(tmp_path, rows))
    assert [r.text for r in data.rows] == ["rain again"]
    assert data.skipped == {f"lyrics over {MAX_LYRICS_CHARS} characters": 1, "no lyrics": 1}
    with pytest.raises(DatasetLayoutError, match=r"row 2: mood 'bored'"):
        read_moodylyrics4q(_moody(tmp_path / "bad", [["1", "A", "T", "bored", "en", "words"]]))


def test_muse_maps_tag_ratings_to_minus_one_one_and_a_bad_rating_names_the_row(tmp_path: Path):
    header = ["artist", "title", "genre", "valence_tags", "arousal_tags", "dominance_tags",
              "number_of_emotion_tags", "seeds", "lyrics"]
    data = read_muse(_csv(tmp_path / "muse" / "lyrics.csv", header,
                          [["A", "T", "pop", "9", "1", "5", "3", "['happy']", "a bright morning"]]))
    assert data.rows[0].va == (1.0, -1.0)
    with pytest.raises(DatasetLayoutError, match="row 2: non-numeric valence_tags/arousal_tags"):
        read_muse(_csv(tmp_path / "bad" / "lyrics.csv", header, [["A", "T", "", "high", "1", "", "", "", "words"]]))


def test_deezer_keeps_its_own_split_and_reads_title_and_artist_as_context(tmp_path: Path):
    header = ["dzr_sng_id", "MSD_sng_id", "MSD_track_id", "valence", "arousal", "artist_name", "track_name",
              "deezer_split"]
    data = read_deezer(_csv(tmp_path / "dz" / "songs.csv", header,
                            [["1", "s", "t", "0.5", "-1.2", "The Band", "Summer Song", "validation"]]))
    assert (data.rows[0].text, data.rows[0].split, data.rows[0].va) == ("Summer Song by The Band", "val", (0.5, -1.2))
    with pytest.raises(DatasetLayoutError, match="deezer_split 'dev'"):
        read_deezer(_csv(tmp_path / "bad" / "songs.csv", header, [["1", "s", "t", "0", "0", "A", "T", "dev"]]))


def test_clean_genius_removes_the_page_header_and_section_markers_only():
    assert clean_genius("Title Lyrics[Verse]\none [x] two") == "one  two"
    assert clean_genius("I wrote these Lyrics\nfor you") == "I wrote these Lyrics\nfor you"
