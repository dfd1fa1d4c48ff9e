"""Lyrics and song-context sets: rows of text with an emotion label, no audio.

- MoodyLyrics4Q (Cano & Morisio 2017): ``ROOT/lyrics.csv`` (id, artist, title, mood, language, lyrics); mood
  happy / angry / sad / relaxed is the Russell quadrant Q1 / Q2 / Q3 / Q4. Lyrics carry Genius page headers
  ("Title Lyrics[Verse 1]"), removed here with the section markers.
- MuSe lyrics (Akiki & Burghardt 2021): ``ROOT/lyrics.csv`` (artist, title, genre, valence_tags, arousal_tags,
  dominance_tags, number_of_emotion_tags, seeds, lyrics); valence and arousal from Last.fm tags on about 0-9,
  mapped to [-1, 1] as the Warriner norms are.
- Deezer mood detection set (Delbouys et al. 2018): ``ROOT/songs.csv`` (..., valence, arousal, artist_name,
  track_name, deezer_split); valence and arousal are standardised scores, kept as they are; the text is the song's
  context (title and artist), and the set's own train / validation / test split is kept.

MoodyLyrics4Q and MuSe are split by artist (``split_by_artist``). Rows whose lyrics are empty after cleaning or
longer than the catalogue's limit (``MAX_LYRICS_CHARS``: a scraping accident, not a song) are left out and
counted in the reader's ``skipped``; a label outside its vocabulary or a non-numeric rating is a
``DatasetLayoutError`` naming the file and row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from models.errors import DatasetLayoutError
from models.fusion import context_text
from models.manifest import Clip
from models.text import MAX_LYRICS_CHARS
from training.datasets.common import from_1_9, read_csv, require, split_by_artist

MOODS = {"happy": "Q1", "angry": "Q2", "sad": "Q3", "relaxed": "Q4"}  # MoodyLyrics4Q's moods as quadrants
_GENIUS_HEADER = re.compile(r"\A[^\n]*?Lyrics(?=\[)")
_SECTION = re.compile(r"^\s*\[[^\]\n]{0,60}\]\s*$|\[[^\]\n]{0,60}\]", re.MULTILINE)
DEEZER_SPLITS = {"train": "train", "validation": "val", "test": "test"}


@dataclass(frozen=True)
class TextRow:
    """One song's text (lyrics, or the title/artist context) and its label: a quadrant, or valence and arousal."""

    artist: str
    title: str
    text: str
    split: str
    quadrant: str | None = None
    va: tuple[float, float] | None = None


@dataclass
class TextSet:
    rows: list[TextRow] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> rows left out

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


def clean_genius(text: str) -> str:
    """Lyrics without the page header ("Title Lyrics") and section markers ("[Chorus]")."""
    text = _SECTION.sub("", _GENIUS_HEADER.sub("", text.replace("\r\n", "\n")))
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _lyrics(out: TextSet, raw: str) -> str | None:
    text = clean_genius(raw)
    if not text:
        out.skip("no lyrics")
        return None
    if len(text) > MAX_LYRICS_CHARS:
        out.skip(f"lyrics over {MAX_LYRICS_CHARS} characters")
        return None
    return text


def read_lyrics(clip: Clip) -> str:
    """A manifest clip's lyrics (``extra["lyrics"]``, the path its reader keeps, as ``mirex_mm``'s), or "" where
    it has none."""
    path = clip.extra.get("lyrics")
    return clean_genius(Path(path).read_text(encoding="utf-8", errors="replace")) if path else ""


def read_moodylyrics4q(root: Path) -> TextSet:
    (path,) = require(Path(root), "lyrics.csv")
    rows = read_csv(path, columns=("artist", "title", "mood", "lyrics"))
    splits, out = split_by_artist([r["artist"] for r in rows]), TextSet()
    for line, row in enumerate(rows, start=2):
        mood = row["mood"].strip().lower()
        if mood not in MOODS:
            raise DatasetLayoutError(f"{path}, row {line}: mood {row['mood']!r} is not one of {', '.join(MOODS)}")
        if (text := _lyrics(out, row["lyrics"])) is not None:
            out.rows.append(TextRow(row["artist"], row["title"], text, splits[row["artist"].strip().lower()],
                                    quadrant=MOODS[mood]))
    return out


def _floats(path: Path, line: int, row: dict[str, str], *columns: str) -> list[float]:
    try:
        return [float(row[c]) for c in columns]
    except ValueError as error:
        raise DatasetLayoutError(f"{path}, row {line}: non-numeric {'/'.join(columns)} ({error})") from error


def read_muse(root: Path) -> TextSet:
    (path,) = require(Path(root), "lyrics.csv")
    rows = read_csv(path, columns=("artist", "title", "valence_tags", "arousal_tags", "lyrics"))
    splits, out = split_by_artist([r["artist"] for r in rows]), TextSet()
    for line, row in enumerate(rows, start=2):
        valence, arousal = _floats(path, line, row, "valence_tags", "arousal_tags")
        if (text := _lyrics(out, row["lyrics"])) is not None:
            out.rows.append(TextRow(row["artist"], row["title"], text, splits[row["artist"].strip().lower()],
                                    va=(from_1_9(valence), from_1_9(arousal))))
    return out


def read_deezer(root: Path) -> TextSet:
    (path,) = require(Path(root), "songs.csv")
    rows = read_csv(path, columns=("valence", "arousal", "artist_name", "track_name", "deezer_split"))
    out = TextSet()
    for line, row in enumerate(rows, start=2):
        if row["deezer_split"] not in DEEZER_SPLITS:
            raise DatasetLayoutError(f"{path}, row {line}: deezer_split {row['deezer_split']!r} is not one of "
                                     f"{', '.join(DEEZER_SPLITS)}")
        valence, arousal = _floats(path, line, row, "valence", "arousal")
        text = context_text(row["track_name"], row["artist_name"])
        if not text:
            out.skip("no title or artist")
            continue
        out.rows.append(TextRow(row["artist_name"], row["track_name"], text, DEEZER_SPLITS[row["deezer_split"]],
                                va=(valence, arousal)))
    return out
