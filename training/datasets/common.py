"""Helpers shared by the data set readers: layout checks, CSV reading, scale conversion, group splits."""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from models.errors import DatasetLayoutError
from models.taxonomy import TAXONOMIES


def require(root: Path, *relative: str) -> list[Path]:
    """The given files under ``root``; a ``DatasetLayoutError`` naming the first one that is missing."""
    if not root.is_dir():
        raise DatasetLayoutError(f"{root}: data set folder not found")
    paths = [root / r for r in relative]
    for path in paths:
        if not path.exists():
            raise DatasetLayoutError(f"{path}: missing; this folder does not have the data set's published layout")
    return paths


CSV_FIELD_LIMIT = 1 << 24  # a lyrics cell can pass the csv module's default 128 KiB; the readers bound it


def read_csv(path: Path, *, columns: Iterable[str] = ()) -> list[dict[str, str]]:
    """Rows of a CSV file with header names and values stripped; checks that ``columns`` are present."""
    csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle, skipinitialspace=True)
        header = [name.strip() for name in next(reader, [])]
        rows = [dict(zip(header, (value.strip() for value in row), strict=False)) for row in reader if row]
    missing = [c for c in columns if c not in header]
    if missing:
        raise DatasetLayoutError(f"{path}: missing column(s) {missing}; found {header}")
    return rows


def from_1_9(x: float) -> float:
    """A 1-9 rating scale (SAM) -> [-1, 1]."""
    return (x - 5.0) / 4.0


def from_1_5(x: float) -> float:
    """A 1-5 rating scale -> [-1, 1]."""
    return (x - 3.0) / 2.0


def from_0_1(x: float) -> float:
    """A 0-1 scale -> [-1, 1]."""
    return 2.0 * x - 1.0


_SAMPLE_COLUMN = re.compile(r"sample_(\d+)ms")


def read_wide_dynamic(path: Path, *, id_column: str = "song_id") -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per-song dynamic annotations in the wide layout of DEAM and emoMusic.

    Columns ``song_id, sample_15000ms, sample_15500ms, ...``: one value per 500 ms, from 15 s on. Empty cells
    (songs shorter than the longest) are dropped. Returns ``{song_id: (times_s, values)}``.
    """
    rows = read_csv(path, columns=[id_column])
    result = {}
    for row in rows:
        pairs = [(int(m.group(1)) / 1000.0, float(v)) for k, v in row.items()
                 if (m := _SAMPLE_COLUMN.fullmatch(k)) and v not in ("", "NaN", "nan")]
        if pairs:
            times, values = map(np.array, zip(*sorted(pairs), strict=True))
            result[row[id_column]] = (times, values)
    return result


def stable_fraction(key: str) -> float:
    """A number on [0, 1) fixed by ``key``: for splits that do not move when the data set grows."""
    return int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) / 2**32


def split_groups(groups: dict[str, int], *, test: float = 0.2, val: float = 0.1) -> dict[str, str]:
    """Assign whole groups to test, val and train, in hash order, near each split's share of items.

    A group joins test (then val) while that split is short of its share by at least half the group's size,
    so that one big group does not push a split far past its share. ``groups`` maps a group name to its number
    of items; returns group -> split.
    """
    total, taken = sum(groups.values()), {"test": 0, "val": 0}
    result = {}
    for name in sorted(groups, key=stable_fraction):
        size = groups[name]
        split = next((s for s, share in (("test", test), ("val", val))
                      if taken[s] + size / 2 <= share * total), "train")
        if split != "train":
            taken[split] += size
        result[name] = split
    return result


def class_label(taxonomy: str, value: str, *, where: str) -> str:
    """``value`` if it is a class of ``taxonomy``, else a ``DatasetLayoutError`` naming ``where`` (file and row)."""
    classes = TAXONOMIES[taxonomy]
    if value not in classes:
        raise DatasetLayoutError(f"{where}: {taxonomy.replace('_', ' ')} {value!r} is not one of {', '.join(classes)}")
    return value


ARTIST_SPLIT = {"test": 0.15, "val": 0.15}  # shares of clips held apart by artist in sets without a split


def split_by_artist(artists: list[str]) -> dict[str, str]:
    """Split -> for each artist (lower-cased, stripped): whole artists go to test, val or train, near
    ``ARTIST_SPLIT``'s shares of the clips, stable under additions. Returns artist -> split."""
    counts: dict[str, int] = {}
    for artist in artists:
        key = artist.strip().lower()
        counts[key] = counts.get(key, 0) + 1
    return split_groups(counts, **ARTIST_SPLIT)


def join_va(valence: tuple[np.ndarray, np.ndarray], arousal: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """(T, 3) curve on the times where both valence and arousal have a value."""
    times = np.intersect1d(valence[0], arousal[0])
    pick = [dict(zip(series[0].tolist(), series[1].tolist(), strict=True)) for series in (valence, arousal)]
    return np.array([[t, pick[0][t], pick[1][t]] for t in times.tolist()]).reshape(-1, 3)


def hash_split(key: str, *, test: float = 0.2, val: float = 0.1) -> str:
    """A split for sets without an official one, stable under additions."""
    x = stable_fraction(key)
    return "test" if x < test else "val" if x < test + val else "train"


def audio_file(path: Path, *, item: str) -> str:
    """Absolute path of an item's audio; a ``DatasetLayoutError`` naming it if it is missing."""
    if not path.is_file():
        raise DatasetLayoutError(f"{path}: audio for {item} not found")
    return str(path.resolve())
