"""emoMusic, "1000 songs for emotional analysis of music" (Soleymani et al., CrowdMM 2013).

Published layout under ROOT::

    clips_45seconds/{song_id}.mp3
    annotations/songs_info.csv              song_id, file_name, Artist, Song title, ..., Mediaeval 2013 set
    annotations/static_annotations.csv      song_id, mean_arousal, std_arousal, mean_valence, std_valence (1-9)
    annotations/arousal_cont_average.csv    song_id, sample_15000ms, ..., sample_44500ms ([-1, 1])
    annotations/arousal_cont_std.csv        (same columns)
    annotations/valence_cont_average.csv
    annotations/valence_cont_std.csv

Dynamic annotations are 2 Hz from 15 s to 45 s of each 45 s clip; times stay audio time. Static ratings map
from 1-9 to [-1, 1]. The MediaEval 2013 "evaluation" songs form the test split.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.manifest import Clip
from models.vocabulary import mood_tags
from training.datasets.common import (
    audio_file,
    from_1_9,
    join_va,
    read_csv,
    read_wide_dynamic,
    require,
    stable_fraction,
)

A = "annotations"
STATIC_COLUMNS = ("song_id", "mean_arousal", "std_arousal", "mean_valence", "std_valence")


def _split(song_id: str, info: dict[str, str]) -> str:
    if info.get("Mediaeval 2013 set", "").lower().startswith("eval"):
        return "test"
    return "val" if stable_fraction(f"emomusic-{song_id}") < 0.1 else "train"


def _dynamic(root: Path, name: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    path = root / A / name
    return read_wide_dynamic(path) if path.is_file() else {}


def read(root: Path) -> list[Clip]:
    root = Path(root)
    require(root, f"{A}/static_annotations.csv", "clips_45seconds")
    info_path = root / A / "songs_info.csv"
    info = {r["song_id"]: r for r in read_csv(info_path, columns=("song_id",))} if info_path.is_file() else {}
    mean = {k: _dynamic(root, f"{k}_cont_average.csv") for k in ("valence", "arousal")}
    std = {k: _dynamic(root, f"{k}_cont_std.csv") for k in ("valence", "arousal")}
    clips = []
    for row in read_csv(root / A / "static_annotations.csv", columns=STATIC_COLUMNS):
        song_id = row["song_id"]
        v, a = from_1_9(float(row["mean_valence"])), from_1_9(float(row["mean_arousal"]))
        dynamic = song_id in mean["valence"] and song_id in mean["arousal"]
        if dynamic:
            curve = join_va(mean["valence"][song_id], mean["arousal"][song_id])
            has_std = song_id in std["valence"] and song_id in std["arousal"]
            curve_std = join_va(std["valence"][song_id], std["arousal"][song_id]) if has_std else None
        else:
            curve = np.array([[0.0, v, a]])
            curve_std = np.array([[0.0, float(row["std_valence"]) / 4, float(row["std_arousal"]) / 4]])
        meta = info.get(song_id, {})
        clips.append(Clip(
            id=f"emomusic-{song_id}",
            audio=audio_file(root / "clips_45seconds" / f"{song_id}.mp3", item=f"emoMusic song {song_id}"),
            curve=np.clip(curve, [0, -1, -1], [np.inf, 1, 1]), curve_std=curve_std, tags=tuple(mood_tags(v, a)),
            title=meta.get("Song title", ""), artist=meta.get("Artist", ""), split=_split(song_id, meta),
            label_type="dynamic" if dynamic else "static", extra={"static": [round(v, 4), round(a, 4)]},
        ))
    return clips
