"""MIREX-like multimodal emotion dataset (Panda et al., CMMR 2013): 30 s clips with lyrics for most songs, a few
MIDI files, and one of the five MIREX mood clusters per song.

Layout: ``ROOT/metadata.csv`` (song, artist, title, album, year, cluster, category, has_lyrics, has_midi),
``ROOT/audio/{song}.ogg``, ``ROOT/lyrics/{song}.txt``, ``ROOT/midi/{song}.mid``. Clips carry
``labels = {"mirex_cluster": "<1-5>"}`` and no VA curve; ``category`` (the AllMusic mood the song was drawn for)
becomes a tag. This reader is the audio side: lyrics and MIDI are referenced in ``extra``, never copied.
Splits are by artist (``split_by_artist``).
"""

from __future__ import annotations

from pathlib import Path

from models.manifest import Clip
from training.datasets.common import audio_file, class_label, read_csv, require, split_by_artist

COLUMNS = ("song", "artist", "title", "album", "year", "cluster", "category", "has_lyrics", "has_midi")


def _references(root: Path, row: dict[str, str]) -> dict[str, str]:
    """Absolute paths of the song's lyrics and MIDI file where the metadata says they exist."""
    found = {}
    for key, folder, suffix in (("has_lyrics", "lyrics", ".txt"), ("has_midi", "midi", ".mid")):
        path = root / folder / f"{row['song']}{suffix}"
        if row[key] == "1" and path.is_file():
            found[folder] = str(path.resolve())
    return found


def read(root: Path) -> list[Clip]:
    """One clip per row of metadata.csv; ``audio`` is the song's OGG clip."""
    root = Path(root)
    metadata, audio = require(root, "metadata.csv", "audio")
    rows = read_csv(metadata, columns=COLUMNS)
    splits = split_by_artist([r["artist"] for r in rows])
    clips = []
    for line, row in enumerate(rows, start=2):
        cluster = class_label("mirex_cluster", row["cluster"], where=f"{metadata}, row {line}")
        clips.append(Clip(
            id=f"mirex-{row['song']}", audio=audio_file(audio / f"{row['song']}.ogg", item=f"row {line}"),
            curve=None, labels={"mirex_cluster": cluster}, tags=(row["category"].strip().lower(),),
            title=row["title"], artist=row["artist"], split=splits[row["artist"].strip().lower()],
            label_type="categorical",
            extra={"album": row["album"], "year": row["year"], **_references(root, row)},
        ))
    return clips
