"""4Q audio emotion dataset (Panda, Malheiro & Paiva, IEEE TAFFC 2018): 30 s AllMusic previews of any genre, one
Russell quadrant per clip (from AllMusic mood tags), with the mood tags and genres.

Layout: ``ROOT/metadata.csv`` (Song, Artist, Title, Quadrant, MoodsStr, GenresStr) and ``ROOT/audio/{Song}.ogg``.
Clips carry ``labels = {"quadrant": "Q<n>"}`` and no VA curve (a quadrant is a class, not a rating); the mood tags
become ``tags``. Splits are by artist (no artist in two splits): see ``split_by_artist``.
"""

from __future__ import annotations

from pathlib import Path

from models.manifest import Clip
from training.datasets.common import audio_file, class_label, read_csv, require, split_by_artist

COLUMNS = ("Song", "Artist", "Title", "Quadrant", "MoodsStr", "GenresStr")


def _tags(text: str) -> tuple[str, ...]:
    return tuple(t.strip().lower() for t in text.split(";") if t.strip())


def read(root: Path) -> list[Clip]:
    """One clip per row of metadata.csv; ``audio`` is the clip's OGG file."""
    metadata, audio = require(Path(root), "metadata.csv", "audio")
    rows = read_csv(metadata, columns=COLUMNS)
    splits = split_by_artist([r["Artist"] for r in rows])
    clips = []
    for line, row in enumerate(rows, start=2):
        quadrant = class_label("quadrant", row["Quadrant"], where=f"{metadata}, row {line}")
        clips.append(Clip(
            id=f"4q-{row['Song']}", audio=audio_file(audio / f"{row['Song']}.ogg", item=f"row {line}"), curve=None,
            labels={"quadrant": quadrant}, tags=_tags(row["MoodsStr"]), title=row["Title"],
            artist=row["Artist"], split=splits[row["Artist"].strip().lower()], label_type="categorical",
            extra={"genres": list(_tags(row["GenresStr"]))},
        ))
    return clips
