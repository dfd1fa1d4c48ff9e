"""The labelled-clip manifest: one JSON Lines format for every labelled music set.

One object per line::

    {"id": "synth-00001", "audio": "audio/synth-00001.flac",
     "curve": [[0.0, 0.31, -0.12], [0.5, 0.33, -0.10], ...],
     "curve_std": [[0.0, 0.11, 0.14], ...],
     "tags": ["tender"], "title": "Quiet Harbour", "artist": "Mira Vale", "split": "train",
     "label_type": "dynamic"}

``audio`` is relative to the manifest's folder. ``curve`` rows are ``[t_seconds, valence, arousal]`` with VA on
[-1, 1]; ``curve_std`` (optional) has the same times with the annotators' standard deviations. ``label_type``
says what the curve stands for: ``dynamic`` (annotated over time), ``static`` (one rating per clip) or
``categorical`` (a class such as a quadrant, placed at a point of its VA region). ``labels`` (optional) holds
categorical labels by taxonomy, ``{"quadrant": "Q2"}``, checked against ``models.taxonomy``; a clip with labels
may have no curve (4Q, MIREX: classes, not ratings). See docs/manifest.md.
This module is the only reader and writer of the format.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.atomic import atomic_file
from models.curves import validate_curve
from models.errors import CurveError, ManifestError
from models.taxonomy import check_labels

LABEL_TYPES = ("dynamic", "static", "categorical")
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Clip:
    """One labelled clip. ``curve`` and ``curve_std`` are (T, 3) float arrays; ``curve`` is None for a clip
    labelled only by categories (``labels``)."""

    id: str
    audio: str
    curve: np.ndarray | None
    curve_std: np.ndarray | None = None
    tags: tuple[str, ...] = ()
    title: str = ""
    artist: str = ""
    split: str = "train"
    label_type: str = "dynamic"
    extra: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def group(self) -> str:
        """What artist folds group by: the artist, or the clip's own id where the artist is unknown."""
        return self.artist or self.id

    def to_json(self, *, audio: str | None = None) -> dict[str, Any]:
        record: dict[str, Any] = {"id": self.id, "audio": audio if audio is not None else self.audio}
        if self.curve is not None:
            record["curve"] = _rows(self.curve)
        if self.labels:
            record["labels"] = dict(self.labels)
        if self.curve_std is not None:
            record["curve_std"] = _rows(self.curve_std)
        record |= {
            "tags": list(self.tags),
            "title": self.title,
            "artist": self.artist,
            "split": self.split,
            "label_type": self.label_type,
        }
        return record | self.extra


def _rows(array: np.ndarray) -> list[list[float]]:
    return [[round(float(x), 4) for x in row] for row in array]


_KNOWN_KEYS = {"id", "audio", "curve", "curve_std", "tags", "title", "artist", "split", "label_type", "labels"}


def clip_from_json(record: dict[str, Any], *, where: str = "") -> Clip:
    """Build a validated ``Clip`` from one manifest object; errors name ``where`` and the clip id."""
    for key in ("id", "audio"):
        if key not in record:
            raise ManifestError(f"{where}: missing required key '{key}'")
    name = f"{where}: clip {record['id']!r}"
    labels = check_labels(record.get("labels", {}), where=name)
    if "curve" not in record and not labels:
        raise ManifestError(f"{where}: missing required key 'curve' (or categorical 'labels')")
    try:
        curve = validate_curve(record["curve"], name=f"{name} curve") if "curve" in record else None
        curve_std = _std(record.get("curve_std"), name=f"{name} curve_std")
    except CurveError as error:
        raise ManifestError(str(error)) from error
    split, label_type = record.get("split", "train"), record.get("label_type", "dynamic")
    if split not in SPLITS:
        raise ManifestError(f"{name}: split must be one of {SPLITS}, got {split!r}")
    if label_type not in LABEL_TYPES:
        raise ManifestError(f"{name}: label_type must be one of {LABEL_TYPES}, got {label_type!r}")
    return Clip(
        id=str(record["id"]), audio=str(record["audio"]), curve=curve, curve_std=curve_std,
        tags=tuple(record.get("tags", ())), title=record.get("title", ""), artist=record.get("artist", ""),
        split=split, label_type=label_type, labels=labels,
        extra={k: v for k, v in record.items() if k not in _KNOWN_KEYS},
    )


def _std(rows: Any, *, name: str) -> np.ndarray | None:
    if rows is None:
        return None
    array = np.asarray(rows, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != 3 or not np.isfinite(array).all() or (array[:, 1:] < 0).any():
        raise CurveError(f"{name}: expected rows [t, v_std, a_std] of finite, non-negative numbers")
    return array


def read_manifest(path: str | Path, *, check_audio: bool = False) -> list[Clip]:
    """Read and validate a manifest. With ``check_audio`` every audio file must exist.

    Raises
    ------
    ManifestError
        naming the file, line and clip for the first problem found.
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    clips: list[Clip] = []
    seen: set[str] = set()
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            clip = clip_from_json(_parse(line, where=where), where=where)
            if clip.id in seen:
                raise ManifestError(f"{where}: duplicate clip id {clip.id!r}")
            if check_audio and not audio_path(path, clip).is_file():
                raise ManifestError(f"{where}: clip {clip.id!r}: audio file {audio_path(path, clip)} not found")
            seen.add(clip.id)
            clips.append(clip)
    if not clips:
        raise ManifestError(f"{path}: the manifest holds no clips")
    return clips


def _parse(line: str, *, where: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise ManifestError(f"{where}: not valid JSON ({error.msg})") from error
    if not isinstance(record, dict):
        raise ManifestError(f"{where}: each line must be a JSON object")
    return record


def audio_path(manifest: str | Path, clip: Clip) -> Path:
    """Absolute path of a clip's audio: ``clip.audio`` is relative to the manifest's folder."""
    return (Path(manifest).resolve().parent / clip.audio).resolve()


def write_manifest(path: str | Path, clips: Iterable[Clip]) -> Path:
    """Write clips as JSON Lines atomically; absolute audio paths become relative to the manifest."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = path.resolve().parent
    with atomic_file(path, mode="w") as out:
        for clip in clips:
            audio = os.path.relpath(clip.audio, folder) if os.path.isabs(clip.audio) else clip.audio
            out.write(json.dumps(clip.to_json(audio=audio), ensure_ascii=False) + "\n")
    return path


def select_split(clips: Iterable[Clip], split: str) -> list[Clip]:
    return [clip for clip in clips if clip.split == split]
