"""VGMIDI (Ferreira & Whitehead, ISMIR 2019): piano arrangements of video-game music with per-bar valence and
arousal curves (mean and std over ~30 annotators, already on [-1, 1]).

Layout: ``ROOT/dynamic_annotations.csv`` (piece_key, midi_file, name, measures, duration_s, measure_index,
valence_mean, valence_std, arousal_mean, arousal_std) and ``ROOT/midi/*.mid``. Bar i spans
``[i, i + 1) * duration_s / measures``; its value is placed at the bar's centre. MIDI names read
``Series_Platform_Game_Title.mid``; splits keep whole game series apart (see ``series_of``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from models.errors import DatasetLayoutError
from models.manifest import Clip
from models.vocabulary import mood_tags
from training.datasets.common import read_csv, require, split_groups

COLUMNS = ("piece_key", "midi_file", "measures", "duration_s", "measure_index", "valence_mean", "valence_std",
           "arousal_mean", "arousal_std")


def series_of(midi_file: str) -> str:
    """Game series of a VGMIDI file name. The catch-all series "Other" is split by the first word of the game,
    which keeps franchises together (Warcraft II and III, both World of Warcraft expansions)."""
    parts = Path(midi_file).stem.split("_")
    if parts[0] == "Other" and len(parts) > 2:
        return f"Other/{parts[2].split()[0]}"
    return parts[0]


def _curves(rows: list[dict[str, str]], path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(T, 3) mean and std curves at bar centres."""
    rows = sorted(rows, key=lambda r: int(r["measure_index"]))
    try:
        measures, duration = int(rows[0]["measures"]), float(rows[0]["duration_s"])
        bar = np.array([int(r["measure_index"]) for r in rows], dtype=np.float64)
        values = np.array([[float(r[c]) for c in COLUMNS[5:]] for r in rows])
    except ValueError as error:
        raise DatasetLayoutError(f"{path}: piece {rows[0]['piece_key']}: non-numeric value ({error})") from error
    t = (bar + 0.5) * duration / measures
    mean = np.column_stack([t, values[:, 0], values[:, 2]])
    std = np.column_stack([t, values[:, 1], values[:, 3]])
    return np.clip(mean, [0, -1, -1], [np.inf, 1, 1]), std


def read(root: Path) -> list[Clip]:
    """One clip per annotated piece; ``audio`` is the MIDI file."""
    annotations, midi_dir = require(Path(root), "dynamic_annotations.csv", "midi")
    pieces: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in read_csv(annotations, columns=COLUMNS):
        pieces[row["piece_key"]].append(row)
    series = {key: series_of(rows[0]["midi_file"]) for key, rows in pieces.items()}
    splits = split_groups(Counter(series.values()))
    clips = []
    for key, rows in pieces.items():
        midi = midi_dir / rows[0]["midi_file"]
        if not midi.is_file():
            raise DatasetLayoutError(f"{midi}: MIDI file named in {annotations} not found")
        mean, std = _curves(rows, annotations)
        parts = Path(rows[0]["midi_file"]).stem.split("_")
        clips.append(Clip(
            id=f"vgmidi-{key}", audio=str(midi.resolve()), curve=mean, curve_std=std,
            tags=tuple(mood_tags(*mean[:, 1:].mean(axis=0))), title=rows[0].get("name") or parts[-1],
            artist=parts[2] if len(parts) > 2 else parts[0], split=splits[series[key]], label_type="dynamic",
            extra={"series": series[key]},
        ))
    return clips
